"""Recipe: argos_async in a FastAPI service.

One :class:`~argos_async.ArgosClient` per application, opened by the lifespan and closed on
shutdown (its connection pool, its 429 pause and its retry budget are shared by every request),
handed to endpoints by the :func:`get_argos` dependency. Two endpoints:

- ``GET /submissions/{submission_id}``: one submission as JSON;
- ``GET /users/{userid}/submissions``: every submission of that user as NDJSON (one item per
  line, exactly as the API sent it), streamed page by page while the next page is read ahead.

Errors of the API become answers of this service (see :func:`add_argos_error_handlers`):
``NotFoundError`` 404; ``RateLimitError`` and ``QuotaExceededError`` 503 with ``Retry-After``
(the upstream's wait, or :data:`DEFAULT_RETRY_AFTER` when it gave none); ``APITimeoutError``
(the upstream did not answer within the client's ``timeout`` or ``deadline``) 504 Gateway
Timeout; any other ``APIError`` (bad key, 5xx after retries, connection errors, bodies that do
not decode) 502. The bodies carry the error's message, which never holds the key and has emails
and user ids masked.

Run it (needs ``pip install "argos-async[fastapi]" uvicorn``)::

    ARGOS_API_KEY=... uvicorn --factory examples.fastapi_app:create_app

or against the emulator: ``python -m argos_async.testing serve --port 8080`` prints a key;
then ``ARGOS_API_KEY=<key> ARGOS_BASE_URL=http://127.0.0.1:8080 uvicorn --factory ...``.
FastAPI is needed by this module only; ``argos_async`` itself never imports it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

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
    Page,
    QuotaExceededError,
    RateLimitError,
    Stream,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_RETRY_AFTER",
    "Argos",
    "ListingInterrupted",
    "NDJSONListing",
    "add_argos_error_handlers",
    "create_app",
    "get_argos",
    "router",
]

logger = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode

DEFAULT_RETRY_AFTER = 5
"""The ``Retry-After`` (seconds) of a 503 for an upstream 429 that named no wait. Without one a
client may retry at once, which a throttled upstream needs least; the client has already
retried with backoff by then, so the throttling is not a one-second blip."""

DEFAULT_DEADLINE = 10.0
"""The app's client ``deadline`` unless ``client_options`` sets one: the seconds one API call
may take, retries and waits included (a page's request, in a listing). A web request should get
its 503 or 504 while its caller still waits for it, not after a minute of retries, or of the
pause that a long ``Retry-After`` puts on the whole client."""


def create_app(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> FastAPI:
    """The service: the routes of :data:`router`, the error handlers, and a lifespan owning
    one ArgosClient.

    ``api_key`` and ``base_url`` default to the ``ARGOS_API_KEY`` and ``ARGOS_BASE_URL``
    environment variables (read by the client at startup, so a missing key fails the startup,
    not the first request). ``client_options`` are further ``ArgosClient`` arguments
    (``timeout``, ``max_retries``, ``max_requests_per_second``, ...); ``deadline`` defaults to
    :data:`DEFAULT_DEADLINE`.
    """
    options = {"deadline": DEFAULT_DEADLINE, **(client_options or {})}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ArgosClient(api_key, base_url=base_url, **options) as argos:
            app.state.argos = argos
            try:
                yield
            finally:
                del app.state.argos

    app = FastAPI(title="argos_async FastAPI recipe", lifespan=lifespan)
    app.include_router(router)
    add_argos_error_handlers(app)
    return app


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
UserId = Annotated[str, Path(pattern=r"\S", max_length=256)]


class ListingInterrupted(Exception):
    """The listing failed after the NDJSON response had started: the response is aborted."""


class NDJSONListing(StreamingResponse):
    """A listing streamed as NDJSON, a page per chunk. The listing is closed however the
    response ends (finished, failed, or the client went away), which cancels the page being
    read ahead at once instead of whenever the garbage collector gets to it.
    """

    media_type = "application/x-ndjson"

    def __init__(self, first: Page | None, pages: Stream[Page]) -> None:
        self._pages = pages
        self._chunks = self._lines(first)
        super().__init__(self._chunks)

    async def _lines(self, first: Page | None) -> AsyncGenerator[bytes, None]:
        sent = 0
        try:
            if first is not None:
                sent += len(first.items)
                yield _ndjson(first)
            async for page in self._pages:
                sent += len(page.items)
                yield _ndjson(page)
        except APIError as exc:
            # Too late for an error status: abort the response so the client sees a cut-off
            # body rather than a complete-looking short list.
            logger.warning("listing failed after %d items, response aborted: %s", sent, exc)
            raise ListingInterrupted(str(exc)) from exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Sends the response, then closes the listing whatever happened."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: on a disconnect this runs inside a cancelled scope.
            with anyio.CancelScope(shield=True):
                await self._chunks.aclose()
                await self._pages.aclose()


def _ndjson(page: Page) -> bytes:
    lines = []
    for raw in page.raw_items:
        line = bytes(raw)
        if b"\n" in line or b"\r" in line:
            # Compact JSON never holds a raw newline; a pretty-printed item would break the
            # one-item-per-line framing.
            line = msgspec.json.format(line, indent=-1)
        lines.append(line)
    return b"".join(line + b"\n" for line in lines)


router = APIRouter()
"""The recipe's routes, to include in an application that provides the lifespan and handlers."""


@router.get("/submissions/{submission_id}", response_class=Response)
async def get_submission(submission_id: SubmissionId, argos: Argos) -> Response:
    """One submission, with every field a single lookup returns, as JSON."""
    submission = await argos.get_submission(submission_id)
    return Response(_encode(submission), media_type="application/json")


@router.get("/users/{userid}/submissions", response_class=StreamingResponse)
async def list_user_submissions(
    userid: UserId,
    argos: Argos,
    page_size: Annotated[int, Query(ge=1, le=2000)] = 2000,
) -> NDJSONListing:
    """Every submission of ``userid``, newest first, as NDJSON: one item per line, as sent."""
    pages = argos.iter_pages(userid=userid, page_size=page_size)
    # The first page is fetched before answering, so that a failure of the first request
    # (bad key, rate limit, outage) still gets its proper status code.
    try:
        first: Page | None = await anext(pages)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await pages.aclose()
        raise
    return NDJSONListing(first, pages)


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
    # Only the message: it is masked by the client, whereas `body` is the upstream's raw text.
    body: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, APIStatusError):
        body["detail"] = exc.message
        if exc.request_id:
            body["upstream_request_id"] = exc.request_id
    else:
        body["detail"] = str(exc)
    return body
