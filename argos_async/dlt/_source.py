"""``argos_source``: the dlt source, and the run behind its ``submissions`` resource.

dlt iterates resources synchronously; the client is asyncio. The resource is a plain
generator that runs one producer task on an event loop of its own thread (an anyio blocking
portal) and takes its Arrow tables from a stream of one: the shards keep fetching while dlt
writes the table before, and memory stays at a few pages. When dlt closes the generator (an
error, an interrupt), the producer is cancelled and the client closed before it returns.

A run, in order (see ``_schedule`` for which days):

1. reads back what the table holds for the days it lists, and which older submissions it
   holds as pending or incomplete (``_table``), then closes that connection;
2. lists the days (``ArgosClient.backfill(...).raw_pages()``, sharded day windows) and hands
   dlt, page by page, the rows that are new or whose JSON differs from the table's;
3. looks up by id (``batch_get_raw_submissions``) the open ones, and those of the listed
   days that the listing no longer had; a submission found changed is written, one not found
   is written again as the table had it, marked ``deleted``;
4. leaves its plan's state (and its counts) in the resource's state, which dlt loads in the
   same package as the rows: a run that did not finish leaves the state as it was.

A refresh run (``refresh_ids``) is step 3 alone, for exactly those ids: it reads what the
table holds for them, looks them up, writes the ones that changed or that the table did not
hold, and marks deleted the held ones the API no longer has. It leaves the state alone (not
even its counts: a state that changes is a state row more in the destination per refresh,
and a service refreshes every few seconds), so the schedule goes on as if it had not run;
``mirror`` reads what it did through ``_refresh_report`` instead.

A refresh's ids come from webhooks, which nobody signs: one id must not cost the others.
An id the API refuses (400: no lookup of it can ever succeed) is skipped with a warning. One
whose lookup fails otherwise (after the client's retries) is, under ``mirror``, left out and
reported (``MirrorResult.refresh_failed``) while the rows of the others are written; run on
its own the source has nobody to report to, so it raises, as a scheduled run does, and that
run loads nothing. A scheduled run raises on either: its ids are the table's own, and its
state must not move past a lookup that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, TypeVar, cast

import anyio
import anyio.from_thread
import dlt
import pyarrow as pa
from anyio.streams.memory import MemoryObjectSendStream
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from .._client import ArgosClient
from .._protocol import checks
from .._protocol.masking import mask_id, mask_text
from ..errors import BadRequestError, NotFoundError
from ._rows import (
    COLUMN_HINTS,
    TABLE,
    Counts,
    Known,
    decode_rows,
    deleted_table,
    listed_changes,
    looked_up_changes,
)
from ._schedule import RunPlan, plan_run
from ._table import running_table

logger = logging.getLogger("argos_async.dlt")
T = TypeVar("T")

SOURCE: str = "argos"
"""The source's name (and its configuration section: ``[sources.argos]``)."""

LAST_RUN = "last_run"
RUNS = "runs"
CAUGHT_UP = "caught_up"


@dataclass
class RefreshReport:
    """What a refresh run did, for ``mirror``: its counts, the ids it could not look up,
    and how many of its ids the table holds after it (so ``mirror`` need not count the
    whole table)."""

    counts: Counts = field(default_factory=Counts)
    failed: list[str] = field(default_factory=list)
    """Ids whose lookup failed (not a 400): not written, to be refreshed again."""
    error: str | None = None
    """The first of those failures, ``Type: message``, the run's ids masked in it."""
    held: int = 0
    """Of the run's ids, those the table holds once the run is loaded."""
    held_deleted: int = 0
    """Of those, the ones marked deleted."""


_refresh_report: ContextVar[RefreshReport | None] = ContextVar("argos_refresh_report", default=None)
"""Where a refresh run reports, when ``mirror`` runs it: dlt iterates the resource in the
thread that calls ``pipeline.run``, so ``mirror`` sets it around that call."""

_HINTS = cast(
    TTableSchemaColumns,
    {**COLUMN_HINTS, "updated_at": {**COLUMN_HINTS["updated_at"], "dedup_sort": "desc"}},
)


