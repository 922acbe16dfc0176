"""Recipe: a FastAPI service that receives Argos webhooks and keeps a store current with them.

Argos signs no webhook: anyone who knows the URL can POST one, and real deliveries may come
late, twice, out of order, or never. So a webhook here is only a hint that a submission may
have changed. ``POST /webhooks`` hands the body to a :class:`~argos_async.webhooks.WebhookInbox`
and answers 202 at once (the inbox does no I/O in the request); the inbox drops repeated
deliveries, coalesces the submissions and, one batch at a time, fetches each through the API
(:func:`~argos_async.webhooks.fetch_truth`), then hands what the API says to your code:

- :func:`create_app` calls ``on_truth(truth)`` for each submission
  (:class:`~argos_async.webhooks.SubmissionTruth`: the API's JSON as sent in ``raw``, or
  ``deleted=True`` when the API no longer has it). Make it an idempotent upsert: an id may come
  again after a failed delivery;
- :func:`create_mirror_app` keeps the dlt mirror's table current instead
  (``mirror(pipeline, refresh_ids=ids)``, :mod:`argos_async.dlt`), and, with
  ``reconcile_every``, runs the scheduled mirror in the same process, which finds what
  webhooks missed. As with ``fetch_truth``, one id does not cost the others: an id the API
  refuses (400, a forged webhook's) is dropped with a warning, and only the ids whose lookup
  failed are tried again, the rows of the others being written.

A ``delete`` webhook becomes a deletion only once the API confirms it (the lookup finds
nothing): a forged one costs a lookup and erases nothing. A forged flood costs lookups, at most
``max_pending`` waiting at once: serve the endpoint on a path nobody guesses (Argos posts to the
URL you register, a secret in it is fine) or behind an IP allow-list.

Answers: 202 ``{"accepted": true}`` for an event that added a submission to fetch (``false``
for a repeated delivery or an event about no submission: nothing to do, and no reason for the
sender to retry); 400 ``{"error": "WebhookDecodeError", "detail": ...}`` for a body that is
not a webhook (the detail names the problem, never the body's data; nothing of the body is
logged); 413 for a body over :data:`MAX_BODY_BYTES`; 503 with ``Retry-After`` when the inbox is
full (the sender, or the scheduled reconciliation, brings it again later).

Run it from the clone's root, with the ``fastapi`` extra (``python -m pip install -e
".[fastapi]"``), against the emulator (``python -m argos_async.testing serve --port 8080``
prints its key)::

    ARGOS_API_KEY=KEY ARGOS_BASE_URL=http://127.0.0.1:8080 \\
        uvicorn --factory examples.webhook_receiver:create_printing_app --port 8000
    curl -s -X POST http://127.0.0.1:8000/webhooks \\
        -d '{"webhook_trigger": "approved", "submission_id": "SUBMISSION_ID"}'

(:func:`create_printing_app` logs each truth; your application passes its own ``on_truth``.)
The emulator sends its own webhooks too: ``serve --webhook-url
http://127.0.0.1:8000/webhooks``, then change submissions through its admin endpoint.

A project with secure transmission on gets its webhooks encrypted: give the inbox the key
(``inbox_options={"key": api_key}``, the API key or the project's secret key) and the client
the mode (``client_options={"secure_transmission": True}``); a plain body is then a 400.
FastAPI is needed by this module only; ``argos_async`` itself never imports it, nor dlt unless
:func:`create_mirror_app` is used.

One mirror at a time: a dlt pipeline is not thread-safe. The refreshes and the scheduled runs
of :func:`create_mirror_app` share one pipeline object and one :class:`anyio.Lock`, each run in
a worker thread while holding it; the inbox already delivers one batch at a time. Run no other
process on the same pipeline (a cron job beside the service): two writers could put an older
state over a newer one (until the next run corrects it) and race for the pipeline's state.

Stopping the mirror service waits for the run in progress. A run is ``pipeline.run`` in a
worker thread, and nothing stops a thread from outside: a shutdown while a scheduled run holds
the lock waits until it ends (on the first start that run is the whole first backfill, which
can take many minutes), and a refresh in progress runs to its end, even past the inbox's
``close_timeout``. The run is not abandoned on purpose: its thread would go on writing after
the lock was released, beside the refreshes of the inbox's exit on the same pipeline, and
Python waits for that thread at exit anyway. If the service cannot wait, kill it: a killed run
is safe (the next start loads what it had extracted and goes on from the state of the last
finished load; with ``days_per_run``, a first backfill keeps the loads it had finished).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from argos_async import ArgosClient, DeliveryError, InboxFullError, WebhookDecodeError
from argos_async.webhooks import Deliver, OnTruth, SubmissionTruth, WebhookInbox, fetch_truth

if TYPE_CHECKING:
    from dlt.pipeline.pipeline import Pipeline

__all__ = [
    "FULL_RETRY_AFTER",
    "MAX_BODY_BYTES",
    "create_app",
    "create_mirror_app",
    "create_printing_app",
    "mirror_deliver",
    "reconcile_forever",
    "router",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
"""The largest body taken (413 above it): a webhook is a few kilobytes."""

FULL_RETRY_AFTER = 30
"""The ``Retry-After`` (seconds) of a 503 from a full inbox."""


def create_app(
    on_truth: OnTruth,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    inbox_options: Mapping[str, Any] | None = None,
    concurrency: int = 8,
) -> FastAPI:
    """The receiver, handing each submission's truth to ``on_truth``.

    The lifespan owns one ``ArgosClient`` (``api_key``, ``base_url`` and ``client_options``
    as it takes them; the key from ``ARGOS_API_KEY`` by default) and one ``WebhookInbox``
    (``inbox_options``: ``batch_size``, ``max_pending``, ...) delivering through
    ``fetch_truth`` with ``concurrency`` lookups at most in flight. On shutdown the inbox
    delivers what is pending first (``close_timeout``), then the client closes.
    """

    @asynccontextmanager
    async def inbox(stack: AsyncExitStack) -> AsyncIterator[WebhookInbox]:
        argos = await stack.enter_async_context(
            ArgosClient(api_key, base_url=base_url, **(client_options or {}))
        )
        deliver = fetch_truth(argos, on_truth, concurrency=concurrency)
        async with WebhookInbox(deliver, **(inbox_options or {})) as running:
            yield running

    return _app(inbox)


def create_printing_app() -> FastAPI:
    """:func:`create_app` with an ``on_truth`` that logs each submission's state, for a first
    try (``uvicorn --factory examples.webhook_receiver:create_printing_app``)."""
    logging.basicConfig(level=logging.INFO)

    async def log_truth(truth: SubmissionTruth) -> None:
        if truth.deleted or truth.raw is None:
            logger.info("submission %s***: deleted", truth.submission_id[:1])
            return
        try:
            state = msgspec.json.decode(truth.raw, type=_State)
        except msgspec.ValidationError:
            state = _State()  # a field of another type: this is only a log line
        logger.info(
            "submission %s***: kyc %s, aml %s",
            truth.submission_id[:1],
            state.kyc.result if state.kyc else None,
            state.aml.currentstatus if state.aml else None,
        )

    return create_app(log_truth)


def create_mirror_app(
    pipeline: Pipeline,
    source_arguments: Mapping[str, Any],
    *,
    reconcile_every: float | None = None,
    inbox_options: Mapping[str, Any] | None = None,
) -> FastAPI:
    """The receiver keeping the dlt mirror in ``pipeline`` current: each batch of submissions
    becomes ``mirror(pipeline, refresh_ids=ids, **source_arguments)`` (the arguments the
    scheduled mirror takes: ``start_date``, the key, ...).

    ``reconcile_every``: also run the scheduled ``mirror(pipeline, **source_arguments)`` when
    the service starts and then every this many seconds, under the same lock, so that what
    webhooks missed is found. None: the schedule runs elsewhere, on this same pipeline object
    and lock (``mirror_deliver``, ``reconcile_forever``); never in another process on the
    same pipeline (see the module documentation).

    The shutdown waits for a run in progress, a whole scheduled run included (see the module
    documentation).
    """
    lock = anyio.Lock()
    deliver = mirror_deliver(pipeline, lock, source_arguments)

    @asynccontextmanager
    async def inbox(stack: AsyncExitStack) -> AsyncIterator[WebhookInbox]:
        async with WebhookInbox(deliver, **(inbox_options or {})) as running:
            if reconcile_every is None:
                yield running
                return
            schedule = asyncio.create_task(
                reconcile_forever(pipeline, lock, source_arguments, reconcile_every)
            )
            try:
                yield running
            finally:
                # The schedule first: the inbox then delivers what is pending.
                schedule.cancel()
                await asyncio.wait({schedule})

    return _app(inbox)


def mirror_deliver(
    pipeline: Pipeline, lock: anyio.Lock, source_arguments: Mapping[str, Any]
) -> Deliver:
    """A deliver for ``WebhookInbox``: a refresh of the batch's ids in the mirror, in a
    worker thread, holding ``lock`` (shared with the scheduled runs of ``pipeline``).

    One id does not cost the others: an id the API refuses (400, a forged webhook's) is
    skipped by the refresh with a warning; ids whose lookup failed otherwise are raised as a
    ``DeliveryError`` naming only them, once the rows of the others are loaded, so the inbox
    tries just those again. A refresh that fails as a whole (the destination, say) raises
    what ``mirror`` raised, and the inbox tries the whole batch again."""
    from argos_async.dlt import mirror

    async def deliver(submission_ids: list[str]) -> None:
        job = functools.partial(mirror, pipeline, refresh_ids=submission_ids, **source_arguments)
        async with lock:
            result = await anyio.to_thread.run_sync(job)
        if result.refresh_failed:
            failed = result.refresh_failed
            raise DeliveryError(
                failed,
                f"{len(failed)} of {len(submission_ids)} submissions not refreshed: "
                f"{result.refresh_error}",
            )

    return deliver


async def reconcile_forever(
    pipeline: Pipeline, lock: anyio.Lock, source_arguments: Mapping[str, Any], interval: float
) -> None:
    """The scheduled mirror, now and then every ``interval`` seconds, holding ``lock``; a run
    that fails is logged and the next one goes on (dlt keeps the table and state safe)."""
    from argos_async.dlt import mirror

    job = functools.partial(mirror, pipeline, **source_arguments)
    while True:
        try:
            async with lock:
                result = await anyio.to_thread.run_sync(job)
        except Exception as exc:  # the next run tries again
            logger.warning("scheduled mirror failed: %s: %s", type(exc).__name__, exc)
        else:
            logger.info(
                "scheduled mirror: %d new, %d changed, %d deleted",
                result.new,
                result.changed,
                result.deleted,
            )
        await asyncio.sleep(interval)


def _app(
    inbox: Callable[[AsyncExitStack], AbstractAsyncContextManager[WebhookInbox]],
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.inbox = await stack.enter_async_context(inbox(stack))
            try:
                yield
            finally:
                del app.state.inbox

    app = FastAPI(title="argos_async webhook receiver", lifespan=lifespan)
    app.include_router(router)
    return app


router = APIRouter()
"""The receiver's route (``POST /webhooks``), for an application whose lifespan puts a running
``WebhookInbox`` in ``app.state.inbox``."""


@router.post("/webhooks", status_code=202)
async def receive_webhook(request: Request) -> Response:
    """Takes one webhook: 202 at once, 400, 413 or 503 (see the module documentation)."""
    inbox = getattr(request.app.state, "inbox", None)
    if not isinstance(inbox, WebhookInbox):
        raise RuntimeError("no WebhookInbox: the application's lifespan is not running")
    body = await _body(request)
    if body is None:
        return JSONResponse({"error": "PayloadTooLarge"}, status_code=413)
    try:
        fresh = inbox.accept(body)
    except WebhookDecodeError as exc:
        # The message names what is wrong with the body, never what it holds.
        logger.warning("webhook refused: %s", exc)
        return JSONResponse({"error": "WebhookDecodeError", "detail": str(exc)}, status_code=400)
    except InboxFullError as exc:
        logger.warning("webhook refused: %s", exc)
        return JSONResponse(
            {"error": "InboxFullError", "detail": str(exc)},
            status_code=503,
            headers={"Retry-After": str(FULL_RETRY_AFTER)},
        )
    return JSONResponse({"accepted": fresh}, status_code=202)


async def _body(request: Request) -> bytes | None:
    """The body, or None when it is larger than ``MAX_BODY_BYTES`` (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Kyc(msgspec.Struct):
    result: str | None = None


class _Aml(msgspec.Struct):
    currentstatus: str | None = None


class _State(msgspec.Struct):
    kyc: _Kyc | None = None
    aml: _Aml | None = None
