"""``WebhookInbox`` with a deliver of the test's own (no HTTP): what it keeps, what it drops,
how it batches and retries, and how it ends; then ``fetch_truth`` against the emulator."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import backoff
import msgspec
import pytest
from support import client_for

from argos_async import ArgosClient, DeliveryError, InboxFullError, WebhookDecodeError
from argos_async.testing import ArgosEmulator, FaultPlan, Status
from argos_async.webhooks import (
    CreatedWebhook,
    SubmissionTruth,
    UpdatedWebhook,
    WebhookInbox,
    fetch_truth,
    parse,
)

pytestmark = pytest.mark.anyio

PATH = "/v3/submission"


def body(trigger: str = "updated", sid: str = "sub-1", **fields: Any) -> bytes:
    return msgspec.json.encode({"webhook_trigger": trigger, "submission_id": sid, **fields})


def updated(sid: str, second: int = 0, **fields: Any) -> bytes:
    """An ``updated`` event of ``sid`` at ``second`` seconds after 2025-06-01 00:00 UTC."""
    at = f"2025-06-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return body("updated", sid, update_time=at, **fields)


class Recorder:
    """A deliver that records its batches; ``gate`` (when set) holds every call until it is
    opened, and ``fail`` makes the next calls raise."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.entered = asyncio.Event()
        self.fail: list[Exception] = []
        self.running = 0
        self.most_running = 0

    async def __call__(self, ids: list[str]) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            self.batches.append(list(ids))
            self.entered.set()
            await self.gate.wait()
            if self.fail:
                raise self.fail.pop(0)
        finally:
            self.running -= 1

    @property
    def delivered(self) -> list[str]:
        return [sid for batch in self.batches for sid in batch]


class Sleeps:
    """The inbox's backoff sleep alone (the clock stays the real one): records each wait and
    returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


class FakeTime:
    """The inbox's clock and sleep, faked: a sleep that returns has moved the clock on by its
    seconds; one cut short (cancelled) has not. With ``held``, sleeps wait for
    ``release()``. Every sleep's seconds also go to ``started``, for the test to await."""

    def __init__(self, *, held: bool = False) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.started: asyncio.Queue[float] = asyncio.Queue()
        self._go = asyncio.Event()
        if not held:
            self._go.set()

    def clock(self) -> float:
        return self.now

    def release(self) -> None:
        self._go.set()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.started.put_nowait(seconds)
        await self._go.wait()
        self.now += seconds

    @property
    def options(self) -> dict[str, Any]:
        return {"sleep": self.sleep, "clock": self.clock}


class FailFor:
    """A deliver that fails for the ids in ``bad`` (a ``DeliveryError`` naming them) and
    records its batches; ``gate`` (when set) holds every call until it is opened."""

    def __init__(self, *bad: str) -> None:
        self.bad = set(bad)
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, ids: list[str]) -> None:
        self.batches.append(list(ids))
        await self.gate.wait()
        failed = [sid for sid in ids if sid in self.bad]
        if failed:
            raise DeliveryError(failed, f"{len(failed)} of {len(ids)} not delivered")


async def test_a_webhook_becomes_one_delivery_of_its_submission() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(updated("sub-1")) is True
        await inbox.join()
        assert inbox.pending == ()
    assert deliver.batches == [["sub-1"]]
    assert (inbox.accepted, inbox.delivered, inbox.duplicates) == (1, 1, 0)


async def test_a_delivery_seen_before_is_dropped_whatever_its_bytes() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        first = updated("sub-1", admin="a@example.com")
        assert inbox.accept(first) is True
        assert inbox.accept(first) is False
        # The same event (same submission, trigger and update_time) sent again with other
        # bytes: a field more, another spacing.
        assert inbox.accept(updated("sub-1", admin="a@example.com", extra=1)) is False
        assert inbox.accept(first.replace(b",", b", ")) is False
        # Another change of the same submission is new.
        assert inbox.accept(updated("sub-1", second=5)) is True
        await inbox.join()
        # Delivered already, the repeat is still a repeat.
        assert inbox.accept(first) is False
    assert inbox.duplicates == 4
    # The later change came while sub-1 was still pending: one delivery for both.
    assert deliver.batches == [["sub-1"]]