@dataclass(frozen=True)
class _Config:
    api_key: str | None = field(repr=False)  # never in a repr, a log line or a traceback
    base_url: str | None
    start_date: date
    lag_days: int
    shards: int
    page_size: int
    concurrency: int
    days_per_run: int | None
    refresh_days: int | None
    client_options: Mapping[str, Any]
    today: date | None
    refresh_ids: tuple[str, ...] | None

    def client(self) -> ArgosClient:
        return ArgosClient(api_key=self.api_key, base_url=self.base_url, **self.client_options)


@dataclass
class _Refreshing:
    """A refresh run's lookups as they come: the ids found, and those that failed."""

    ids: tuple[str, ...]
    report: bool
    """True when a ``RefreshReport`` takes the failures; False: the first one raises."""
    found: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    first: Exception | None = None


@dataclass
class _Run:
    """One run's plan, what the table held, and what the run found."""

    plan: RunPlan
    known: dict[str, Known]
    open: dict[str, Known]
    counts: Counts = field(default_factory=Counts)
    seen: set[str] = field(default_factory=set)
    gone: list[str] = field(default_factory=list)


@dlt.source(name=SOURCE, section=SOURCE, max_table_nesting=0)
def argos_source(
    *,
    api_key: TSecretStrValue | None = None,
    base_url: str | None = None,
    start_date: date | str = dlt.config.value,
    lag_days: int = 3,
    shards: int = 8,
    page_size: int = 2000,
    concurrency: int = 16,
    days_per_run: int | None = None,
    refresh_days: int | None = None,
    client_options: dict[str, Any] | None = None,
    today: date | None = None,
    refresh_ids: Sequence[str] | None = None,
) -> DltResource:
    """A dlt source mirroring an Argos account: one resource, ``submissions``, merged on
    ``submission_id``; see the package documentation for its columns and what each run does.

    - ``api_key``, ``base_url``: as ``ArgosClient`` takes them; when not passed, dlt looks
      for them in its configuration (``SOURCES__ARGOS__API_KEY``, ``[sources.argos]`` in
      ``secrets.toml``), then the client in ``ARGOS_API_KEY`` / ``ARGOS_BASE_URL``.
    - ``start_date``: the first day to mirror (a date or ``"YYYY-MM-DD"``). A later run
      given an earlier one lists the days before too; a later one changes nothing.
    - ``lag_days``: how many days before the new ones each run lists again.
    - ``shards``, ``page_size``: the backfill's parallel day windows and items per request.
    - ``concurrency``: lookups by id in flight at once.
    - ``days_per_run``: list at most this many new days per run (a long first backfill
      becomes several loads, each one kept if a later one fails); ``mirror`` runs the
      source until it has reached today. None: all of them in one run.
    - ``refresh_days``: look up only the open submissions of the last this many days
      (None: every open one, however old).
    - ``client_options``: more ``ArgosClient`` arguments (``max_requests_per_second``,
      ``timeout``, ...).
    - ``today``: the day the run takes as today (default: today in UTC), for tests and
      replays.
    - ``refresh_ids``: make this a refresh run of exactly these submissions (a webhook
      receiver's, see the package documentation): look them up by id, write those that
      changed or that the table does not hold yet, mark deleted the held ones the API no
      longer has; nothing is listed and the schedule's state is left as it was. An id the
      API refuses (400) is skipped with a warning; any other failed lookup fails the run
      (``mirror`` instead loads the others and reports it in ``refresh_failed``). The other
      arguments still apply (``start_date`` is required but unused).

    Arguments are checked here: a bad one raises ``TypeError`` or ``ValueError`` naming it.
    """
    first = checks.to_date("start_date", start_date)
    if first is None:
        raise ValueError("start_date is required")
    if api_key is not None:
        checks.check_api_key(api_key)
    if base_url is not None:
        checks.check_base_url(base_url)
    if today is not None and (isinstance(today, datetime) or not isinstance(today, date)):
        raise TypeError(f"today must be a date, got {type(today).__name__}")
    refresh = None if refresh_ids is None else _check_ids(refresh_ids)
    options = dict(client_options or {})
    for reserved in ("api_key", "base_url"):
        if reserved in options:
            raise ValueError(f"client_options cannot set {reserved}: pass it to argos_source")
    config = _Config(
        api_key=api_key,
        base_url=base_url,
        start_date=first,
        lag_days=checks.check_int("lag_days", lag_days, minimum=0),
        shards=checks.check_int("shards", shards, minimum=1, maximum=256),
        page_size=checks.check_page_size(page_size),
        concurrency=checks.check_int("concurrency", concurrency, minimum=1),
        days_per_run=None
        if days_per_run is None
        else checks.check_int("days_per_run", days_per_run, minimum=1),
        refresh_days=None
        if refresh_days is None
        else checks.check_int("refresh_days", refresh_days, minimum=0),
        client_options=options,
        today=today,
        refresh_ids=refresh,
    )

    @dlt.resource(
        name=TABLE,
        primary_key="submission_id",
        write_disposition="merge",
        columns=_HINTS,
    )
    def submissions() -> Iterator[pa.Table]:
        yield from _mirror_run(config)

    return submissions


