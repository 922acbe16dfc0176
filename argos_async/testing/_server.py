"""`ArgosEmulator`: the Argos KYC REST API v3 submission endpoints served over loopback HTTP.

This module is the server's life and its HTTP side: start and close, the request pipeline
(recording, latency, IP allowlist, API key, faults) and the routes. What an endpoint answers
is `_listing`'s business, how an update changes an item `_updates`'s, and every path, header
and message comes from `_wire`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from ._admin import add_admin_routes, drop_deleted, drop_deleted_applicants, is_admin
from ._dataset import Dataset
from ._faults import FaultContext, FaultPlan
from ._http import error_response, json_response
from ._http import is_loopback as _is_loopback
from ._listing import (
    BadQuery,
    Listing,
    LookupQuery,
    parse_applicant_query,
    parse_submission_query,
)
from ._secure import SecureWire
from ._updates import updated_item
from ._webhook_delivery import RecordedWebhook, WebhookSender, plain_json
from ._webhook_faults import WebhookFaults
from ._webhooks import created_payload, deleted_payload, update_payloads
from ._wire import (
    API_KEY_HEADER,
    APPLICANT_PATH,
    DENY_KEY,
    EXPLICIT_DENY,
    FORBIDDEN,
    INVALID_QUERY,
    LIST_PATH,
    NOT_FOUND,
    REQUEST_ID_HEADER,
    TOO_LARGE,
    list_body,
    lookup_body,
)

__all__ = ["ArgosEmulator", "RecordedRequest", "RecordedResponse"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived at the emulator."""

    method: str
    """The HTTP method, e.g. "GET"."""
    path: str
    """The URL path without the query string, e.g. "/v3/submission"."""
    query: dict[str, str]
    """Decoded query parameters (the first value of a repeated name)."""
    headers: dict[str, str]
    """Header names in lower case."""
    received_at: float
    """`time.monotonic()` on arrival."""
    index: int
    """Position in `ArgosEmulator.requests` (0-based)."""
    decrypted_query: dict[str, str] | None = None
    """With secure transmission on, the parameters the request's `data` carried (None when
    it is off, or when `data` did not decrypt)."""


@dataclass(frozen=True)
class RecordedResponse:
    """How the emulator answered one request."""

    index: int
    """The `index` of the request's `RecordedRequest`."""
    status: int
    """The status sent (200 for a response whose body a fault cut off)."""
    fault: str | None
    """Class name of the fault that answered, rewrote or delayed the response; None if none."""
    sent_at: float
    """`time.monotonic()` when the response was handed to aiohttp."""


class _Turns:
    """Spreads a burst of CPU-bound work over turns of the event loop.

    A list page is built in one go on the event loop, which an in-process client (the
    export's demo, the tests) shares: eight requests arriving together would all be built
    before the client could read the first answer. So after one is built, the next waits
    until the loop has run its I/O once: a timer due at once runs after the I/O callbacks
    of its turn. A request that finds no page just built waits for nothing.
    """

    def __init__(self) -> None:
        self._next: asyncio.Future[None] | None = None

    async def take(self) -> None:
        """Waits for this caller's turn, and starts the next one's wait."""
        while self._next is not None and not self._next.done():
            # Not awaited directly: a waiter cancelled (its client gone) must not cancel
            # the others' turn.
            await asyncio.wait({self._next})
        loop = asyncio.get_running_loop()
        self._next = loop.create_future()
        loop.call_later(0, _resolve, self._next)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _normalize_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