@pytest.mark.parametrize(
    ("same", "other"),
    [
        # Decisions: kyc_result.updated_at (else kyc_result_at, else pending_at).
        (
            body("approved", kyc_result={"status": "approved", "updated_at": "2025-06-01T10:00Z"}),
            body("approved", kyc_result={"status": "approved", "updated_at": "2025-06-01T11:00Z"}),
        ),
        (
            body("rejected", kyc_result={"kyc_result_at": "2025-06-01T10:00:00Z"}, full_name="A"),
            body("rejected", kyc_result={"kyc_result_at": "2025-06-01T10:00:01Z"}, full_name="A"),
        ),
        (
            body("submit", kyc_result={"pending_at": "2025-06-01T10:00:00Z"}),
            body("submit", kyc_result={"pending_at": "2025-06-02T10:00:00Z"}),
        ),
        # An injection: action.created_at.
        (
            body("injection", action={"type": "address", "created_at": "2025-06-01T10:00:00Z"}),
            body("injection", action={"type": "address", "created_at": "2025-06-01T12:00:00Z"}),
        ),
    ],
)
async def test_events_that_state_a_time_are_the_same_event_at_the_same_time(
    same: bytes, other: bytes
) -> None:
    async with WebhookInbox(Recorder()) as inbox:
        assert inbox.accept(same) is True
        assert inbox.accept(same.replace(b"{", b'{"tokenId": "t2", ', 1)) is False
        assert inbox.accept(other) is True


@pytest.mark.parametrize(
    "trigger", ["created", "retry", "aml", "aml_monitor", "delete", "injectionFail"]
)
async def test_events_without_a_time_are_the_same_event_with_the_same_bytes(trigger: str) -> None:
    async with WebhookInbox(Recorder()) as inbox:
        event = body(trigger, tokenId="t1")
        assert inbox.accept(event) is True
        assert inbox.accept(event) is False
        assert inbox.accept(body(trigger, tokenId="t2")) is True
        assert inbox.accept(body("updated", tokenId="t1")) is True  # another trigger


async def test_a_placeholder_time_counts_as_none() -> None:
    async with WebhookInbox(Recorder()) as inbox:
        assert inbox.accept(body("updated", update_time="YYYY-MM-DD-HH-MM-SS-ZZZ", a=1)) is True
        assert inbox.accept(body("updated", update_time="YYYY-MM-DD-HH-MM-SS-ZZZ", a=2)) is True
        assert inbox.accept(body("updated", update_time="YYYY-MM-DD-HH-MM-SS-ZZZ", a=1)) is False


async def test_events_built_by_hand_and_parsed_ones_are_accepted() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(CreatedWebhook(submission_id="sub-1", email="a@example.com"))
        assert not inbox.accept(CreatedWebhook(submission_id="sub-1", email="a@example.com"))
        assert inbox.accept(CreatedWebhook(submission_id="sub-1", email="b@example.com"))
        assert inbox.accept(parse(updated("sub-2")))
        assert not inbox.accept(updated("sub-2"))
        assert inbox.accept(bytearray(updated("sub-3")))
        assert inbox.accept(updated("sub-4").decode())
        await inbox.join()
    assert sorted(set(deliver.delivered)) == ["sub-1", "sub-2", "sub-3", "sub-4"]


async def test_events_without_a_usable_submission_id_are_ignored() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(b'{"webhook_trigger": "aml_monitor"}') is False
        assert inbox.accept(body(sid="   ")) is False
        assert inbox.accept(body(sid="x" * 257)) is False
        assert inbox.accept(b'{"webhook_trigger": "brandNew", "submission_id": 7}') is False
        assert inbox.accept(UpdatedWebhook()) is False
        assert inbox.accept(body(sid="x" * 256)) is True
        await inbox.join()
    assert inbox.ignored == 5
    assert deliver.delivered == ["x" * 256]


