"""The reconciliation worker recipe against the emulator."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from typing import Any

import msgspec
import pytest
from support import wait_until

from argos_async import ArgosClient, Submission
from argos_async.testing import ArgosEmulator, Delay, FaultPlan, QuotaExceeded
from examples.worker import MemoryStateStore, PassStats, Reconciler, SubmissionState

pytestmark = pytest.mark.anyio

TODAY = date(2025, 12, 31)  # the emulator's data set ends on this day
LOOKBACK = 5
FIRST_DAY = TODAY - timedelta(days=LOOKBACK - 1)


class Recorder:
    """An ``on_change`` that records its calls, and raises for the ids in ``failing``."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.calls: list[tuple[Submission, SubmissionState | None]] = []
        self.failing = failing if failing is not None else set()

    async def __call__(self, submission: Submission, previous: SubmissionState | None) -> None:
        if submission.submission_id in self.failing:
            raise RuntimeError("downstream is down")
        self.calls.append((submission, previous))

    def ids(self) -> list[str]:
        return [s.submission_id for s, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def argos_emulator_options() -> dict[str, Any]:
    """The emulator of every test here (the plugin's ``argos_emulator``, with ``argos_client``
    bound to it), unless the test's marker says otherwise."""
    return {"submissions": 3000, "seed": 12}


def reconciler(
    argos: ArgosClient, store: MemoryStateStore, on_change: Recorder, **options: Any
) -> Reconciler:
    return Reconciler(
        argos, store, on_change, lookback_days=LOOKBACK, today=lambda: TODAY, **options
    )


def window_ids(emu: ArgosEmulator) -> list[str]:
    return emu.dataset.expected_ids(start_date=FIRST_DAY, end_date=TODAY)


async def test_the_first_pass_reports_every_submission_in_the_window_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder, store = Recorder(), MemoryStateStore()
    stats = await reconciler(argos_client, store, recorder, shards=3, page_size=7).run_once()
    expected = window_ids(argos_emulator)
    assert len(expected) > 20
    assert sorted(recorder.ids()) == sorted(expected)  # each exactly once
    assert all(previous is None for _, previous in recorder.calls)
    assert stats == PassStats(FIRST_DAY, TODAY, seen=len(expected), changed=len(expected))
    assert set(store.states) == set(expected)
    # Nothing outside the window was asked for.
    assert {r.query["start_date"] for r in argos_emulator.requests} <= {
        (FIRST_DAY + timedelta(days=d)).isoformat() for d in range(LOOKBACK)
    }


async def test_a_second_pass_without_changes_reports_nothing(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder = Recorder()
    worker = reconciler(argos_client, MemoryStateStore(), recorder)
    await worker.run_once()
    recorder.clear()
    stats = await worker.run_once()
    assert recorder.calls == []
    assert stats.seen == len(window_ids(argos_emulator))
    assert stats.changed == stats.failed == 0
    assert worker.passes == 2
    assert worker.last_stats == stats


def first_with_result(emu: ArgosEmulator, result: str) -> str:
    """The newest submission of the window whose ``kyc.result`` is ``result``."""
    for sid in window_ids(emu):
        item = emu.get(sid)
        assert item is not None
        if item["kyc"]["result"] == result:
            return sid
    raise AssertionError(f"no {result} submission in the window")


@pytest.mark.parametrize(
    ("before", "after"),
    [("pending", "approved"), ("pending", "rejected"), ("incomplete", "rejected")],
)
async def test_a_decision_made_between_passes_is_reported_by_the_next_pass(
    before: str, after: str, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder, store = Recorder(), MemoryStateStore()
    worker = reconciler(argos_client, store, recorder, page_size=10)
    await worker.run_once()
    target = first_with_result(argos_emulator, before)
    seen = store.states[target]
    assert seen.kyc_result == before
    assert seen.kyc_result_at is None
    recorder.clear()

    # The provider decides it after the first pass has served it.
    argos_emulator.update(target, kyc={"result": after})
    stats = await worker.run_once()
    looked_up = await argos_client.get_submission(target)

    recorder.clear()
    third = await worker.run_once()
    assert recorder.calls == []  # a third pass finds nothing new
    assert third.changed == 0
    assert stats == PassStats(FIRST_DAY, TODAY, seen=len(window_ids(argos_emulator)), changed=1)
    state = store.states[target]
    assert state.kyc_result == after
    assert seen.updated_at is not None
    assert state.updated_at == seen.updated_at + timedelta(minutes=1)
    assert state.kyc_result_at == state.updated_at
    assert SubmissionState.of(looked_up) == state  # single lookups agree with the listing
    assert looked_up.kyc is not None
    if after == "rejected":
        expected = "timeout" if before == "incomplete" else "other"
        assert looked_up.kyc.comment_code == (expected,)
        assert looked_up.aml is None
    else:
        assert looked_up.kyc.comment_code == ()
        assert state.aml_status == "Not Screened"


async def test_the_change_is_the_only_delivery_and_carries_the_previous_state(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder, store = Recorder(), MemoryStateStore()
    worker = reconciler(argos_client, store, recorder, shards=2, page_size=7)
    await worker.run_once()
    target = first_with_result(argos_emulator, "pending")
    previous_state = store.states[target]
    recorder.clear()
    argos_emulator.update(target, kyc={"result": "approved"})
    await worker.run_once()
    assert recorder.ids() == [target]
    submission, previous = recorder.calls[0]
    assert previous == previous_state
    assert submission.kyc is not None
    assert submission.kyc.result == "approved"


async def test_an_aml_screening_that_moves_on_is_a_change(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder, store = Recorder(), MemoryStateStore()
    worker = reconciler(argos_client, store, recorder)
    await worker.run_once()
    target = first_with_result(argos_emulator, "approved")
    recorder.clear()
    red_flag = {"risk_level_summary": "High", "currentstatus": "Red Flag", "matches": []}
    argos_emulator.update(target, aml=red_flag)
    await worker.run_once()
    assert recorder.ids() == [target]
    submission, previous = recorder.calls[0]
    assert previous is not None
    assert previous.kyc_result == "approved"
    assert submission.aml is not None
    assert (submission.aml.current_status, submission.aml.risk_level_summary) == (
        "Red Flag",
        "High",
    )


async def test_a_failing_callback_leaves_the_submission_unacknowledged(
    caplog: pytest.LogCaptureFixture, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    unlucky = window_ids(argos_emulator)[2]
    recorder, store = Recorder(failing={unlucky}), MemoryStateStore()
    worker = reconciler(argos_client, store, recorder)
    with caplog.at_level(logging.ERROR, logger="examples.worker"):
        first = await worker.run_once()
    assert first.failed == 1
    assert first.changed == len(window_ids(argos_emulator)) - 1
    assert unlucky not in recorder.ids()
    assert unlucky not in store.states
    assert f"on_change failed for submission {unlucky}" in caplog.text

    # Still failing: delivered again, and again not acknowledged.
    recorder.clear()
    again = await worker.run_once()
    assert (again.failed, again.changed, recorder.ids()) == (1, 0, [])

    # The downstream is back: delivered once more, then acknowledged for good.
    recorder.failing.clear()
    third = await worker.run_once()
    assert recorder.ids() == [unlucky]
    assert recorder.calls[0][1] is None
    assert (third.failed, third.changed) == (0, 1)
    recorder.clear()
    await worker.run_once()
    assert recorder.calls == []


async def stop(task: asyncio.Task[None]) -> None:
    """Cancels a ``run_forever`` task the way ``asyncio.run`` or a worker framework does."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.argos_emulator(latency=0.002)
async def test_run_forever_runs_passes_until_cancelled(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder = Recorder()
    worker = reconciler(argos_client, MemoryStateStore(), recorder, page_size=5)
    task = asyncio.create_task(worker.run_forever(0.01))
    await wait_until(lambda: worker.passes >= 3)
    await stop(task)
    await wait_until(lambda: argos_emulator.in_flight == 0)
    # Every submission once, however many passes ran.
    assert sorted(recorder.ids()) == sorted(window_ids(argos_emulator))


@pytest.mark.argos_emulator(latency=0.05)
async def test_cancelling_run_forever_mid_pass_stops_it_cleanly(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder = Recorder()
    worker = reconciler(argos_client, MemoryStateStore(), recorder, shards=2, page_size=3)
    task = asyncio.create_task(worker.run_forever(60))
    await wait_until(lambda: len(recorder.calls) >= 3)
    await stop(task)
    assert worker.passes == 0  # it was stopped inside its first pass
    await wait_until(lambda: argos_emulator.in_flight == 0)


# The first list request hangs far beyond the pass timeout.
@pytest.mark.argos_emulator(faults=FaultPlan([Delay(30, at=1)]))
async def test_a_pass_that_hangs_is_cut_off_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder = Recorder()
    worker = reconciler(argos_client, MemoryStateStore(), recorder, shards=1)
    with caplog.at_level(logging.WARNING, logger="examples.worker"):
        task = asyncio.create_task(worker.run_forever(0.05, pass_timeout=0.3))
        await wait_until(lambda: worker.passes >= 1)
        await stop(task)
    assert "reconciliation pass cancelled after 0.3 s" in caplog.text
    assert sorted(recorder.ids()) == sorted(window_ids(argos_emulator))
    await wait_until(lambda: argos_emulator.in_flight == 0)


async def test_a_slow_callback_is_cut_off_by_the_pass_timeout(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    slow_once = {window_ids(argos_emulator)[1]}

    async def on_change(submission: Submission, previous: SubmissionState | None) -> None:
        if submission.submission_id in slow_once:
            slow_once.clear()
            await asyncio.sleep(30)  # far beyond the pass timeout
        await recorder(submission, previous)

    recorder = Recorder()
    worker = Reconciler(
        argos_client,
        MemoryStateStore(),
        on_change,
        lookback_days=LOOKBACK,
        today=lambda: TODAY,
        shards=2,
        page_size=4,
    )
    task = asyncio.create_task(worker.run_forever(0.01, pass_timeout=0.2))
    await wait_until(lambda: worker.passes >= 1)
    await stop(task)
    assert sorted(recorder.ids()) == sorted(window_ids(argos_emulator))


async def test_a_cancellation_as_a_pass_finishes_stops_the_worker(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    # The worker's task is cancelled in the very step its pass returns: asyncio.wait_for (before
    # Python 3.12) handed back the pass's result instead, and the worker ran on for ever.
    worker = reconciler(argos_client, MemoryStateStore(), Recorder())
    run_once = worker.run_once

    async def pass_then_cancel_the_worker() -> PassStats:
        stats = await run_once()
        task.cancel()
        return stats

    worker.run_once = pass_then_cancel_the_worker  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run_forever(60))
    await asyncio.wait({task}, timeout=10)
    assert task.cancelled()
    assert worker.passes == 1


@pytest.mark.argos_emulator(faults=FaultPlan([QuotaExceeded(at=1)]))
async def test_a_failed_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    recorder = Recorder()
    worker = reconciler(argos_client, MemoryStateStore(), recorder, shards=2)
    with caplog.at_level(logging.ERROR, logger="examples.worker"):
        task = asyncio.create_task(worker.run_forever(0.01))
        await wait_until(lambda: worker.passes >= 1)
        await stop(task)
    assert "reconciliation pass failed" in caplog.text
    assert "Limit Exceeded" in caplog.text
    assert argos_emulator.api_key not in caplog.text
    assert sorted(recorder.ids()) == sorted(window_ids(argos_emulator))


def test_states_round_trip_through_json_for_a_persistent_store() -> None:
    state = SubmissionState(kyc_result="approved", aml_status="completed")
    data = msgspec.json.encode(state)
    assert msgspec.json.decode(data, type=SubmissionState) == state


@pytest.mark.argos_emulator(submissions=10)
async def test_bad_arguments_are_refused(argos_client: ArgosClient) -> None:
    with pytest.raises(ValueError, match="lookback_days"):
        Reconciler(argos_client, MemoryStateStore(), Recorder(), lookback_days=0)
    with pytest.raises(ValueError, match="shards"):
        Reconciler(argos_client, MemoryStateStore(), Recorder(), shards=0)
    with pytest.raises(ValueError, match="page_size"):
        Reconciler(argos_client, MemoryStateStore(), Recorder(), page_size=2001)
    worker = reconciler(argos_client, MemoryStateStore(), Recorder())
    with pytest.raises(ValueError, match="interval"):
        await worker.run_forever(0)
    with pytest.raises(ValueError, match="pass_timeout"):
        await worker.run_forever(1, pass_timeout=0)
