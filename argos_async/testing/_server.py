"""`ArgosEmulator`: the Argos KYC REST API v3 submission endpoints served over loopback HTTP."""

from __future__ import annotations

import asyncio
import bisect
import ipaddress
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal

import msgspec
from aiohttp import web

from ._dataset import Dataset, parse_query_date
from ._faults import LIST_PATH, FaultContext, FaultPlan, ListPage, json_response

__all__ = ["ArgosEmulator", "RecordedRequest", "RecordedResponse"]

APPLICANT_PATH = "/v3/submission/applicant"
MAX_COUNT = 2000
DEFAULT_COUNT = 50
REQUEST_TYPES = ("kyc", "aml", "data", "others")

_BAD_QUERY = {"message": "Invalid Query String parameters"}
_COUNT_RE = re.compile(r"[0-9]{1,6}")
# Fields a list response leaves out (the provider: "fields missing from list results must be
# fetched with submission_id").
_SINGLE_ONLY = frozenset({"project_options", "OCR_raw", "ocr", "verification"})
_LIST_DATA = (
    "name",
    "first_name",
    "last_name",
    "full_name",
    "gender",
    "nationality",
    "date_of_birth",
)

# What `ArgosEmulator.update` may not change: the server's indexes are built from them.
_FIXED_FIELDS = frozenset({"submission_id", "created_at", "email", "userid", "applicant_id"})
_DECIDED = ("approved", "rejected")
# Default reasons of a rejection made by `update`: incomplete ones time out, others are
# rejected by a reviewer (the seed's reject-code table).
_TIMEOUT_REJECT = (["timeout"], ["KYC rejected due to timeout"])
_AGENT_REJECT = (["other"], ["Rejected on manual review"])

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


class _BadQuery(Exception):
    pass


def _list_form(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in _SINGLE_ONLY}
    data = item.get("data")
    if data is not None:
        out["data"] = {k: data[k] for k in _LIST_DATA if k in data}
    kyc = item.get("kyc")
    if kyc is not None and "attempts" in kyc:
        out["kyc"] = {k: v for k, v in kyc.items() if k != "attempts"}
    return out