async def test_a_body_that_does_not_parse_raises_and_keeps_nothing() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        with pytest.raises(WebhookDecodeError, match="not valid JSON"):
            inbox.accept(b'{"webhook_trigger": "updated", "email": "ana@example.com"')
        with pytest.raises(WebhookDecodeError):
            inbox.accept(b'{"submission_id": "sub-1"}')
        with pytest.raises(WebhookDecodeError, match="Expected `object`"):
            inbox.accept(b'[{"webhook_trigger": "updated", "submission_id": "sub-1"}]')
        with pytest.raises(WebhookDecodeError, match=r"webhook_trigger"):
            inbox.accept(b'{"webhook_trigger": 5, "submission_id": "sub-1"}')
        with pytest.raises(TypeError, match="body"):
            inbox.accept(7)  # type: ignore[arg-type]
        assert inbox.pending == ()
    assert deliver.batches == []
    assert (inbox.accepted, inbox.ignored) == (0, 0)


MISFITS = {
    "cf-as-text": body("created", cf="ana.silva@example.com"),
    "numeric-record-id": body("aml_monitor", records=[{"recordId": 48213}]),
    "duplicated-information-object": body(
        "approved", duplicated_information={"email": "ana.silva@example.com"}
    ),
}


@pytest.mark.parametrize("misfit", MISFITS.values(), ids=MISFITS.keys())
async def test_a_body_with_a_field_of_another_type_is_still_a_hint(
    misfit: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="argos_async")
    with pytest.raises(WebhookDecodeError, match="documented shape"):
        parse(misfit)  # parse stays strict: its callers want typed events
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(misfit) is True
        assert inbox.accept(misfit) is False  # the same bytes: a repeat
        assert inbox.accept(misfit.replace(b"{", b'{"tokenId": "t2", ', 1)) is True
        await inbox.join()
    assert deliver.batches == [["sub-1"]]  # the submission is looked up
    assert (inbox.accepted, inbox.duplicates, inbox.lenient, inbox.ignored) == (2, 1, 3, 0)
    records = [r for r in caplog.records if "taken by its header" in r.getMessage()]
    assert len(records) == 3
    assert all(r.levelno == logging.DEBUG for r in records)
    assert "documented shape" in records[0].getMessage()
    assert "ana.silva" not in caplog.text
    assert "48213" not in caplog.text


async def test_a_misfit_without_a_usable_submission_id_is_ignored() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(b'{"webhook_trigger": "retry", "attempts": "two"}') is False
        assert inbox.accept(b'{"webhook_trigger": "approved", "submission_id": 7}') is False
        await inbox.join()
    assert (inbox.ignored, inbox.lenient, inbox.accepted) == (2, 2, 0)
    assert deliver.batches == []


async def test_a_thousand_webhooks_about_ten_submissions_are_one_batch_of_ten() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        # accept never awaits: the drain task cannot run before this loop ends.
        accepted = [inbox.accept(updated(f"sub-{i % 10}", second=i)) for i in range(1000)]
        assert len(inbox.pending) == 10
        await inbox.join()
    assert all(accepted)
    assert deliver.batches == [[f"sub-{i}" for i in range(10)]]


async def test_batches_are_at_most_batch_size_and_delivered_one_at_a_time() -> None:
    deliver = Recorder(hold=True)
    async with WebhookInbox(deliver, batch_size=100) as inbox:
        for i in range(250):
            inbox.accept(updated(f"sub-{i:03d}"))
        await deliver.entered.wait()
        # One batch in delivery; the rest waits, in arrival order.
        assert [len(b) for b in deliver.batches] == [100]
        assert inbox.pending[:100] == tuple(f"sub-{i:03d}" for i in range(100))
        deliver.gate.set()
        await inbox.join()
    assert [len(b) for b in deliver.batches] == [100, 100, 50]
    assert deliver.delivered == [f"sub-{i:03d}" for i in range(250)]
    assert deliver.most_running == 1


