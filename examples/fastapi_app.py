"""Recipe: argos_async in a FastAPI service.

One :class:`~argos_async.ArgosClient` per application, opened by the lifespan and closed on
shutdown (its connection pool, its 429 pause and its retry budget are shared by every request),
handed to endpoints by the :func:`get_argos` dependency. Both endpoints answer with the API's
JSON exactly as the API sent it: nothing is decoded into a ``Submission`` and encoded again, so
no field gains a ``null`` and no timestamp changes its text.

- ``GET /submissions/{submission_id}``: the submission (``application/json``), the item's bytes
  as the API sent them (:meth:`~argos_async.ArgosClient.get_raw_submission`);
- ``GET /users/{userid}/submissions``: every submission of that user as NDJSON
  (``application/x-ndjson``), one item per line as the API sent it
  (:meth:`~argos_async.ArgosClient.iter_raw_pages`), streamed page by page while the next page
  is read ahead.

Errors of the API before a response has started (any lookup's, a listing's first page's)
become answers of this service (see :func:`add_argos_error_handlers`): ``NotFoundError`` 404;
``RateLimitError`` and ``QuotaExceededError`` 503 with ``Retry-After`` (the upstream's wait, or
:data:`DEFAULT_RETRY_AFTER` when it gave none); ``APITimeoutError`` (the upstream did not answer
within the client's ``timeout`` or ``deadline``) 504 Gateway Timeout; any other ``APIError``
(bad key, 5xx after retries, connection errors, bodies that do not decode) 502. The bodies are
``{"error": TYPE, "detail": MESSAGE, "upstream_request_id": ID}`` (the id when there is one):
the error's message, which never holds the key and has emails and user ids masked.

A listing whose later page fails (after the client's retries) can no longer change its 200: the
body has started. It then ends normally (a complete HTTP response, not a cut-off one) with one
last line that says what failed, the *error line*::

    {"error": {"type": "ServerError", "detail": "Service Unavailable",
               "upstream_status": 503, "upstream_request_id": "6f0c..."}}

(on one line). ``type`` is the exception's class name (:mod:`argos_async.errors`), ``detail``
its message as in the error answers above (masked), ``upstream_status`` and
``upstream_request_id`` the status and request id of the upstream's answer, ``null`` when
there was none (a connection error, a timeout, a body that did not decode). How a consumer
tells a complete listing from a failed one: every item line is a submission object, which has
a ``submission_id``; the error line is the only line whose object has the single key
``"error"``, and it is always the last. A body whose last line is an error line is a failed
listing: the lines before it are valid items in the server's order, the rest is missing. A
body that ends cleanly otherwise (an empty body included: a user without submissions) is the
complete listing; a body cut off (no final newline, or the HTTP response itself broken) is
incomplete as well. The server logs each such failure as one WARNING record of the
``examples.fastapi_app`` logger, one line and no traceback, naming the request (user id
masked), how many items went out, and the error.

Traced end to end with ``create_app(otel=True)`` (needs ``argos-async[otel]`` and
``opentelemetry-instrumentation-fastapi``): FastAPI's instrumentation opens a server span per
incoming request, named by its route (``GET /users/{userid}/submissions``), and
:func:`argos_async.otel.instrument` puts the Argos calls it makes under it (a span per lookup
or page, one per attempt). The path attributes of the server span hold the route too, not the
user id the caller put in the path (:func:`_route_only`): no span holds personal data.

Run it from a fresh clone, in its root directory, with Python 3.10 or newer (uvicorn comes
with the ``fastapi`` extra)::

    python3 -m venv .venv && . .venv/bin/activate
    python -m pip install -e ".[fastapi]"

Against the emulator: in one shell, start it; it prints its URL and a throwaway key::

    python -m argos_async.testing serve --port 8080
    # Argos emulator listening on http://127.0.0.1:8080 (10000 submissions, api key: KEY)

then in another (same directory, the venv activated), with that key::

    ARGOS_API_KEY=KEY ARGOS_BASE_URL=http://127.0.0.1:8080 \
        uvicorn --factory examples.fastapi_app:create_app --port 8000
    curl -s "http://127.0.0.1:8000/users/qa_runner_1/submissions?page_size=100" | head -n 2
    curl -s http://127.0.0.1:8000/submissions/SUBMISSION_ID   # an id from the listing

Against the API: ``ARGOS_API_KEY=<your key> uvicorn --factory examples.fastapi_app:create_app``.
``ARGOS_API_KEY`` is required (without it the startup fails); ``ARGOS_BASE_URL`` is optional
(default: the API's current host, :data:`argos_async.DEFAULT_BASE_URL`). Run uvicorn from the
clone's root: ``examples`` is not part of the installed package, uvicorn imports it from the
current directory. uvicorn's access log prints each request's path: :func:`create_app` adds
:class:`MaskedAccessLog` to it, so the user id in ``/users/{userid}/...`` shows masked, as in
this module's own log lines. FastAPI is
needed by this module only; ``argos_async`` itself never imports it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import msgspec
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from argos_async import (
    APIError,
    APIStatusError,
    APITimeoutError,
    ArgosClient,
    ClientPausedError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    RawPage,
    Stream,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "ACCESS_LOG_FILTER",
    "DEFAULT_DEADLINE",
    "DEFAULT_RETRY_AFTER",
    "Argos",
    "MaskedAccessLog",
    "NDJSONListing",
    "add_argos_error_handlers",
    "create_app",
    "get_argos",
    "router",
]

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5
"""The ``Retry-After`` (seconds) of a 503 for an upstream 429 that named no wait. Without one a
client may retry at once, which a throttled upstream needs least; the client has already
retried with backoff by then, so the throttling is not a one-second blip."""

DEFAULT_DEADLINE = 10.0
"""The app's client ``deadline`` unless ``client_options`` sets one: the seconds one API call
may take, retries and waits included (a page's request, in a listing). A web request should get
its 503 or 504 while its caller still waits for it, not after a minute of retries, or of the
pause that a long ``Retry-After`` puts on the whole client."""


class MaskedAccessLog(logging.Filter):
    """Masks the user id in the path of uvicorn's access log lines (``uvicorn.access``):
    ``/users/{userid}/submissions`` names a person, and the access log prints every path.
    Made to match how the client masks ids (the first character, then ``***``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path, version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], _USER_IN_PATH.sub(_masked_user, args[2]), *args[3:])
        return True


