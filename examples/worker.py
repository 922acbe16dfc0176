"""Recipe: a reconciliation worker that notices submissions whose state changed.

Submissions change after they are created: ``incomplete`` ones turn ``rejected`` hours later,
``pending`` ones are decided by a reviewer, AML screening moves on. Argos sends webhooks for
these events, but they can be delayed or lost, and the provider advises reconciling through
the API. :class:`Reconciler` does that: each pass lists the last ``lookback_days`` days
(``ArgosClient.backfill``, a few day windows in parallel), compares each submission's
:class:`SubmissionState` with the one a :class:`StateStore` remembers, and calls
``on_change(submission, previous_state)`` for every submission that is new or has changed.

Delivery is at least once. The new state is stored only after ``on_change`` has returned, so a
callback that raises (or a worker that dies mid-pass) leaves that submission unacknowledged and
the next pass delivers it again; a crash between the callback and the store's write delivers it
twice. Make ``on_change`` idempotent (an upsert keyed by ``submission_id``, a notification
deduplicated on ``(submission_id, state)``).

Choose ``lookback_days`` longer than a submission may take to settle: a change to a submission
older than the window is never seen. The first pass with an empty store reports every
submission in the window; seed the store with a no-op callback to skip that.

Run it as a process of its own::

    import asyncio
    from argos_async import ArgosClient
    from examples.worker import MemoryStateStore, Reconciler

    async def on_change(sub, previous):
        print(sub.submission_id, previous and previous.kyc_result, "->", sub.kyc and sub.kyc.result)

    async def main() -> None:
        async with ArgosClient() as argos:  # ARGOS_API_KEY from the environment
            reconciler = Reconciler(argos, MemoryStateStore(), on_change, lookback_days=7)
            await reconciler.run_forever(interval=15 * 60)

    asyncio.run(main())

or from an async job framework's scheduler (arq, taskiq, SAQ, ...): keep one ``ArgosClient`` for
the worker's life (its startup and shutdown hooks) and call ``await reconciler.run_once()`` from
the periodic job, with a persistent store (``SubmissionState`` encodes to JSON with
``msgspec.json.encode`` and back with ``msgspec.json.decode(data, type=SubmissionState)``).

Test it against :class:`~argos_async.testing.ArgosEmulator`: run a pass, change a submission
the way the provider would with ``emu.update(submission_id, kyc={"result": "rejected"})`` (it moves
``updated_at`` and ``kyc_result_at``), and the next pass reports exactly that submission.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

import msgspec

from argos_async import ArgosClient, Submission

__all__ = [
    "MemoryStateStore",
    "OnChange",
    "PassStats",
    "Reconciler",
    "StateStore",
    "SubmissionState",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SubmissionState(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a submission that change after it is created; equal states mean no
    change worth reporting."""

    kyc_result: str | None = None
    kyc_result_at: datetime | None = None
    updated_at: datetime | None = None
    aml_status: str | None = None
    aml_risk_level: str | None = None

    @classmethod
    def of(cls, submission: Submission) -> SubmissionState:
        """The state of ``submission`` (a listing's item or a single lookup)."""
        kyc, aml = submission.kyc, submission.aml
        return cls(
            kyc_result=None if kyc is None else kyc.result,
            kyc_result_at=submission.kyc_result_at,
            updated_at=submission.updated_at,
            aml_status=None if aml is None else aml.current_status,
            aml_risk_level=None if aml is None else aml.risk_level_summary,
        )


class StateStore(Protocol):
    """Where the reconciler remembers the last state it delivered for each submission."""

    async def get_many(self, submission_ids: Sequence[str]) -> Mapping[str, SubmissionState]:
        """The stored states of those of ``submission_ids`` it knows (one page at a time)."""
        ...

    async def put(self, submission_id: str, state: SubmissionState) -> None:
        """Records ``state`` as delivered for ``submission_id``."""
        ...


class MemoryStateStore:
    """A :class:`StateStore` in a dict (``states``): for tests and a single process."""

    def __init__(self, states: Mapping[str, SubmissionState] | None = None) -> None:
        self.states: dict[str, SubmissionState] = dict(states or {})

    async def get_many(self, submission_ids: Sequence[str]) -> Mapping[str, SubmissionState]:
        """The known states among ``submission_ids``."""
        return {i: self.states[i] for i in submission_ids if i in self.states}

    async def put(self, submission_id: str, state: SubmissionState) -> None:
        """Remembers ``state``."""
        self.states[submission_id] = state


OnChange = Callable[[Submission, "SubmissionState | None"], Awaitable[None]]
"""``await on_change(submission, previous_state)``: ``previous_state`` is None for a submission
the store has never seen."""