async def test_an_event_about_a_submission_in_delivery_brings_it_again() -> None:
    deliver = Recorder(hold=True)
    async with WebhookInbox(deliver) as inbox:
        inbox.accept(updated("sub-1"))
        await deliver.entered.wait()  # its lookup may already have been answered
        assert inbox.accept(updated("sub-1", second=1)) is True
        assert inbox.accept(updated("sub-2")) is True
        deliver.gate.set()
        await inbox.join()
    assert deliver.batches == [["sub-1"], ["sub-1", "sub-2"]]


async def test_a_full_inbox_refuses_and_remembers_nothing_of_the_refused_event() -> None:
    deliver = Recorder(hold=True)
    async with WebhookInbox(deliver, max_pending=2) as inbox:
        inbox.accept(updated("sub-0"))
        await deliver.entered.wait()  # sub-0 in delivery: not pending any more
        assert inbox.accept(updated("sub-1"))
        assert inbox.accept(updated("sub-2"))
        refused = updated("sub-3")
        with pytest.raises(InboxFullError, match="full: 2 submissions") as full:
            inbox.accept(refused)
        assert full.value.max_pending == 2
        # An event about a submission already pending needs no room.
        assert inbox.accept(updated("sub-1", second=9))
        deliver.gate.set()
        await inbox.join()
        # Brought again by its sender: not a repeat, since it was never kept.
        assert inbox.accept(refused) is True
        await inbox.join()
    assert deliver.delivered == ["sub-0", "sub-1", "sub-2", "sub-3"]


async def test_the_memory_of_deliveries_is_bounded() -> None:
    async with WebhookInbox(Recorder(), remember=2) as inbox:
        events = [updated(f"sub-{i}") for i in range(3)]
        assert all(inbox.accept(e) for e in events)
        assert inbox.accept(events[2]) is False  # recent: remembered
        assert inbox.accept(events[0]) is True  # the oldest was forgotten
    async with WebhookInbox(Recorder(), remember=0) as inbox:
        assert inbox.accept(events[0])
        assert inbox.accept(events[0])  # nothing remembered


async def test_a_failed_delivery_is_retried_after_a_backoff_then_delivered_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    # A sleep that returns at once while the real clock has hardly moved: the sleep's return
    # is what counts, so the retry comes after one sleep, not a loop of them.
    deliver, sleeps = Recorder(), Sleeps()
    deliver.fail = [ConnectionError("store down for submission-abcdef")]
    async with WebhookInbox(deliver, sleep=sleeps, backoff_base=2.0) as inbox:
        inbox.accept(updated("submission-abcdef"))
        await inbox.join()
    assert deliver.batches == [["submission-abcdef"], ["submission-abcdef"]]
    assert (inbox.delivered, inbox.failures, inbox.abandoned) == (1, 1, 0)
    (wait,) = sleeps.waits
    assert 0 <= wait <= 2.0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "1 submissions not delivered (s***)" in message
    assert "ConnectionError: store down for s***;" in message
    assert "submission-abcdef" not in message


async def test_a_partial_failure_puts_back_only_the_ids_it_names() -> None:
    deliver, sleeps = Recorder(), Sleeps()
    deliver.fail = [DeliveryError(["sub-2", "not-in-the-batch"], "1 of 3 not delivered")]
    async with WebhookInbox(deliver, sleep=sleeps) as inbox:
        for sid in ("sub-1", "sub-2", "sub-3"):
            inbox.accept(updated(sid))
        await inbox.join()
    assert deliver.batches == [["sub-1", "sub-2", "sub-3"], ["sub-2"]]
    assert inbox.delivered == 3


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff's full jitter off: each wait is the whole delay, so that times are exact."""
    monkeypatch.setattr(backoff, "full_jitter", lambda delay: delay)