ACCESS_LOG_FILTER = MaskedAccessLog()
""":func:`create_app` adds it to the ``uvicorn.access`` logger."""

_USER_IN_PATH = re.compile(r"(/users/)([^/?#]+)")


def _masked_user(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)[:1]}***"


def create_app(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    otel: bool = False,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> FastAPI:
    """The service: the routes of :data:`router`, the error handlers, and a lifespan owning
    one ArgosClient.

    ``api_key`` and ``base_url`` default to the ``ARGOS_API_KEY`` and ``ARGOS_BASE_URL``
    environment variables (read by the client at startup, so a missing key fails the startup,
    not the first request). ``client_options`` are further ``ArgosClient`` arguments
    (``timeout``, ``max_retries``, ``max_requests_per_second``, ...); ``deadline`` defaults to
    :data:`DEFAULT_DEADLINE`.

    ``otel=True`` traces the service with OpenTelemetry: FastAPI's instrumentation and
    ``argos_async.otel`` on the client, with ``tracer_provider`` and ``meter_provider`` (by
    default the global ones).
    """
    options = {"deadline": DEFAULT_DEADLINE, **(client_options or {})}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ArgosClient(api_key, base_url=base_url, **options) as argos:
            if otel:
                from argos_async.otel import instrument

                instrument(argos, tracer_provider=tracer_provider, meter_provider=meter_provider)
            app.state.argos = argos
            try:
                yield
            finally:
                del app.state.argos

    app = FastAPI(title="argos_async FastAPI recipe", lifespan=lifespan)
    app.include_router(router)
    add_argos_error_handlers(app)
    logging.getLogger("uvicorn.access").addFilter(ACCESS_LOG_FILTER)  # once: a set of filters
    if otel:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            server_request_hook=_route_only,
        )
    return app