def _check_ids(ids: object) -> tuple[str, ...]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"refresh_ids must be an iterable of str, got {type(ids).__name__}")
    checked = [checks.check_text(f"refresh_ids[{i}]", sid) for i, sid in enumerate(ids)]
    return tuple(dict.fromkeys(checked))


def _mirror_run(config: _Config) -> Iterator[pa.Table]:
    if config.refresh_ids is not None:
        # Before resource_state(): even reading it creates it, and a refresh leaves it alone.
        yield from _refresh_run(config, config.refresh_ids)
        return
    state = dlt.current.resource_state()
    today = config.today or datetime.now(timezone.utc).date()
    plan = plan_run(
        state,
        start_date=config.start_date,
        today=today,
        lag_days=config.lag_days,
        days_per_run=config.days_per_run,
        refresh_days=config.refresh_days,
    )
    with running_table() as table:
        known = table.known_in(plan.ranges)
        held_open = (
            {}
            if plan.refresh_before is None
            else table.open_before(plan.refresh_before, plan.refresh_since)
        )
    run = _Run(plan, known, held_open)
    logger.info(
        "mirror run: listing %s, looking up %d open submissions",
        ", ".join(f"{r.start}..{r.end}" for r in plan.ranges),
        len(held_open),
    )

    async def produce(send: MemoryObjectSendStream[pa.Table]) -> None:
        await _produce(config, run, send)

    yield from bridged(produce)
    if run.gone:
        with running_table() as table:
            rows = table.rows(run.gone)
        run.counts.deleted += len(rows)
        if rows:
            yield deleted_table(rows, datetime.now(timezone.utc))
    # Reached only when everything above was handed to dlt: the state goes into the same
    # load package as those rows.
    state.update(plan.state)
    state[CAUGHT_UP] = plan.caught_up
    state[LAST_RUN] = run.counts.as_dict()
    state[RUNS] = int(state.get(RUNS, 0)) + 1
    logger.info("mirror run: %s", run.counts.as_dict())


def _refresh_run(config: _Config, ids: tuple[str, ...]) -> Iterator[pa.Table]:
    with running_table() as table:
        known = table.known_ids(ids)
    sink = _refresh_report.get()
    counts = Counts()
    gone: list[str] = []
    refreshing = _Refreshing(ids, report=sink is not None)
    logger.info("mirror refresh: looking up %d submissions", len(ids))

    async def produce(send: MemoryObjectSendStream[pa.Table]) -> None:
        async with send, config.client() as argos:
            await _look_up(argos, config, counts, gone, ids, known, send, refreshing)

    yield from bridged(produce)
    # Only rows the table holds can be marked; one it marks already stays as it is.
    held = [sid for sid in gone if sid in known and not known[sid].deleted]
    if held:
        with running_table() as table:
            rows = table.rows(held)
        counts.deleted += len(rows)
        if rows:
            yield deleted_table(rows, datetime.now(timezone.utc))
    logger.info("mirror refresh: %s", counts.as_dict())
    if sink is not None:
        _report(sink, refreshing, counts, known, set(gone))
        if refreshing.failed:
            logger.warning(
                "mirror refresh: %d of %d submissions not refreshed, the others written: %s",
                len(refreshing.failed),
                len(ids),
                sink.error,
            )