@pytest.mark.usefixtures("no_jitter")
async def test_an_id_that_keeps_failing_does_not_hold_up_a_fresh_one() -> None:
    time = FakeTime(held=True)  # no fake time passes until the test says so
    deliver = FailFor("bad")  # as when the API answers 500 for that one submission
    async with WebhookInbox(deliver, max_attempts=2, **time.options) as inbox:
        inbox.accept(updated("bad"))
        first = await time.started.get()  # bad failed: the drain waits for its retry
        assert first == 1.0
        inbox.accept(updated("fresh"))
        # The drain only waits again once it has delivered what was ready: fresh.
        second = await time.started.get()
        assert deliver.batches == [["bad"], ["fresh"]]
        assert time.now == 0  # fresh went at once, no (fake) second passed
        assert inbox.pending == ("bad",)
        assert second == first  # fresh's coming did not move bad's retry
        assert (inbox.delivered, inbox.failures) == (1, 1)
        time.release()
        await inbox.join()  # bad's second failure gives it up
    assert deliver.batches == [["bad"], ["fresh"], ["bad"]]
    assert time.now == first  # the one wait that ran to its end: bad's backoff
    assert (inbox.delivered, inbox.failures, inbox.abandoned) == (1, 2, 1)


async def test_failed_ids_keep_their_turn_once_due() -> None:
    time = FakeTime(held=True)
    deliver = Recorder()
    deliver.fail = [RuntimeError("once")]
    async with WebhookInbox(deliver, batch_size=1, **time.options) as inbox:
        inbox.accept(updated("old"))
        wait = await time.started.get()  # old failed, and waits
        deliver.gate.clear()
        inbox.accept(updated("new-1"))
        await deliver.entered.wait()
        deliver.entered.clear()
        await deliver.entered.wait()  # new-1 in delivery, held
        inbox.accept(updated("new-2"))
        time.now = wait  # old is due by the time new-1's delivery ends
        deliver.gate.set()
        await inbox.join()
    # old went back ahead of the ids that came after it: due, it goes before new-2.
    assert deliver.batches == [["old"], ["new-1"], ["old"], ["new-2"]]


async def test_ids_that_failed_together_are_tried_again_together() -> None:
    time = FakeTime()
    deliver = Recorder()
    deliver.fail = [RuntimeError("store down")]
    async with WebhookInbox(deliver, **time.options) as inbox:
        for sid in ("sub-1", "sub-2", "sub-3"):
            inbox.accept(updated(sid))
        await inbox.join()
    assert deliver.batches == [["sub-1", "sub-2", "sub-3"]] * 2
    assert len(time.waits) == 1
    assert time.now == time.waits[0]


async def test_the_backoff_grows_while_an_id_fails_and_starts_over_after_it_succeeds() -> None:
    time = FakeTime()
    deliver = Recorder()
    deliver.fail = [RuntimeError(str(i)) for i in range(4)]
    options = {"backoff_base": 1.0, "backoff_max": 4.0, **time.options}
    async with WebhookInbox(deliver, **options) as inbox:
        inbox.accept(updated("sub-1"))
        await inbox.join()
        deliver.fail = [RuntimeError("again"), RuntimeError("and again")]
        inbox.accept(updated("sub-1", second=1))
        await inbox.join()
    caps = [1.0, 2.0, 4.0, 4.0, 1.0, 2.0]  # full jitter: anywhere from 0 to the delay
    assert len(time.waits) == len(caps)  # one sleep per failure: no spinning
    assert all(0 < wait <= cap for wait, cap in zip(time.waits, caps, strict=True))
    assert time.now == pytest.approx(sum(time.waits))
    assert deliver.delivered == ["sub-1"] * 8
    assert (inbox.failures, inbox.delivered, inbox.abandoned) == (6, 2, 0)


@pytest.mark.usefixtures("no_jitter")
async def test_each_id_backs_off_by_its_own_failures() -> None:
    time = FakeTime(held=True)
    deliver = FailFor("old", "new")
    options = {"backoff_base": 1.0, "max_attempts": 3, **time.options}
    async with WebhookInbox(deliver, **options) as inbox:
        inbox.accept(updated("old"))
        assert await time.started.get() == 1.0  # old's first failure: due at 1
        inbox.accept(updated("new"))  # cuts that pause short: delivered at 0, fails
        # new's first failure waits 1 s too (its own count), not what old's count would say.
        assert await time.started.get() == 1.0
        time.release()
        await inbox.join()
    # Due at the same time, they went together: at 1 (second failures, 2 s more), then at 3.
    assert deliver.batches == [["old"], ["new"], ["old", "new"], ["old", "new"]]
    assert time.waits == [1.0, 1.0, 2.0]
    assert time.now == 3.0
    assert (inbox.failures, inbox.abandoned) == (4, 2)