class ArgosEmulator:
    """An aiohttp server implementing GET /v3/submission and /v3/submission/applicant.

    Serves a deterministic `Dataset`; use it as `async with ArgosEmulator(...) as emu:` and point
    a client at `emu.url` with `emu.api_key`.

    Arguments (each is kept as the attribute of the same name, except `submissions`, `seed`,
    `start` and `days`, which build `dataset`, and the webhook sender's settings
    `webhook_timeout`, `webhook_attempts`, `webhook_backoff` and `webhook_any_host`):

    - `submissions`, `seed`: size and seed of the synthetic data set; equal arguments give
      equal data.
    - `start`, `days`: the items are created within `days` UTC days from `start`.
    - `api_key`: the key requests must send in `x-api-key` (403 otherwise); default: a
      random `emu-...` key.
    - `host`, `port`: where to listen; loopback hosts only. Port 0 picks a free port, and
      `port` holds the real one once started.
    - `page_byte_limit`: a list page stops before its items exceed this many bytes, so pages
      come back short while `nextpageKey` is still present; None: only `count` limits them.
    - `response_byte_limit`: a response body above this many bytes is answered 413 instead;
      None: no limit.
    - `filter_mode`: how `email` / `userid` filters work: "index" returns full pages of
      matches; "scan" filters after reading, like a DynamoDB FilterExpression, so pages may
      be short or empty.
    - `ip_allowlist`: peers allowed to call (403 "explicit deny" for others); None: any.
    - `latency`: seconds every request waits before it is handled; may be changed while
      running.
    - `faults`: a `FaultPlan` scripting errors, delays and broken responses.
    - `secure_transmission`: the API's encrypted mode, as a project switches it on: True keys
      it with `api_key`, a str is the project's secret key. Requests must then carry only
      `data` (the parameters as encrypted JSON; 400 otherwise, after the key check) and every
      200 body goes out as `{"data": "<base64>"}`; error bodies stay plain. Kept as the key
      text in use (None when off). Needs `cryptography`. `encrypt_body` seals a body the
      same way (for webhooks).
    - `webhook_url`: where to POST a webhook for every `create`, `update` and `delete` made
      while it runs (loopback hosts only, unless `webhook_any_host`); None: no webhooks.
      See `_webhooks` for the triggers and payloads, `_webhook_delivery` for how they go.
    - `webhook_faults`: `WebhookFaults` (duplicates, reordering, lost and delayed events).
    - `webhook_timeout`: seconds a delivery attempt waits for the receiver's answer;
      `webhook_attempts`: tries per delivery; `webhook_backoff`: seconds before the second
      try, doubling after each.

    Attributes besides those:

    - `dataset`: the `Dataset` served, as generated (shared with other emulators of the
      same arguments; `update` never changes it, `get` shows an item as now served).
    - `requests`: a `RecordedRequest` per request received, in arrival order.
    - `responses`: a `RecordedResponse` per response sent, in the order sent; a request that
      was cancelled (the client went away) has none.
    - `in_flight`: requests being handled right now; `max_in_flight` its high-water mark
      (see `reset_stats`).
    - `webhooks_sent`: a `RecordedWebhook` per webhook delivery attempt (and per event a
      fault dropped), in order; `await webhooks_idle()` waits until every queued one is done.
    - `url`: the origin to give a client, e.g. `http://127.0.0.1:PORT` (once started).
    """

    def __init__(
        self,
        submissions: int = 10_000,
        seed: int = 7,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        start: date = date(2025, 1, 1),
        days: int = 365,
        page_byte_limit: int | None = 1_000_000,
        response_byte_limit: int | None = 6_000_000,
        filter_mode: Literal["index", "scan"] = "index",
        ip_allowlist: Collection[str] | None = None,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        secure_transmission: bool | str | None = None,
        webhook_url: str | None = None,
        webhook_faults: WebhookFaults | None = None,
        webhook_timeout: float = 5.0,
        webhook_attempts: int = 3,
        webhook_backoff: float = 0.5,
        webhook_any_host: bool = False,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the emulator only listens on loopback hosts, not {host!r}")
        if filter_mode not in ("index", "scan"):
            raise ValueError("filter_mode must be 'index' or 'scan'")
        if latency < 0:
            raise ValueError("latency must be >= 0")
        self.dataset = Dataset.generate(submissions, seed, start=start, days=days)
        self.api_key = api_key if api_key is not None else f"emu-{secrets.token_urlsafe(18)}"
        self.host = host
        self.port = port
        self.page_byte_limit = page_byte_limit
        self.response_byte_limit = response_byte_limit
        self.filter_mode = filter_mode
        self.ip_allowlist = (
            None if ip_allowlist is None else frozenset(_normalize_ip(ip) for ip in ip_allowlist)
        )
        self.latency = latency
        if secure_transmission is True:
            secure_transmission = self.api_key
        elif secure_transmission is False:
            secure_transmission = None
        elif secure_transmission is not None and (
            not isinstance(secure_transmission, str) or not secure_transmission
        ):
            raise ValueError("secure_transmission must be True, False, None or a key text")
        self.secure_transmission = secure_transmission
        self._secure = (
            None if self.secure_transmission is None else SecureWire(self.secure_transmission)
        )
        self.faults = faults if faults is not None else FaultPlan([])
        self._fault_state = self.faults.new_state()
        self.requests: list[RecordedRequest] = []
        self.responses: list[RecordedResponse] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._listing = Listing(self.dataset)
        self._runner: web.AppRunner | None = None
        self._contexts: dict[int, FaultContext] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._page_turns = _Turns()
        self._deleted: set[str] = set()
        self._webhooks = WebhookSender(
            webhook_url,
            faults=webhook_faults,
            timeout=webhook_timeout,
            attempts=webhook_attempts,
            backoff=webhook_backoff,
            any_host=webhook_any_host,
            # The one place webhook bodies become bytes: with secure transmission on, they go
            # out sealed like the API's answers, as `{"data": "<base64>"}`.
            encode_body=self._webhook_body,
        )
        self.webhook_url = webhook_url
        self.webhook_faults = webhook_faults
        self.webhooks_sent: list[RecordedWebhook] = self._webhooks.sent

    @property
    def url(self) -> str:
        """The origin, e.g. `http://127.0.0.1:PORT` (valid once started)."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _served(self) -> Listing:
        # `dataset` is a plain attribute, and tests swap in a data set of their own before
        # serving: follow it (updates made to the one before go with it).
        if self._listing.dataset is not self.dataset:
            self._listing = Listing(self.dataset)
        return self._listing

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The full item as the emulator now serves it (with `update`s applied), or None;
        read-only. Its keys are the vocabulary `update` takes."""
        if submission_id in self._deleted:
            return None
        return self._served().get(submission_id)

    def update(self, submission_id: str, /, **changes: Any) -> dict[str, Any]:
        """Changes a submission after it was served, as the provider does when a reviewer
        decides a pending one or an incomplete one times out; list pages and single lookups
        served afterwards show the change. Returns the item as now served (read-only).

        The keywords are the item's own top-level keys, as `get` returns them, applied as a
        JSON merge patch (RFC 7396): a dict merges into the item's dict (so
        `kyc={"result": "approved"}` keeps `kyc.attempts`), None deletes a key, any other
        value replaces it. For example `update(sid, kyc={"result": "rejected"})`,
        `update(sid, aml={"currentstatus": "Red Flag", ...})`, `update(sid, memo=None)`.

        - `updated_at` (an aware datetime, or a timestamp string as items carry them) is
          where `updated_at` moves; by default one minute after the item's, so runs stay
          deterministic.
        - A new `kyc.result` brings what the provider does with it, for the keys the patch
          does not set itself: a decision (approved, rejected) sets `kyc_result_at` if the
          item had none; "pending" sets `pending_at` if it had none, and the agent
          `reviewer`. A rejection carries `kyc.commentCode` and `kyc.comment` (default:
          "timeout" for an incomplete one, "other" otherwise); other results drop them. An
          approval adds an unscreened `aml` if there was none; other results drop it.
        - `kyc.commentCode` and `kyc.comment` go with a rejected result only (ValueError).
        - `submission_id`, `created_at`, `email`, `userid` and `applicant_id` are fixed
          (ValueError): the indexes are built from them. Applicant ids stay as generated.
        - Unknown `submission_id`: KeyError. The keywords of the old vocabulary
          (`kyc_result`, `comment_code`, `comment`, `at`, `fields`) raise TypeError naming
          their replacement.

        Once applied, it sends a webhook: `approved` or `rejected` when `kyc.result` became
        that, `aml` when only `aml` changed, else `updated` (naming the changed fields).
        """
        served = self._served()
        current = self.get(submission_id)
        if current is None:
            raise KeyError(submission_id)
        item = updated_item(current, changes)
        served.replace(submission_id, item)
        if self._webhooks.running:
            self._webhooks.send(update_payloads(current, item))
        return item

    def create(self, **fields: Any) -> dict[str, Any]:
        """Adds a new submission, as an applicant starting a KYC does: `incomplete`, created
        after every generated one, served from then on by lookups and listings (first in
        server order), and changed by `update` like any other. Returns it (read-only).

        The keywords are the item's own keys, as `get` returns them: `email` (default
        `created-N@example.com`), `userid`, `data` (e.g. `{"cf1": "web", "full_name": ...}`),
        `submission_id` (default: a new id), `created_at` (an aware datetime or a timestamp
        string, not before the data set's window ends; default: its end, then a second after
        the newest created one), any other key as given. A `kyc.result` other than
        "incomplete", or `applicant_id`, `kyc_result_at`, `pending_at`, `updated_at`:
        ValueError. Sends a `created` webhook.
        """
        item = self._served().create(fields)
        if self._webhooks.running:
            self._webhooks.send([created_payload(item)])
        return item

    def delete(self, submission_id: str, /) -> None:
        """Removes a submission, as the provider does when it erases one: from then on
        lookups answer it with empty `Items` (a `NotFoundError` for the client), listings
        and applicant answers leave it out, `get` gives None and `update` a KeyError. An
        unknown (or already deleted) `submission_id`: KeyError. Also over HTTP: see
        `_admin` (`PATCH`/`DELETE /_emulator/submissions/{id}`). Sends a `delete` webhook."""
        item = self.get(submission_id)
        if item is None:
            raise KeyError(submission_id)
        self._deleted.add(submission_id)
        if self._webhooks.running:
            self._webhooks.send([deleted_payload(item)])

    def _webhook_body(self, payload: Mapping[str, Any]) -> bytes:
        return self.encrypt_body(plain_json(payload))

    async def webhooks_idle(self, timeout: float | None = 30.0) -> None:
        """Waits until every webhook queued so far is delivered or given up (an event a
        `reorder` fault holds back goes out at once), so a test needs no sleep;
        `asyncio.TimeoutError` after `timeout` seconds. Returns at once without `webhook_url`."""
        await self._webhooks.idle(timeout)

    def encrypt_body(self, body: bytes) -> bytes:
        """`body` (JSON) as this emulator sends it: `{"data": "<base64>"}` with
        `secure_transmission` on, else unchanged; for answers and webhooks alike."""
        return body if self._secure is None else self._secure.seal(body)

    def reset_stats(self) -> None:
        """Forgets recorded requests and responses and the concurrency high-water mark."""
        self.requests.clear()
        self.responses.clear()
        self.max_in_flight = self.in_flight

    async def start(self) -> None:
        """Starts listening; the real port is then in `port` and `url`."""
        if self._runner is not None:
            return
        # Turns belong to the event loop that serves: a new start may be on another one.
        self._page_turns = _Turns()

        @web.middleware
        async def pipeline(request: web.Request, handler: _Handler) -> web.StreamResponse:
            return await self._middleware(request, handler)

        app = web.Application(middlewares=[pipeline])
        app.router.add_get(LIST_PATH, self._submissions)
        app.router.add_get(APPLICANT_PATH, self._applicant)
        add_admin_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # A short shutdown timeout: close() must not wait out a handler sleeping on latency.
        # Handler cancellation: a client that gave up (timed out) also ends the handler's
        # sleep, as a gateway would, instead of leaving it to run on.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        await self._webhooks.start()

    async def close(self) -> None:
        """Stops the server and closes its connections; webhooks not yet delivered are not
        sent (the attempt in flight is recorded "cancelled")."""
        runner, self._runner = self._runner, None
        try:
            await self._webhooks.close()
        finally:
            if runner is not None:
                # aiohttp would give a sleeping handler (latency, a Delay fault) its shutdown
                # timeout twice over before cancelling it; end them now instead.
                for task in self._handlers:
                    task.cancel()
                await runner.cleanup()

    async def __aenter__(self) -> ArgosEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self.url if self._runner is not None else "not running"
        return f"ArgosEmulator({len(self.dataset)} submissions, {where})"

    # -- request pipeline -------------------------------------------------------------------

    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if is_admin(request.path):
            return await handler(request)  # not recorded, no latency, no faults
        query: dict[str, str] = {}
        for key, value in request.query.items():
            query.setdefault(key, value)
        decrypted = self._decrypted(query)
        index = len(self.requests)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=query,
                headers={k.lower(): v for k, v in request.headers.items()},
                decrypted_query=decrypted,
                received_at=time.monotonic(),
                index=index,
            )
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        task = asyncio.current_task()
        assert task is not None  # aiohttp runs every handler in a task of its own
        self._handlers.add(task)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response, fault = await self._dispatch(request, handler, query, decrypted)
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
            self.responses.append(
                RecordedResponse(index, response.status, fault, sent_at=time.monotonic())
            )
            return response
        finally:
            self.in_flight -= 1
            self._handlers.discard(task)

    def _decrypted(self, query: dict[str, str]) -> dict[str, str] | None:
        if self._secure is None:
            return None
        try:
            return self._secure.open_query(query)
        except ValueError:
            return None

    async def _dispatch(
        self,
        request: web.Request,
        handler: _Handler,
        query: dict[str, str],
        decrypted: dict[str, str] | None,
    ) -> tuple[web.StreamResponse, str | None]:
        """The response, and the name of the fault that shaped it (None for a normal one)."""
        if self.ip_allowlist is not None:
            peer = _normalize_ip(request.remote or "")
            if peer not in self.ip_allowlist:
                return error_response(403, EXPLICIT_DENY, key=DENY_KEY), None
        if not secrets.compare_digest(
            request.headers.get(API_KEY_HEADER, "").encode(), self.api_key.encode()
        ):
            return error_response(403, FORBIDDEN), None
        if self._secure is not None:
            if decrypted is None:
                return error_response(400, INVALID_QUERY), None
            # From here on (faults, routes) the request is the one its `data` carried.
            query = decrypted
            request = request.clone(rel_url=request.rel_url.with_query(decrypted))
        ctx = self.faults.context(request.path, query, self._fault_state)
        # Keyed by id(): request keys would need web.RequestKey, which aiohttp 3.9 lacks.
        self._contexts[id(request)] = ctx
        try:
            response = await self.faults.respond(request, ctx)
            if response is None:
                response = await handler(request)
            return response, ctx.fired[-1] if ctx.fired else None
        finally:
            del self._contexts[id(request)]

    def _respond(self, request: web.Request, body: bytes) -> web.Response:
        body = self.encrypt_body(body)
        if self.response_byte_limit is not None and len(body) > self.response_byte_limit:
            return error_response(413, TOO_LARGE)
        ctx = self._contexts.get(id(request))
        if ctx is not None:
            body = self.faults.rewrite_body(body, ctx)
        return json_response(body)

    # -- endpoints --------------------------------------------------------------------------

    async def _submissions(self, request: web.Request) -> web.StreamResponse:
        try:
            query = parse_submission_query(request.query)
        except BadQuery:
            return error_response(400, INVALID_QUERY)
        if isinstance(query, LookupQuery):
            if query.submission_id in self._deleted:
                return self._respond(request, lookup_body(None))
            return self._respond(request, self._served().lookup(query))
        await self._page_turns.take()
        page = self._served().page(
            query, filter_mode=self.filter_mode, byte_limit=self.page_byte_limit
        )
        page = drop_deleted(page, self._deleted)
        page = self.faults.rewrite_page(page, self._contexts[id(request)])
        return self._respond(request, list_body(page.items, page.next_key))

    async def _applicant(self, request: web.Request) -> web.StreamResponse:
        try:
            applicant_id = parse_applicant_query(request.query)
        except BadQuery:
            return error_response(400, INVALID_QUERY)
        body = drop_deleted_applicants(self._served().applicants(applicant_id), self._deleted)
        return self._respond(request, body)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return error_response(404, NOT_FOUND)