@dataclass
class PassStats:
    """What one pass did."""

    start_date: date
    end_date: date
    seen: int = 0
    """Submissions listed."""
    changed: int = 0
    """New or changed submissions delivered to ``on_change`` and acknowledged in the store."""
    failed: int = 0
    """Submissions whose ``on_change`` raised: delivered again on the next pass."""


class Reconciler:
    """Pulls the last ``lookback_days`` days (today, UTC, included) and calls ``on_change``
    for new or changed submissions; see the module's documentation.

    ``shards`` day windows are listed in parallel, ``page_size`` items per request; the
    callback runs for one submission at a time, and the listing waits for it. ``today``
    replaces the clock (tests, replays).
    """

    def __init__(
        self,
        client: ArgosClient,
        store: StateStore,
        on_change: OnChange,
        *,
        lookback_days: int = 7,
        shards: int = 4,
        page_size: int = 2000,
        today: Callable[[], date] | None = None,
    ) -> None:
        # Checked now: in run_forever a bad argument would only be logged, pass after pass.
        if lookback_days < 1:
            raise ValueError("lookback_days must be >= 1")
        if shards < 1:
            raise ValueError("shards must be >= 1")
        if not 1 <= page_size <= 2000:
            raise ValueError("page_size must be within 1..2000")
        self.client = client
        self.store = store
        self.on_change = on_change
        self.lookback_days = lookback_days
        self.shards = shards
        self.page_size = page_size
        self._today = today or _utc_today
        self.passes = 0
        """Passes completed so far (by :meth:`run_once` or :meth:`run_forever`)."""
        self.last_stats: PassStats | None = None
        """The stats of the last completed pass."""

    async def run_once(self) -> PassStats:
        """One pass over the lookback window. Raises what stops the listing (an ``APIError``,
        a failing store); a raising ``on_change`` only counts in ``failed``."""
        end = self._today()
        start = end - timedelta(days=self.lookback_days - 1)
        stats = PassStats(start_date=start, end_date=end)
        backfill = self.client.backfill(start, end, shards=self.shards, page_size=self.page_size)
        async with backfill.pages() as pages:
            async for page in pages:
                await self._reconcile(page.items, stats)
        self.passes += 1
        self.last_stats = stats
        return stats

    async def run_forever(self, interval: float, *, pass_timeout: float = 900.0) -> None:
        """Runs a pass every ``interval`` seconds (start to start) until cancelled.

        A pass that runs longer than ``pass_timeout`` seconds is cancelled, so a hung request
        or callback cannot stall the worker; what it acknowledged stays acknowledged and the
        next pass goes on from there. A pass that fails is logged and the loop goes on. Cancel
        the task running this to stop it: the pass in progress is cancelled with its requests.
        """
        if interval <= 0:
            raise ValueError("interval must be > 0")
        if pass_timeout <= 0:
            raise ValueError("pass_timeout must be > 0")
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                stats = await _within(self.run_once(), pass_timeout)
            except asyncio.TimeoutError:
                logger.warning("reconciliation pass cancelled after %.1f s", pass_timeout)
            except Exception:
                # A worker outlives an outage: the next pass retries everything unacknowledged.
                logger.exception("reconciliation pass failed")
            else:
                logger.info(
                    "reconciliation pass %s..%s: %d seen, %d changed, %d failed",
                    stats.start_date,
                    stats.end_date,
                    stats.seen,
                    stats.changed,
                    stats.failed,
                )
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def _reconcile(self, submissions: Iterable[Submission], stats: PassStats) -> None:
        page = list(submissions)
        known = await self.store.get_many([s.submission_id for s in page])
        for submission in page:
            stats.seen += 1
            state = SubmissionState.of(submission)
            previous = known.get(submission.submission_id)
            if previous == state:
                continue
            try:
                await self.on_change(submission, previous)
            except Exception:
                stats.failed += 1
                logger.exception(
                    "on_change failed for submission %s; it is delivered again next pass",
                    submission.submission_id,
                )
                continue
            await self.store.put(submission.submission_id, state)
            stats.changed += 1


async def _within(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """``work``'s result, or ``TimeoutError`` once ``seconds`` have passed (the work cancelled).

    Not ``asyncio.wait_for``: before Python 3.12 it loses a cancellation of its caller that
    arrives as the work finishes (it returns the result instead), and the worker would then run
    on after its task was cancelled. Not an anyio cancel scope either: it keeps cancelling, which
    would cut short the backfill's cleanup as it awaits its shards; this cancels the work once.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: what the work raised while cancelled goes nowhere
    if not done:
        raise asyncio.TimeoutError
    return task.result()


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()