async def test_an_id_that_keeps_failing_is_given_up_with_an_error_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    deliver, sleeps = Recorder(), Sleeps()
    deliver.fail = [RuntimeError("down")] * 10
    async with WebhookInbox(deliver, sleep=sleeps, max_attempts=3) as inbox:
        inbox.accept(updated("sub-1"))
        await inbox.join()
        assert inbox.pending == ()
    assert deliver.batches == [["sub-1"]] * 3
    assert (inbox.abandoned, inbox.delivered, inbox.failures) == (1, 0, 3)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "gave up 1 submissions after 3 failed deliveries (s***)" in errors[0].getMessage()


async def test_the_exit_delivers_what_is_pending_first() -> None:
    deliver = Recorder()
    async with WebhookInbox(deliver) as inbox:
        for i in range(5):
            inbox.accept(updated(f"sub-{i}"))
    assert deliver.delivered == [f"sub-{i}" for i in range(5)]
    assert inbox.pending == ()
    with pytest.raises(RuntimeError, match="closed"):
        inbox.accept(updated("sub-9"))
    with pytest.raises(RuntimeError, match="not running"):
        await inbox.join()


async def test_an_exit_reports_an_id_still_waiting_for_its_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    time = FakeTime(held=True)  # the retry is never due
    async with WebhookInbox(FailFor("bad"), close_timeout=0.05, **time.options) as inbox:
        inbox.accept(updated("bad"))
        await time.started.get()
    assert inbox.pending == ("bad",)
    assert "closed with 1 submissions not delivered (b***)" in caplog.text


async def test_an_exit_that_cannot_deliver_in_time_reports_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    deliver = Recorder(hold=True)  # never opened: the delivery hangs
    async with WebhookInbox(deliver, close_timeout=0.05) as inbox:
        inbox.accept(updated("sub-1"))
        await deliver.entered.wait()
        inbox.accept(updated("sub-2"))
    assert inbox.pending == ("sub-1", "sub-2")
    assert deliver.running == 0  # the delivery was cancelled, not left running
    assert "closed with 2 submissions not delivered (s***, s***)" in caplog.text


async def test_a_cancelled_exit_does_not_wait_and_reports_what_is_left() -> None:
    deliver = Recorder(hold=True)
    entered = asyncio.Event()
    inbox = WebhookInbox(deliver, close_timeout=60)

    async def service() -> None:
        async with inbox:
            inbox.accept(updated("sub-1"))
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(service())
    await entered.wait()
    await deliver.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inbox.pending == ("sub-1",)


async def test_accept_refuses_another_thread() -> None:
    async with WebhookInbox(Recorder()) as inbox:
        errors: list[BaseException] = []

        def elsewhere() -> None:
            try:
                inbox.accept(updated("sub-1"))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "event loop" in str(errors[0])
    assert inbox.pending == ()


async def test_an_inbox_runs_once() -> None:
    inbox = WebhookInbox(Recorder())
    with pytest.raises(RuntimeError, match="not running"):
        await inbox.join()
    async with inbox:
        pass
    with pytest.raises(RuntimeError, match="runs once"):
        async with inbox:
            pass


def _bad_arguments() -> Iterator[tuple[dict[str, Any], type[Exception], str]]:
    yield {"batch_size": 0}, ValueError, "batch_size"
    yield {"max_pending": 0}, ValueError, "max_pending"
    yield {"remember": -1}, ValueError, "remember"
    yield {"max_attempts": 0}, ValueError, "max_attempts"
    yield {"backoff_base": 0}, ValueError, "backoff_base"
    yield {"backoff_max": float("inf")}, ValueError, "backoff_max"
    yield {"close_timeout": -1}, ValueError, "close_timeout"
    yield {"batch_size": 1.5}, TypeError, "batch_size"
    yield {"key": ""}, ValueError, "key"
    yield {"sleep": None}, TypeError, "sleep"
    yield {"clock": 0.0}, TypeError, "clock"


