"""The emulator's admin endpoint: `update`, `delete` and `get` over HTTP, so that a test can
change what a running emulator serves from another process (`serve`), the way the provider
changes submissions after they were listed; and deleted submissions hidden from every answer.

Routes (the emulator's own `x-api-key` required; 403 otherwise), beside the API's:

- `GET /_emulator/submissions/{id}`: the item as now served (`emu.get`), 404 if none;
- `PATCH /_emulator/submissions/{id}` with a JSON object: `emu.update(id, **object)`, a JSON
  merge patch in the item's own vocabulary; answers the item as now served; 400 with the
  reason for a change `update` refuses, 404 for an unknown id;
- `DELETE /_emulator/submissions/{id}`: `emu.delete(id)`: from then on lookups answer empty
  `Items` and listings leave it out; 204, or 404 for an unknown id.
- `POST /_emulator/submissions` with a JSON object: `emu.create(**object)`, a new submission;
  201 with the item, 400 with the reason for fields `create` refuses.

Each change sends the emulator's webhooks as its Python method does, queued: the answer does
not wait for their delivery.

Admin requests bypass the request pipeline: they are not recorded in `emu.requests`, wait no
latency and meet no fault, so a test's counts and fault plans stay as they were.
`EmulatorAdmin` calls the endpoint from any process, with the standard library only.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web

from ._http import error_response, json_response
from ._listing import ListPage
from ._wire import API_KEY_HEADER, format_timestamp

if TYPE_CHECKING:
    from ._server import ArgosEmulator

__all__ = [
    "ADMIN_PREFIX",
    "EmulatorAdmin",
    "add_admin_routes",
    "drop_deleted",
    "drop_deleted_applicants",
    "is_admin",
]

ADMIN_PREFIX: Final = "/_emulator/"
"""Where the admin routes live, beside the API's paths."""
_SUBMISSIONS_ROUTE: Final = ADMIN_PREFIX + "submissions"
_SUBMISSION_ROUTE: Final = _SUBMISSIONS_ROUTE + "/{submission_id}"


class _Id(msgspec.Struct):
    submission_id: str


_id_decoder: Final = msgspec.json.Decoder(_Id)


def is_admin(path: str) -> bool:
    """True for a path of the admin endpoint."""
    return path.startswith(ADMIN_PREFIX)


def drop_deleted(page: ListPage, deleted: Collection[str]) -> ListPage:
    """`page` without the items of deleted submissions (the key stays: a short page)."""
    if not deleted:
        return page
    kept = [piece for piece in page.items if _id_decoder.decode(piece).submission_id not in deleted]
    return page if len(kept) == len(page.items) else ListPage(kept, page.next_key)


def drop_deleted_applicants(body: bytes, deleted: Collection[str]) -> bytes:
    """An applicant answer without the entries of deleted submissions."""
    if not deleted:
        return body
    entries = msgspec.json.decode(body)
    return msgspec.json.encode([e for e in entries if e.get("submission_id") not in deleted])


def add_admin_routes(app: web.Application, emulator: ArgosEmulator) -> None:
    """Adds the admin routes for ``emulator`` to its application."""

    def guarded(
        handle: Callable[[web.Request, str], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            sent = request.headers.get(API_KEY_HEADER, "").encode()
            if not secrets.compare_digest(sent, emulator.api_key.encode()):
                return error_response(403)
            return await handle(request, request.match_info.get("submission_id", ""))

        return route

    async def get(request: web.Request, submission_id: str) -> web.Response:
        item = emulator.get(submission_id)
        if item is None:
            return _unknown(submission_id)
        return json_response(msgspec.json.encode(item))

    async def patch(request: web.Request, submission_id: str) -> web.Response:
        changes = await _object(request)
        if changes is None:
            return error_response(400, "the body must be a JSON object of changes")
        try:
            item = emulator.update(submission_id, **changes)
        except KeyError:
            return _unknown(submission_id)
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc))
        return json_response(msgspec.json.encode(item))

    async def delete(request: web.Request, submission_id: str) -> web.Response:
        try:
            emulator.delete(submission_id)
        except KeyError:
            return _unknown(submission_id)
        return web.Response(status=204)

    async def create(request: web.Request, _: str) -> web.Response:
        fields = await _object(request)
        if fields is None:
            return error_response(400, "the body must be a JSON object of fields")
        try:
            item = emulator.create(**fields)
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc))
        return json_response(msgspec.json.encode(item), status=201)

    app.router.add_post(_SUBMISSIONS_ROUTE, guarded(create))
    app.router.add_get(_SUBMISSION_ROUTE, guarded(get))
    app.router.add_patch(_SUBMISSION_ROUTE, guarded(patch))
    app.router.add_delete(_SUBMISSION_ROUTE, guarded(delete))


async def _object(request: web.Request) -> dict[str, Any] | None:
    """The request's body as a JSON object, or None."""
    try:
        value = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _unknown(submission_id: str) -> web.Response:
    return error_response(404, f"no submission {submission_id!r}")


class EmulatorAdmin:
    """Calls a running emulator's admin endpoint, from any process (standard library only)::

        admin = EmulatorAdmin("http://127.0.0.1:8080", api_key)
        admin.update(submission_id, kyc={"result": "rejected"})
        admin.delete(other_id)

    Methods mirror the emulator's: `get` (None for none), `update` (KeyError for an unknown
    id, ValueError for a change the emulator refuses), `delete` (KeyError) and `create`
    (ValueError for fields it refuses).
    """

    def __init__(self, url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmulatorAdmin({self.url!r})"

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The item as the emulator now serves it, or None."""
        try:
            result: dict[str, Any] = self._call("GET", submission_id)
        except KeyError:
            return None
        return result

    def update(self, submission_id: str, /, **changes: Any) -> dict[str, Any]:
        """`ArgosEmulator.update` in the emulator's process; returns the item as now served.
        An aware ``updated_at`` datetime goes as the items' timestamp string."""
        at = changes.get("updated_at")
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError("updated_at must be timezone-aware")
            changes["updated_at"] = format_timestamp(at)
        result: dict[str, Any] = self._call("PATCH", submission_id, changes)
        return result

    def delete(self, submission_id: str) -> None:
        """`ArgosEmulator.delete` in the emulator's process."""
        self._call("DELETE", submission_id)

    def create(self, **fields: Any) -> dict[str, Any]:
        """`ArgosEmulator.create` in the emulator's process; returns the new item. An aware
        ``created_at`` datetime goes as the items' timestamp string."""
        at = fields.get("created_at")
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError("created_at must be timezone-aware")
            fields["created_at"] = format_timestamp(at)
        result: dict[str, Any] = self._call("POST", None, fields)
        return result

    def _call(self, method: str, submission_id: str | None, changes: Any = None) -> Any:
        path = ADMIN_PREFIX + "submissions"
        if submission_id is not None:
            path += "/" + urllib.parse.quote(submission_id, safe="")
        data = None if changes is None else msgspec.json.encode(changes)
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={API_KEY_HEADER: self._api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            message = msgspec.json.decode(error.read() or b"{}").get("message", error.reason)
            if error.code == 404 and submission_id is not None:
                raise KeyError(submission_id) from None
            if error.code == 400:
                raise ValueError(message) from None
            raise RuntimeError(f"the emulator answered {error.code}: {message}") from None
        return msgspec.json.decode(body) if body else None