def _route_only(span: Span, scope: dict[str, Any]) -> None:
    """The server span names the route, not the ids in the path, in its path and URL
    attributes: the ``userid`` of ``/users/{userid}/submissions`` is personal data.

    FastAPI's instrumentation has found the route (``http.route``) by the time it calls this
    hook; an SDK span lets it be read back (the API's spans are write-only)."""
    attributes = getattr(span, "attributes", None) or {}
    template = attributes.get("http.route")
    if not isinstance(template, str) or not span.is_recording():
        return
    origin = f"{scope.get('scheme', 'http')}://{_host(scope)}"
    for name in ("http.target", "url.path"):
        if name in attributes:
            span.set_attribute(name, template)
    for name in ("http.url", "url.full"):
        if name in attributes:
            span.set_attribute(name, origin + template)
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def _host(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return "localhost"


async def get_argos(request: Request) -> ArgosClient:
    """Dependency: the application's ArgosClient (``Depends(get_argos)``, or :data:`Argos`)."""
    # async: FastAPI would run a plain def dependency in a worker thread.
    argos = getattr(request.app.state, "argos", None)
    if not isinstance(argos, ArgosClient):
        raise RuntimeError("no ArgosClient: the application's lifespan is not running")
    return argos


Argos = Annotated[ArgosClient, Depends(get_argos)]
"""An endpoint parameter annotated ``Argos`` receives the application's ArgosClient."""

# At least one non-blank character: the client refuses blank ids, and this makes that a 422.
SubmissionId = Annotated[str, Path(pattern=r"\S", max_length=256)]
"""The ``{submission_id}`` of a path: up to 256 characters, not all blank (else a 422)."""
UserId = Annotated[str, Path(pattern=r"\S", max_length=256)]
"""The ``{userid}`` of a path: up to 256 characters, not all blank (else a 422)."""


class NDJSONListing(StreamingResponse):
    """A listing streamed as NDJSON, a page per chunk, each item on a line of its own as the
    API sent it.

    ``first`` is the page already fetched (``None`` when the listing had none), ``pages`` the
    listing's further pages; ``name`` names the request in the log, personal values masked.
    An ``APIError`` of a later page ends the body with the error line of the module docstring,
    after one WARNING record (no traceback); any other exception is a bug and propagates.
    The listing is closed however the response ends (finished, failed, or the client went
    away), which cancels the page being read ahead at once instead of whenever the garbage
    collector gets to it.
    """

    media_type = "application/x-ndjson"

    def __init__(self, first: RawPage | None, pages: Stream[RawPage], *, name: str) -> None:
        self._pages = pages
        self._name = name
        self._chunks = self._lines(first)
        super().__init__(self._chunks)

    async def _lines(self, first: RawPage | None) -> AsyncGenerator[bytes, None]:
        sent = 0
        try:
            if first is not None:
                sent += len(first.items)
                yield _ndjson(first)
            async for page in self._pages:
                sent += len(page.items)
                yield _ndjson(page)
        except APIError as exc:
            # Too late for an error status: the 200 and `sent` items are out. Say what failed
            # in the body's last line, and end the body normally.
            logger.warning(
                "%s failed after %d items; the NDJSON body ends with an error line: %s: %s",
                self._name,
                sent,
                type(exc).__name__,
                _one_line(str(exc)),
            )
            yield _error_line(exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Sends the response, then closes the listing whatever happened."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: on a disconnect this runs inside a cancelled scope.
            with anyio.CancelScope(shield=True):
                await self._chunks.aclose()
                await self._pages.aclose()


def _ndjson(page: RawPage) -> bytes:
    lines = []
    for raw in page.items:
        line = bytes(raw)
        if b"\n" in line or b"\r" in line:
            # Compact JSON never holds a raw newline; a pretty-printed item would break the
            # one-item-per-line framing.
            line = msgspec.json.format(line, indent=-1)
        lines.append(line)
    return b"".join(line + b"\n" for line in lines)


def _error_line(exc: APIError) -> bytes:
    """The NDJSON body's last line for a listing that failed after its response started."""
    answer = exc if isinstance(exc, APIStatusError) else None
    error = {
        "type": type(exc).__name__,
        "detail": _detail(exc),
        "upstream_status": None if answer is None else answer.status,
        "upstream_request_id": None if answer is None else answer.request_id,
    }
    return msgspec.json.encode({"error": error}) + b"\n"


def _one_line(text: str) -> str:
    # An upstream's message may span lines; a log record of this module never does.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _mask_id(value: str) -> str:
    """A user id for a log line, as the library masks one: its first character."""
    return f"{value[:1]}***"


router = APIRouter()
"""The recipe's routes, to include in an application that provides the lifespan and handlers."""


@router.get("/submissions/{submission_id}", response_class=Response)
async def get_submission(submission_id: SubmissionId, argos: Argos) -> Response:
    """One submission, with every field a single lookup returns: the JSON the API sent for
    it, byte for byte."""
    raw = await argos.get_raw_submission(submission_id)
    return Response(bytes(raw), media_type="application/json")


@router.get("/users/{userid}/submissions", response_class=StreamingResponse)
async def list_user_submissions(
    userid: UserId,
    argos: Argos,
    page_size: Annotated[int, Query(ge=1, le=2000)] = 2000,
) -> NDJSONListing:
    """Every submission of ``userid``, newest first, as NDJSON: one item per line, as sent;
    a failure after the first page ends the body with an error line (module docstring)."""
    pages = argos.iter_raw_pages(userid=userid, page_size=page_size)
    # The first page is fetched before answering, so that a failure of the first request
    # (bad key, rate limit, outage) still gets its proper status code.
    try:
        first: RawPage | None = await anext(pages)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await pages.aclose()
        raise
    return NDJSONListing(first, pages, name=f"GET /users/{_mask_id(userid)}/submissions")


def add_argos_error_handlers(app: FastAPI) -> None:
    """Maps every ``APIError`` the endpoints let through to an answer of this service."""
    app.add_exception_handler(APIError, _api_error)


async def _api_error(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, (RateLimitError, ClientPausedError)):
        # Upstream is throttling or out of quota (or the client is paused by its last 429):
        # unavailable for now, come back later.
        status = 503
        headers["Retry-After"] = str(max(0, math.ceil(_seconds_to_wait(exc))))
    elif isinstance(exc, APITimeoutError):
        # The upstream did not answer in time: a gateway's timeout, not a bad answer.
        status = 504
        logger.warning("Argos API call timed out: %s", exc)
    else:
        status = 502
        logger.warning("Argos API call failed: %s", exc)
    return JSONResponse(_error_body(exc), status_code=status, headers=headers)


def _seconds_to_wait(exc: RateLimitError | ClientPausedError) -> float:
    if exc.retry_after is not None:
        return exc.retry_after
    if isinstance(exc, QuotaExceededError):
        return (exc.resets_at - datetime.now(timezone.utc)).total_seconds()
    return DEFAULT_RETRY_AFTER


def _error_body(exc: Exception) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(exc).__name__, "detail": _detail(exc)}
    if isinstance(exc, APIStatusError) and exc.request_id:
        body["upstream_request_id"] = exc.request_id
    return body


def _detail(exc: Exception) -> str:
    # Only the message: it is masked by the client, whereas `body` is the upstream's raw text.
    return exc.message if isinstance(exc, APIStatusError) else str(exc)