@pytest.mark.parametrize(("arguments", "error", "name"), list(_bad_arguments()))
def test_arguments_are_checked(
    arguments: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        WebhookInbox(Recorder(), **arguments)
    with pytest.raises(TypeError, match="deliver"):
        WebhookInbox("not callable")  # type: ignore[arg-type]


# -- fetch_truth, against the emulator --------------------------------------------------------


class Truths:
    """An on_truth that records what it was given; raises for the ids in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.got: dict[str, SubmissionTruth] = {}
        self.calls = 0
        self.refuse = set(refuse)

    async def __call__(self, truth: SubmissionTruth) -> None:
        self.calls += 1
        if truth.submission_id in self.refuse:
            self.refuse.discard(truth.submission_id)
            raise OSError("the store is down")
        self.got[truth.submission_id] = truth


async def test_fetch_truth_hands_on_what_the_api_says(
    argos_client: ArgosClient, argos_emulator: ArgosEmulator
) -> None:
    found, gone = argos_emulator.dataset.ids[:2]
    argos_emulator.delete(gone)
    truths = Truths()
    await fetch_truth(argos_client, truths)([found, gone, "nosuchsubmission"])
    assert truths.got[found].deleted is False
    assert truths.got[found].raw == await argos_client.get_raw_submission(found)
    assert truths.got[gone] == SubmissionTruth(gone, None, deleted=True)
    assert truths.got["nosuchsubmission"].deleted is True
    # The submission's data stays out of a repr (a log line of the caller's).
    assert "@" not in repr(truths.got[found])


async def test_fetch_truth_names_only_the_ids_whose_lookup_failed() -> None:
    plan = FaultPlan([Status(503, path=PATH, at=2)])
    async with (
        ArgosEmulator(50, seed=3, faults=plan) as emu,
        client_for(emu, max_retries=0) as argos,
    ):
        ids = list(emu.dataset.ids[:5])
        truths = Truths()
        with pytest.raises(
            DeliveryError, match="1 of 5 submissions not delivered: ServerError"
        ) as failed:
            await fetch_truth(argos, truths, concurrency=1)(ids)
    assert failed.value.submission_ids == (ids[1],)
    assert sorted(truths.got) == sorted(set(ids) - {ids[1]})
    assert isinstance(failed.value.__cause__, Exception)


async def test_fetch_truth_puts_back_what_on_truth_did_not_finish() -> None:
    async with ArgosEmulator(50, seed=3) as emu, client_for(emu) as argos:
        ids = list(emu.dataset.ids[:4])
        truths = Truths(refuse=(ids[1],))
        with pytest.raises(DeliveryError, match="OSError") as failed:
            await fetch_truth(argos, truths, concurrency=1)(ids)
    # One lookup at a time, so in order: the refused one and those after it go back.
    assert failed.value.submission_ids == tuple(ids[1:])
    assert list(truths.got) == [ids[0]]


async def test_fetch_truth_drops_an_id_the_api_refuses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async")
    plan = FaultPlan([Status(400, path=PATH, at=1)])
    async with ArgosEmulator(50, seed=3, faults=plan) as emu, client_for(emu) as argos:
        ids = list(emu.dataset.ids[:2])
        truths = Truths()
        await fetch_truth(argos, truths, concurrency=1)(ids)
    assert list(truths.got) == [ids[1]]
    assert f"webhook submission {ids[0][0]}*** dropped: the API refuses it" in caplog.text
    assert ids[0] not in caplog.text


async def test_fetch_truth_checks_its_arguments(argos_client: ArgosClient) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        fetch_truth(argos_client, Truths(), concurrency=0)
    with pytest.raises(TypeError, match="on_truth"):
        fetch_truth(argos_client, None)  # type: ignore[arg-type]