def _report(
    sink: RefreshReport,
    refreshing: _Refreshing,
    counts: Counts,
    known: Mapping[str, Known],
    gone: set[str],
) -> None:
    for name, count in counts.as_dict().items():
        setattr(sink.counts, name, getattr(sink.counts, name) + count)
    sink.failed += refreshing.failed
    if refreshing.first is not None and sink.error is None:
        error = refreshing.first
        sink.error = f"{type(error).__name__}: {mask_text(str(error), refreshing.ids)}"
    # What the table holds of these ids once this run is loaded: found ones as written (or
    # as held, the same), gone held ones marked, refused and failed ones as they were.
    for sid in refreshing.ids:
        if sid in refreshing.found:
            sink.held += 1
        elif sid in known:
            sink.held += 1
            sink.held_deleted += sid in gone or known[sid].deleted


def bridged(produce: Callable[[MemoryObjectSendStream[T]], Awaitable[None]]) -> Iterator[T]:
    """What ``produce`` sends, taken one at a time from an event loop of its own thread: an
    async producer as the plain generator dlt iterates. Closing the generator cancels the
    producer and waits for it to finish; an error of the producer is raised here."""
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        send, receive = anyio.create_memory_object_stream[T](1)
        future = portal.start_task_soon(produce, send)
        try:
            while True:
                try:
                    table = portal.call(receive.receive)
                except anyio.EndOfStream:
                    break
                yield table
            future.result()  # what stopped the producer, if anything did
        finally:
            future.cancel()
            portal.call(receive.aclose)


async def _produce(config: _Config, run: _Run, send: MemoryObjectSendStream[pa.Table]) -> None:
    counts = run.counts
    async with send, config.client() as argos:
        for days in run.plan.ranges:
            backfill = argos.backfill(
                days.start, days.end, shards=config.shards, page_size=config.page_size
            )
            async with backfill.raw_pages() as pages:
                async for page in pages:
                    rows = decode_rows(page.items, page.body, page.first)
                    table = listed_changes(rows, page.items, run.known, counts, run.seen)
                    if table is not None:
                        await send.send(table)
        # Listed days the listing no longer had (gone, or moved), and the open ones before.
        lookups = {
            sid: held for sid, held in run.known.items() if sid not in run.seen and not held.deleted
        }
        lookups.update(run.open)
        if lookups:
            await _look_up(argos, config, run.counts, run.gone, lookups, lookups, send)


async def _look_up(
    argos: ArgosClient,
    config: _Config,
    counts: Counts,
    gone: list[str],
    ids: Iterable[str],
    known: Mapping[str, Known],
    send: MemoryObjectSendStream[pa.Table],
    refreshing: _Refreshing | None = None,
) -> None:
    """Looks ``ids`` up; sends the rows that differ from ``known`` (or that it lacks), and
    adds the ids the API no longer has to ``gone``. A failed lookup raises, except in a
    refresh (``refreshing``): a 400 is skipped, and, when reported, any other failure is
    noted there and the others go on."""
    found: list[Any] = []

    async def flush() -> None:
        rows = decode_rows(found)
        table = looked_up_changes(rows, found, known, counts)
        found.clear()
        if table is not None:
            await send.send(table)

    batch = argos.batch_get_raw_submissions(ids, concurrency=config.concurrency)
    async with batch as results:
        async for result in results:
            counts.looked_up += 1
            error = result.error
            if error is None:
                found.append(result.value)
                if refreshing is not None:
                    refreshing.found.add(result.key)
                if len(found) >= config.page_size:
                    await flush()
            elif isinstance(error, NotFoundError):
                gone.append(result.key)
            elif refreshing is not None and isinstance(error, BadRequestError):
                # No lookup of it can succeed (a forged webhook's id, say): trying it again
                # would fail the same way, and failing the run would fail its other ids.
                logger.warning(
                    "mirror refresh: submission %s skipped: the API refuses it (%s)",
                    mask_id(result.key),
                    mask_text(str(error), [result.key]),
                )
            elif refreshing is not None and refreshing.report:
                refreshing.failed.append(result.key)
                refreshing.first = refreshing.first or error
            else:
                # Retried already: the run stops here, its state unchanged, and the next
                # run looks every one of them up again.
                raise error
    await flush()