def _project(item: dict[str, Any], request_type: str | None) -> dict[str, Any]:
    if request_type is None:
        return item
    if request_type == "others":
        return {k: v for k, v in item.items() if k not in ("kyc", "aml", "data")}
    out = {"submission_id": item["submission_id"]}
    if request_type in item:
        out[request_type] = item[request_type]
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    `start` and `days`, which build `dataset`):

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

    Attributes besides those:

    - `dataset`: the `Dataset` served, as generated (shared with other emulators of the
      same arguments; `update` never changes it, `get` shows an item as now served).
    - `requests`: a `RecordedRequest` per request received, in arrival order.
    - `responses`: a `RecordedResponse` per response sent, in the order sent; a request that
      was cancelled (the client went away) has none.
    - `in_flight`: requests being handled right now; `max_in_flight` its high-water mark
      (see `reset_stats`).
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
        self.faults = faults if faults is not None else FaultPlan([])
        self._fault_state = self.faults.new_state()
        self.requests: list[RecordedRequest] = []
        self.responses: list[RecordedResponse] = []
        self.in_flight = 0
        self.max_in_flight = 0
        # Encoded items per (server position, form): big pages are joined from these.
        self._encoded: dict[tuple[int, bool, str | None], bytes] = {}
        # Items changed by update(), per server position; the shared Dataset stays as built.
        self._updated: dict[int, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._contexts: dict[int, FaultContext] = {}
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """The origin, e.g. `http://127.0.0.1:PORT` (valid once started)."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The full item as the emulator now serves it (with `update`s applied), or None;
        read-only."""
        pos = self.dataset.position.get(submission_id)
        return None if pos is None else self._item(pos)

    def update(
        self,
        submission_id: str,
        *,
        kyc_result: str | None = None,
        comment_code: Sequence[str] | None = None,
        comment: Sequence[str] | None = None,
        at: datetime | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Changes a submission after it was served, as the provider does when a reviewer
        decides a pending one or an incomplete one times out; list pages and single lookups
        served afterwards show the change. Returns the item as now served (read-only).

        `updated_at` moves to `at` (default: one minute after the item's `updated_at`, so
        runs stay deterministic). `kyc_result` sets `kyc.result`; a decision (approved,
        rejected) also sets `kyc_result_at` if the item had none, "pending" sets `pending_at`
        and the agent reviewer. A rejection carries `comment_code` and `comment` (default:
        "timeout" for an incomplete one, "other" otherwise); other results drop them. An
        approval adds an unscreened `aml` result if there was none; other results drop it.
        Applicant ids stay as generated. `fields` replaces top-level fields (None deletes
        one); `submission_id`, `created_at`, `email`, `userid` and `applicant_id` are fixed.
        """
        pos = self.dataset.position.get(submission_id)
        if pos is None:
            raise KeyError(submission_id)
        if kyc_result != "rejected" and (comment_code is not None or comment is not None):
            raise ValueError("comment_code and comment go with kyc_result='rejected'")
        fixed = _FIXED_FIELDS & set(fields or ())
        if fixed:
            raise ValueError(f"update cannot change {', '.join(sorted(fixed))}")
        # A deep copy: the Dataset's items are shared by every emulator built alike.
        item: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self._item(pos)))
        if at is None:
            last = _parse_time(item.get("updated_at") or item["created_at"])
            stamp = _format_time(last + timedelta(minutes=1))
        elif at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        else:
            stamp = _format_time(at)
        item["updated_at"] = stamp
        if kyc_result is not None:
            _set_result(item, kyc_result, stamp, comment_code, comment)
        for name, value in (fields or {}).items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = value
        self._updated[pos] = item
        for single in (True, False):
            for request_type in (None, *REQUEST_TYPES):
                self._encoded.pop((pos, single, request_type), None)
        return item

    def reset_stats(self) -> None:
        """Forgets recorded requests and responses and the concurrency high-water mark."""
        self.requests.clear()
        self.responses.clear()
        self.max_in_flight = self.in_flight

    async def start(self) -> None:
        """Starts listening; the real port is then in `port` and `url`."""
        if self._runner is not None:
            return

        @web.middleware
        async def pipeline(request: web.Request, handler: _Handler) -> web.StreamResponse:
            return await self._middleware(request, handler)

        app = web.Application(middlewares=[pipeline])
        app.router.add_get(LIST_PATH, self._submissions)
        app.router.add_get(APPLICANT_PATH, self._applicant)
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

    async def close(self) -> None:
        """Stops the server and closes its connections."""
        runner, self._runner = self._runner, None
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
        query: dict[str, str] = {}
        for key, value in request.query.items():
            query.setdefault(key, value)
        index = len(self.requests)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=query,
                headers={k.lower(): v for k, v in request.headers.items()},
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
            response, fault = await self._dispatch(request, handler, query)
            if not response.prepared:
                response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
            self.responses.append(
                RecordedResponse(index, response.status, fault, sent_at=time.monotonic())
            )
            return response
        finally:
            self.in_flight -= 1
            self._handlers.discard(task)

    async def _dispatch(
        self, request: web.Request, handler: _Handler, query: dict[str, str]
    ) -> tuple[web.StreamResponse, str | None]:
        """The response, and the name of the fault that shaped it (None for a normal one)."""
        if self.ip_allowlist is not None:
            peer = _normalize_ip(request.remote or "")
            if peer not in self.ip_allowlist:
                deny = {
                    "Message": "User is not authorized to access this resource"
                    " with an explicit deny"
                }
                return json_response(403, deny), None
        if not secrets.compare_digest(
            request.headers.get("x-api-key", "").encode(), self.api_key.encode()
        ):
            return json_response(403, {"message": "Forbidden"}), None
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

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return json_response(404, {"message": "Not Found"})

    def _respond(self, request: web.Request, body: bytes) -> web.Response:
        if self.response_byte_limit is not None and len(body) > self.response_byte_limit:
            return json_response(413, {"message": "Request Entity Too Large"})
        ctx = self._contexts.get(id(request))
        if ctx is not None:
            body = self.faults.rewrite_body(body, ctx)
        return web.Response(body=body, content_type="application/json")

    def _item(self, pos: int) -> dict[str, Any]:
        item = self._updated.get(pos)
        return self.dataset.items[pos] if item is None else item

    def _encoded_item(self, pos: int, single: bool, request_type: str | None) -> bytes:
        key = (pos, single, request_type)
        piece = self._encoded.get(key)
        if piece is None:
            item = self._item(pos)
            piece = msgspec.json.encode(
                _project(item if single else _list_form(item), request_type)
            )
            self._encoded[key] = piece
        return piece

    # -- endpoints --------------------------------------------------------------------------

    async def _submissions(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        request_type = q.get("request_type")
        if request_type is not None and request_type not in REQUEST_TYPES:
            return json_response(400, _BAD_QUERY)
        submission_id = q.get("submission_id")
        if submission_id is not None:
            pos = self.dataset.position.get(submission_id)
            if pos is None:
                return self._respond(request, b'{"Items":[]}')
            piece = self._encoded_item(pos, True, request_type)
            return self._respond(request, b'{"Items":[' + piece + b"]}")
        try:
            page = self._build_page(q, request_type)
        except _BadQuery:
            return json_response(400, _BAD_QUERY)
        ctx = self._contexts[id(request)]
        page = self.faults.rewrite_page(page, ctx)
        body = b'{"Items":[' + b",".join(page.items) + b"]"
        if page.next_key is not None:
            body += b',"nextpageKey":' + msgspec.json.encode(page.next_key)
        return self._respond(request, body + b"}")

    def _build_page(self, q: Any, request_type: str | None) -> ListPage:
        count = _parse_count(q.get("count"))
        try:
            start = None if "start_date" not in q else parse_query_date(q["start_date"])
            end = None if "end_date" not in q else parse_query_date(q["end_date"])
        except ValueError:
            raise _BadQuery from None
        if start is not None and end is not None and start > end:
            raise _BadQuery
        next_id, next_date = q.get("nextpage_id"), q.get("nextpage_date")
        if (next_id is None) != (next_date is None):
            raise _BadQuery
        ds = self.dataset
        begin, end_pos = ds.date_range(start, end)
        if next_id is not None and next_date is not None:
            begin = max(begin, ds.position_after(next_date, next_id))
        email, userid = q.get("email"), q.get("userid")
        base: Sequence[int] = range(begin, max(begin, end_pos))
        if email is None and userid is None:
            return self._take(base, count, request_type, None)
        if self.filter_mode == "scan":
            return self._take(base, count, request_type, (email, userid))
        # Index mode: walk the smaller index and check the other field.
        lists = []
        if email is not None:
            lists.append(ds.email_positions.get(email, []))
        if userid is not None:
            lists.append(ds.userid_positions.get(userid, []))
        positions = min(lists, key=len)
        window = positions[
            bisect.bisect_left(positions, begin) : bisect.bisect_left(positions, end_pos)
        ]
        if len(lists) == 2:
            window = [p for p in window if ds.emails[p] == email and ds.userids[p] == userid]
        return self._take(window, count, request_type, None)

    def _take(
        self,
        candidates: Sequence[int],
        count: int,
        request_type: str | None,
        scan_filter: tuple[str | None, str | None] | None,
    ) -> ListPage:
        """Fills a page from `candidates`; with `scan_filter`, evaluated items that do not match
        are dropped after counting against `count` and the byte limit, like a DynamoDB
        FilterExpression."""
        ds = self.dataset
        limit = self.page_byte_limit
        pieces: list[bytes] = []
        used = 0
        taken = 0
        for pos in candidates:
            if taken == count:
                break
            piece = self._encoded_item(pos, False, request_type)
            if limit is not None and taken and used + len(piece) + 1 > limit:
                break
            taken += 1
            used += len(piece) + 1
            if scan_filter is not None:
                email, userid = scan_filter
                if (email is not None and ds.emails[pos] != email) or (
                    userid is not None and ds.userids[pos] != userid
                ):
                    continue
            pieces.append(piece)
        next_key = None
        if taken < len(candidates):
            last = candidates[taken - 1] if taken else None
            if last is not None:
                next_key = {"id": ds.ids[last], "created_at": ds.created_ats[last]}
        return ListPage(items=pieces, next_key=next_key)

    async def _applicant(self, request: web.Request) -> web.StreamResponse:
        applicant_id = request.query.get("applicant_id")
        if not applicant_id:
            return json_response(400, _BAD_QUERY)
        out = []
        for pos in self.dataset.applicant_positions.get(applicant_id, ()):
            item = self._item(pos)
            entry = {"submission_id": item["submission_id"], "email": item["email"]}
            if "duplicated_information" in item:
                entry["duplicated_information"] = item["duplicated_information"]
            out.append(entry)
        return self._respond(request, msgspec.json.encode(out))


def _set_result(
    item: dict[str, Any],
    result: str,
    stamp: str,
    comment_code: Sequence[str] | None,
    comment: Sequence[str] | None,
) -> None:
    kyc = item.setdefault("kyc", {})
    previous = kyc.get("result")
    kyc["result"] = result
    if result in _DECIDED:
        item.setdefault("kyc_result_at", stamp)
    if result == "pending":
        item.setdefault("pending_at", stamp)
        item["reviewer"] = "agent"
    if result == "rejected":
        codes, texts = _TIMEOUT_REJECT if previous == "incomplete" else _AGENT_REJECT
        kyc["commentCode"] = list(codes if comment_code is None else comment_code)
        kyc["comment"] = list(texts if comment is None else comment)
    else:
        kyc.pop("commentCode", None)
        kyc.pop("comment", None)
    if result == "approved":
        item.setdefault(
            "aml", {"risk_level_summary": "Not Screened", "currentstatus": "Not Screened"}
        )
    else:
        item.pop("aml", None)


def _parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _format_time(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _parse_count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_COUNT
    if not _COUNT_RE.fullmatch(raw):
        raise _BadQuery
    count = int(raw)
    if not 1 <= count <= MAX_COUNT:
        raise _BadQuery
    return count
