"""Event hooks (``event_hooks=``) and ``trace_configs=``: what each hook sees, in which order,
masked, and that a broken hook never breaks a call. Against the emulator over loopback; the
exact times of waits and pauses on a fake clock at the end."""

from __future__ import annotations

import asyncio
import logging
import re
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from support import FAST, FakeClock, client_for

from argos_async import (
    APIConnectionError,
    ArgosClient,
    ClientPausedError,
    NotFoundError,
    RateLimitError,
    RequestEvent,
    RequestOptions,
    ResponseEvent,
    RetryEvent,
    ServerError,
)
from argos_async import _client as client_module
from argos_async._hooks import CallTrace, Hooks
from argos_async._retry import Retrier
from argos_async.testing import ArgosEmulator, DropConnection, FaultPlan, Status

pytestmark = pytest.mark.anyio

LOOKUP = "/v3/submission"
UUID = re.compile(r"[0-9a-f-]{36}")

Event = RequestEvent | ResponseEvent | RetryEvent


class Recorder:
    """Every event, in order, from sync hooks on all three kinds."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self], "response": [self], "retry": [self]}

    def kinds(self) -> list[str]:
        return [type(e).__name__.removesuffix("Event").lower() for e in self.events]


async def test_hooks_see_each_attempt_its_outcome_and_the_wait_before_the_retry() -> None:
    plan = FaultPlan(
        [Status(503, at=1, path=LOOKUP), Status(429, retry_after=0.2, at=2, path=LOOKUP)]
    )
    recorder = Recorder()
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        sid = emu.dataset.ids[3]
        async with client_for(emu, FAST, event_hooks=recorder.hooks) as argos:
            sub = await argos.get_submission(sid)
    assert sub.submission_id == sid
    assert recorder.kinds() == [
        "request", "response", "retry",
        "request", "response", "retry",
        "request", "response",
    ]  # fmt: skip
    req1, resp1, retry1, req2, resp2, retry2, req3, resp3 = recorder.events
    assert isinstance(req1, RequestEvent)
    assert isinstance(resp1, ResponseEvent)
    assert isinstance(retry1, RetryEvent)
    assert isinstance(retry2, RetryEvent)
    assert isinstance(resp2, ResponseEvent)
    assert isinstance(resp3, ResponseEvent)
    assert [e.attempt for e in recorder.events] == [1, 1, 1, 2, 2, 2, 3, 3]
    for event in recorder.events:
        assert (event.operation, event.method, event.path) == ("get_submission", "GET", LOOKUP)
        assert dict(event.params) == {"submission_id": sid}
    # The 503: its status and request id, then a backoff wait (not the server's).
    assert resp1.status == 503
    assert isinstance(resp1.error, ServerError)
    assert resp1.request_id is not None
    assert UUID.fullmatch(resp1.request_id)
    assert (retry1.status, retry1.reason, retry1.retry_after) == (503, "ServerError", None)
    assert retry1.request_id == resp1.request_id
    assert 0 <= retry1.wait <= FAST["backoff_base"]
    # The 429: the server's Retry-After is the wait, exactly.
    assert resp2.status == 429
    assert isinstance(resp2.error, RateLimitError)
    assert (retry2.reason, retry2.retry_after, retry2.wait) == ("RateLimitError", 0.2, 0.2)
    # The success.
    assert (resp3.status, resp3.error) == (200, None)
    assert resp3.request_id is not None
    assert resp3.request_id != resp1.request_id
    assert all(e.elapsed >= 0 for e in (resp1, resp2, resp3))
    assert req1.attempt == 1
    assert req2.attempt == 2
    assert req3.attempt == 3


async def test_the_last_failure_has_a_response_event_and_no_retry_event() -> None:
    recorder = Recorder()
    async with (
        ArgosEmulator(submissions=20, seed=1) as emu,
        client_for(emu, FAST, event_hooks=recorder.hooks) as argos,
    ):
        with pytest.raises(NotFoundError) as info:
            await argos.get_submission("nosuchsubmission")
    assert recorder.kinds() == ["request", "response"]
    response = recorder.events[1]
    assert isinstance(response, ResponseEvent)
    assert response.error is info.value
    assert response.status == 200  # the API answers an unknown id with an empty Items list
    assert response.request_id == info.value.request_id is not None


async def test_a_dropped_connection_is_a_response_without_status() -> None:
    plan = FaultPlan([DropConnection(at=1, path=LOOKUP)])
    recorder = Recorder()
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        client_for(emu, FAST, event_hooks=recorder.hooks) as argos,
    ):
        await argos.get_submission(emu.dataset.ids[0])
    assert recorder.kinds() == ["request", "response", "retry", "request", "response"]
    dropped, retry = recorder.events[1], recorder.events[2]
    assert isinstance(dropped, ResponseEvent)
    assert isinstance(retry, RetryEvent)
    assert isinstance(dropped.error, APIConnectionError)
    # The answer was cut off mid-body: its status line had come, the body did not.
    assert retry.reason == "APIConnectionError"
    assert retry.error is dropped.error


async def test_listing_events_carry_masked_params_and_never_the_key() -> None:
    recorder = Recorder()
    async with ArgosEmulator(submissions=300, seed=4) as emu:
        email = emu.dataset.heavy_email
        userid = next(u for u in emu.dataset.userids if u and len(u) > 3)
        async with client_for(emu, FAST, event_hooks=recorder.hooks) as argos:
            by_email = [s async for s in argos.iter_submissions(email=email, page_size=2)]
            [s async for s in argos.iter_submissions(userid=userid, page_size=5)]
        assert by_email
        key = emu.api_key
    pages = [e for e in recorder.events if isinstance(e, RequestEvent)]
    assert len(pages) >= 2
    assert {e.operation for e in pages} == {"list_page"}
    emails = [e.params["email"] for e in pages if "email" in e.params]
    assert emails
    assert set(emails) == {email[0] + "***@" + email.partition("@")[2]}
    assert {e.params["userid"] for e in pages if "userid" in e.params} == {userid[0] + "***"}
    text = repr(recorder.events)
    local = email.partition("@")[0]
    assert local not in text
    assert email not in text
    assert userid not in text
    assert key not in text
    with pytest.raises(TypeError):
        pages[0].params["email"] = "x"  # type: ignore[index]


async def test_async_and_plain_hooks_both_run_and_async_ones_are_awaited() -> None:
    seen: list[str] = []

    async def slow(event: RequestEvent) -> None:
        await asyncio.sleep(0.01)
        seen.append(f"async {event.attempt}")

    def plain(event: RequestEvent) -> None:
        seen.append(f"plain {event.attempt}")

    class Callable:
        async def __call__(self, event: ResponseEvent) -> None:
            seen.append(f"object {event.status}")

    hooks = {"request": [slow, plain], "response": [Callable()]}
    async with (
        ArgosEmulator(submissions=20, seed=1) as emu,
        client_for(emu, FAST, event_hooks=hooks) as argos,
    ):
        await argos.get_submission(emu.dataset.ids[0])
    # The async hook was awaited before the plain one ran and before the request went out.
    assert seen == ["async 1", "plain 1", "object 200"]


async def test_a_hook_that_raises_is_logged_once_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def broken(event: RequestEvent) -> None:
        calls.append(event.attempt)
        raise RuntimeError("hook bug")

    async def broken_async(event: ResponseEvent) -> None:
        raise ValueError("async hook bug")

    after = Recorder()
    hooks = {"request": [broken, after], "response": [broken_async, after]}
    caplog.set_level(logging.DEBUG, logger="argos_async")
    async with (
        ArgosEmulator(submissions=20, seed=1) as emu,
        client_for(emu, FAST, event_hooks=hooks) as argos,
    ):
        for sid in emu.dataset.ids[:3]:
            assert (await argos.get_submission(sid)).submission_id == sid
    assert calls == [1, 1, 1]
    assert after.kinds() == ["request", "response"] * 3  # the hooks after it still ran
    failures = [r for r in caplog.records if "event hook" in r.getMessage()]
    warned = [r for r in failures if r.levelno == logging.WARNING]
    assert len(warned) == 2  # each broken hook once, with its traceback
    assert all(r.exc_info for r in warned)
    assert {r.exc_info[1].args[0] for r in warned if r.exc_info and r.exc_info[1]} == {
        "hook bug",
        "async hook bug",
    }
    assert len([r for r in failures if r.levelno == logging.DEBUG]) == 4  # the later ones
    assert all(r.__dict__["argos_path"] == LOOKUP for r in failures)


async def test_a_cancellation_in_a_hook_is_not_swallowed() -> None:
    async def cancelled(event: RequestEvent) -> None:
        raise asyncio.CancelledError

    async with ArgosEmulator(submissions=20, seed=1) as emu:
        async with client_for(emu, FAST, event_hooks={"request": [cancelled]}) as argos:
            with pytest.raises(asyncio.CancelledError):
                await argos.get_submission(emu.dataset.ids[0])
        assert emu.requests == []


async def test_views_inherit_the_hooks_and_with_options_replaces_them() -> None:
    client_hooks, view_hooks = Recorder(), Recorder()
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        sid = emu.dataset.ids[0]
        async with client_for(emu, FAST, event_hooks={"request": [client_hooks]}) as argos:
            inherited = argos.with_options(deadline=5.0)
            replaced = argos.with_options(event_hooks={"response": [view_hooks]})
            silenced = argos.with_options(event_hooks=None)
            await inherited.get_submission(sid)
            assert len(client_hooks.events) == 1
            await replaced.get_submission(sid)
            assert len(client_hooks.events) == 1
            assert view_hooks.kinds() == ["response"]
            await silenced.get_submission(sid)
            assert len(client_hooks.events) == 1
            assert len(view_hooks.events) == 1
            assert argos.event_hooks == {"request": [client_hooks], "response": [], "retry": []}
            assert replaced.event_hooks["response"] == [view_hooks]
            assert silenced.event_hooks == {"request": [], "response": [], "retry": []}
        assert len(emu.requests) == 3


@pytest.mark.parametrize(
    ("hooks", "error", "message"),
    [
        ({"requests": [print]}, ValueError, "unknown event kind 'requests'"),
        ({"request": print}, TypeError, r"event_hooks\['request'\] must be a list"),
        ({"request": [print, 3]}, TypeError, r"event_hooks\['request'\]\[1\] must be callable"),
        ([print], TypeError, "event_hooks must be a mapping"),
    ],
)
async def test_bad_event_hooks_are_refused_naming_the_argument(
    hooks: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ArgosClient(api_key="k", base_url="http://127.0.0.1:1", event_hooks=hooks)  # type: ignore[arg-type]
    async with ArgosClient(api_key="k", base_url="http://127.0.0.1:1") as argos:
        with pytest.raises(error, match=message):
            argos.with_options(event_hooks=hooks)  # type: ignore[arg-type]


async def test_trace_configs_reach_the_session() -> None:
    starts: list[str] = []
    ends: list[int] = []

    async def on_start(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        starts.append(params.url.path)

    async def on_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        ends.append(params.response.status)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    plan = FaultPlan([Status(500, at=1, path=LOOKUP)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        client_for(emu, FAST, trace_configs=[config]) as argos,
    ):
        await argos.get_submission(emu.dataset.ids[0])
    assert starts == [LOOKUP, LOOKUP]
    assert ends == [500, 200]
    with pytest.raises(TypeError, match=r"trace_configs\[0\] must be an aiohttp.TraceConfig"):
        ArgosClient(api_key="k", base_url="http://127.0.0.1:1", trace_configs=[object()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="trace_configs must be a list"):
        ArgosClient(api_key="k", base_url="http://127.0.0.1:1", trace_configs=config)  # type: ignore[arg-type]


@pytest.fixture
def no_trace_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes building a CallTrace fail: proves that nothing is built when nothing listens."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a CallTrace was made with nobody listening")

    monkeypatch.setattr(client_module, "CallTrace", refuse)


@pytest.mark.usefixtures("no_trace_allowed")
async def test_with_no_hooks_no_trace_is_made() -> None:
    async with (
        ArgosEmulator(submissions=50, seed=1) as emu,
        client_for(emu, FAST, event_hooks={"request": []}) as argos,
    ):
        await argos.get_submission(emu.dataset.ids[0])
        assert len([s async for s in argos.iter_submissions(page_size=20)]) == 50
        async for result in argos.batch_get_submissions(emu.dataset.ids[:5]):
            assert result.ok
        assert argos.with_options(event_hooks={}).event_hooks["request"] == []


# ---------------------------------------------------------------------------------------------
# On the fake clock: the exact waits, pauses and elapsed times the loop reports.


def _script(clock: FakeClock, outcomes: list[Exception | str], latency: float) -> Any:
    async def attempt(timeout: float, number: int) -> str:
        await clock.sleep(latency)
        outcome = outcomes[number - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt


async def test_waits_and_elapsed_times_are_the_ones_the_loop_slept() -> None:
    clock = FakeClock()
    retrier = Retrier(budget=None, max_requests_per_second=None, clock=clock, jitter=lambda d: d)
    recorder = Recorder()
    hooks = Hooks.build(recorder.hooks)
    trace = CallTrace(hooks, [], LOOKUP, {"email": "ana.silva@example.com", "count": "5"})
    outcomes: list[Exception | str] = [
        ServerError("Bad Gateway", status=502),
        RateLimitError("Too Many Requests", status=429, retry_after=7.5),
        "done",
    ]
    options = RequestOptions().replace(backoff_base=0.25)
    attempt = _script(clock, outcomes, latency=0.125)
    result = await clock.run(retrier.call(attempt, what="GET", options=options, trace=trace))
    assert result == "done"
    retries = [e for e in recorder.events if isinstance(e, RetryEvent)]
    responses = [e for e in recorder.events if isinstance(e, ResponseEvent)]
    assert [r.wait for r in retries] == [0.25, 7.5]
    assert [r.retry_after for r in retries] == [None, 7.5]
    # Each attempt took the scripted 0.125 s; then the waits were slept (and nothing else).
    assert [r.elapsed for r in responses] == [0.125, 0.125, 0.125]
    assert clock.slept == [0.125, 0.25, 0.125, 7.5, 0.125]
    assert {e.params["email"] for e in recorder.events} == {"a***@example.com"}


class PauseWatcher:
    """An observer (and its per-call view) that records the pauses and the end of each call."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.ended: list[tuple[str | None, int]] = []

    def start(self, call: object) -> PauseWatcher:
        return self

    def items(self, count: int) -> None:
        pass

    def request(self, event: object) -> None:
        pass

    def response(self, event: object) -> None:
        pass

    def retry(self, event: object) -> None:
        pass

    def paused(self, seconds: float) -> None:
        self.pauses.append(seconds)

    def end(self, error: BaseException | None, attempts: int) -> None:
        self.ended.append((None if error is None else type(error).__name__, attempts))


async def test_a_call_that_waits_at_the_pause_gate_reports_exactly_how_long() -> None:
    clock = FakeClock()
    retrier = Retrier(budget=None, max_requests_per_second=None, clock=clock)
    watcher = PauseWatcher()
    retrier.gate.close_until(clock.now + 4.0)  # another call's 429 asked for 4 s
    options = RequestOptions()
    trace = CallTrace(None, [watcher], LOOKUP, {"submission_id": "s1"})
    call = retrier.call(_script(clock, ["ok"], 0.0), what="GET", options=options, trace=trace)
    assert await clock.run(call) == "ok"
    assert watcher.pauses == [4.0]
    assert watcher.ended == [(None, 1)]

    # A call whose deadline ends before the gate opens: refused unsent, with no wait.
    retrier.gate.close_until(clock.now + 10.0)
    late = CallTrace(None, [watcher], LOOKUP, {"submission_id": "s2"})
    short = options.replace(deadline=1.0)
    call = retrier.call(_script(clock, ["ok"], 0.0), what="GET", options=short, trace=late)
    with pytest.raises(ClientPausedError):
        await clock.run(call)
    assert watcher.pauses == [4.0]
    assert watcher.ended[-1] == ("ClientPausedError", 0)
