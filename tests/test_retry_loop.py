"""Every timing rule of the retry loop, on a fake clock: exact times, in milliseconds of real time.

The attempts are scripted (no server): each returns a value or raises the error the client
would have made of a response. The end-to-end tests in ``test_retries.py`` show the same rules
against the emulator with loose bounds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import backoff
import pytest
from support import FakeClock

from argos_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientPausedError,
    QuotaExceededError,
    RateLimitError,
    RequestOptions,
    ServerError,
)
from argos_async._retry import Jitter, Retrier, RetryBudget

pytestmark = pytest.mark.anyio

WHAT = "GET /v3/submission"
START = 1000.0

Outcome = Callable[[], object]
"""One attempt's outcome: returns the value, or raises."""


def ok(value: object = "ok") -> Outcome:
    return lambda: value


def status(code: int, retry_after: float | None = None) -> Outcome:
    def fail() -> object:
        if code == 429:
            raise RateLimitError("Too Many Requests", status=429, retry_after=retry_after)
        if code in (401, 403):
            raise AuthenticationError("Forbidden", status=code)
        raise ServerError("Service Unavailable", status=code, retry_after=retry_after)

    return fail


def quota() -> object:
    raise QuotaExceededError(
        "Limit Exceeded", resets_at=datetime(2026, 12, 2, tzinfo=timezone.utc), retry_after=None
    )


def dropped() -> object:
    raise APIConnectionError("GET /v3/submission failed: ServerDisconnectedError")


HANG = "hang"
"""An attempt the server never answers: it ends when its timeout runs out."""


class Script:
    """Scripted attempts; records when each was sent and with which timeout."""

    def __init__(self, clock: FakeClock, *outcomes: Outcome | str, latency: float = 0.0) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.latency = latency
        self.sent: list[float] = []
        self.timeouts: list[float] = []

    async def __call__(self, timeout: float, number: int) -> object:
        assert number == len(self.sent) + 1
        self.sent.append(self.clock.now)
        self.timeouts.append(timeout)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome == HANG:
            await self.clock.sleep(timeout)
            raise APITimeoutError(f"GET /v3/submission timed out after {timeout:.3g} s")
        if self.latency:
            await self.clock.sleep(self.latency)
        assert callable(outcome)
        return outcome()


def make(
    clock: FakeClock,
    *,
    budget: RetryBudget | None = None,
    rate: float | None = None,
    jitter: Jitter = lambda delay: delay,
) -> Retrier:
    return Retrier(budget=budget, max_requests_per_second=rate, clock=clock, jitter=jitter)


def options(**changes: Any) -> RequestOptions:
    return RequestOptions().replace(**changes)


def since_start(times: list[float]) -> list[float]:
    return [round(t - START, 9) for t in times]


# ---------------------------------------------------------------------------------------------
# Retry-After.


@pytest.mark.parametrize("code", [429, 503])
async def test_retry_after_is_waited_exactly_on_every_attempt_never_shortened_by_jitter(
    code: int,
) -> None:
    clock = FakeClock(START)
    script = Script(clock, status(code, 1.0), status(code, 0.3), status(code, 2.5), ok())
    # A jitter of 0 would cut any backoff to nothing: a Retry-After must not be touched by it.
    retrier = make(clock, jitter=lambda delay: 0.0)
    result = await clock.run(retrier.call(script, what=WHAT, options=options(backoff_base=5.0)))
    assert result == "ok"
    assert since_start(script.sent) == [0.0, 1.0, 1.3, 3.8]


async def test_a_retry_after_over_the_cap_fails_at_once_and_pauses_the_client_for_the_cap() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    capped = options(max_retry_after=0.3)
    with pytest.raises(RateLimitError) as info:
        await clock.run(retrier.call(Script(clock, status(429, 5.0)), what=WHAT, options=capped))
    assert (clock.now, info.value.retry_after, info.value.attempts) == (START, 5.0, 1)
    # The next call waits out the cap, not the 5 s.
    after = Script(clock, ok())
    await clock.run(retrier.call(after, what=WHAT, options=capped))
    assert since_start(after.sent) == [0.3]


async def test_a_retry_after_beyond_the_deadline_fails_at_once() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    script = Script(clock, status(429, 5.0), ok())
    with pytest.raises(RateLimitError) as info:
        await clock.run(retrier.call(script, what=WHAT, options=options(deadline=2.0)))
    assert clock.now == START  # no sleep on the way to failing
    assert (len(script.sent), info.value.retry_after) == (1, 5.0)


# ---------------------------------------------------------------------------------------------
# Backoff and jitter.


async def test_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    clock = FakeClock(START)
    seen: list[float] = []

    def top_of_range(delay: float) -> float:
        seen.append(delay)
        return delay

    retrier = make(clock, jitter=top_of_range)
    script = Script(clock, status(503))
    with pytest.raises(ServerError) as info:
        await clock.run(
            retrier.call(
                script,
                what=WHAT,
                options=options(max_retries=6, backoff_base=0.01, backoff_max=0.04),
            )
        )
    assert seen == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04]
    assert clock.slept == seen
    assert info.value.attempts == 7


async def test_full_jitter_waits_anywhere_from_zero_to_the_delay() -> None:
    clock = FakeClock(START)
    drawn: list[tuple[float, float]] = []

    def recorded(delay: float) -> float:
        wait = backoff.full_jitter(delay)
        drawn.append((delay, wait))
        return wait

    retrier = make(clock, jitter=recorded)
    many = options(max_retries=200, backoff_base=1.0, backoff_max=1.0)
    with pytest.raises(ServerError):
        await clock.run(retrier.call(Script(clock, status(500)), what=WHAT, options=many))
    waits = [wait for _, wait in drawn]
    assert len(waits) == 200
    assert all(0.0 <= wait <= delay == 1.0 for delay, wait in drawn)
    assert clock.slept == waits
    assert len(set(waits)) == 200  # jittered: no two alike
    # Spread over the whole range, not bunched at one end.
    assert min(waits) < 0.1
    assert max(waits) > 0.9


async def test_the_default_is_five_retries_and_the_last_error_is_raised_with_its_count() -> None:
    clock = FakeClock(START)
    script = Script(clock, status(503), status(503), status(503), status(503), status(500))
    with pytest.raises(ServerError) as info:
        await clock.run(make(clock).call(script, what=WHAT, options=options()))
    assert (info.value.status, info.value.attempts, len(script.sent)) == (500, 6, 6)


@pytest.mark.parametrize("final", [status(403), status(400), status(501), quota])
async def test_what_cannot_pass_is_raised_at_once(final: Outcome) -> None:
    clock = FakeClock(START)
    script = Script(clock, final, ok())
    with pytest.raises(APIError) as info:
        await clock.run(make(clock).call(script, what=WHAT, options=options()))
    assert (info.value.attempts, clock.now, clock.slept) == (1, START, [])


# ---------------------------------------------------------------------------------------------
# The deadline.


async def test_one_deadline_bounds_every_attempt_and_wait_of_a_call() -> None:
    clock = FakeClock(START)
    script = Script(clock, HANG)
    call = make(clock).call(
        script, what=WHAT, options=options(timeout=0.3, deadline=1.0, backoff_base=0.1)
    )
    with pytest.raises(APITimeoutError, match=r"deadline of 1 s passed") as info:
        await clock.run(call)
    # 0.3 s attempt, 0.1 s wait, 0.3 s attempt, 0.2 s wait, and the last attempt gets only
    # the 0.1 s that is left.
    assert since_start(script.sent) == [0.0, 0.4, 0.9]
    assert [round(t, 9) for t in script.timeouts] == [0.3, 0.3, 0.1]
    assert round(clock.now - START, 9) == 1.0
    assert info.value.attempts == 3


async def test_a_backoff_wait_that_would_cross_the_deadline_ends_the_call_now() -> None:
    clock = FakeClock(START)
    script = Script(clock, status(503))
    call = make(clock).call(
        script, what=WHAT, options=options(deadline=1.0, backoff_base=0.1, backoff_max=0.4)
    )
    with pytest.raises(ServerError) as info:
        await clock.run(call)
    # Waits of 0.1, 0.2, 0.4 (at 0.7 s); the next 0.4 would end at 1.1 s: raise at 0.7 s.
    assert since_start(script.sent) == [0.0, 0.1, 0.3, 0.7]
    assert round(clock.now - START, 9) == 0.7
    assert info.value.attempts == 4


# ---------------------------------------------------------------------------------------------
# The pause gate.


async def test_one_429_pauses_every_call_of_the_client_until_its_retry_after() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    first = Script(clock, status(429, 1.0), ok(), latency=0.05)
    others = [Script(clock, ok(), latency=0.05) for _ in range(8)]

    async def later(n: int, script: Script) -> object:
        await clock.sleep(0.1 * (n + 1))  # started while the pause holds, one by one
        return await retrier.call(script, what=WHAT, options=options())

    async def everyone() -> list[object]:
        return await asyncio.gather(
            retrier.call(first, what=WHAT, options=options()),
            *(later(n, s) for n, s in enumerate(others)),
        )

    assert await clock.run(everyone()) == ["ok"] * 9
    # The 429 came back at 0.05 s: nothing is sent until 1.05 s, then everyone goes.
    assert since_start(first.sent) == [0.0, 1.05]
    assert all(since_start(s.sent) == [1.05] for s in others)


async def test_a_call_that_the_pause_would_hold_past_its_deadline_is_refused_unsent() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    with pytest.raises(RateLimitError):
        await clock.run(
            retrier.call(Script(clock, status(429, 1.0)), what=WHAT, options=options(max_retries=0))
        )
    refused = Script(clock, ok())
    with pytest.raises(ClientPausedError, match="not sent") as info:
        await clock.run(retrier.call(refused, what=WHAT, options=options(deadline=0.3)))
    assert (refused.sent, clock.now) == ([], START)  # failed at once, not at the deadline
    assert (info.value.attempts, info.value.retry_after) == (0, 1.0)
    assert not isinstance(info.value, RateLimitError)  # no 429 answered this call
    assert (retrier.attempts, retrier.retries) == (1, 0)


@pytest.mark.parametrize(
    ("outcomes", "budget", "call", "pause"),
    [
        ([status(429, 0.5)], None, {"max_retries": 0}, 0.5),
        ([status(503), status(429, 0.5)], None, {"max_retries": 1}, 0.5),
        ([status(429, 0.5)], None, {"deadline": 0.2}, 0.5),
        ([status(429, 0.5)], 0, {}, 0.5),
        ([status(429, 5.0)], None, {"max_retry_after": 0.3}, 0.3),
        ([status(503, 0.5)], None, {"max_retries": 0}, 0.5),
    ],
    ids=[
        "max_retries=0",
        "on the last attempt",
        "beyond the deadline",
        "budget spent",
        "beyond the cap",
        "503 Retry-After",
    ],
)
async def test_a_retry_after_pauses_the_client_even_when_its_call_gives_up(
    outcomes: list[Outcome], budget: int | None, call: dict[str, Any], pause: float
) -> None:
    clock = FakeClock(START)
    retrier = make(clock, budget=None if budget is None else RetryBudget(budget))
    failing = Script(clock, *outcomes)
    with pytest.raises(APIError):
        await clock.run(retrier.call(failing, what=WHAT, options=options(**call)))
    answered = failing.sent[-1]
    after = [Script(clock, ok()) for _ in range(2)]
    await clock.run(asyncio.gather(*(retrier.call(s, what=WHAT, options=options()) for s in after)))
    assert all(s.sent == [answered + pause] for s in after)


async def test_the_daily_quota_does_not_pause_the_client() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    with pytest.raises(QuotaExceededError):
        await clock.run(retrier.call(Script(clock, quota), what=WHAT, options=options()))
    after = Script(clock, ok())
    await clock.run(retrier.call(after, what=WHAT, options=options()))
    assert after.sent == [START]


# ---------------------------------------------------------------------------------------------
# The rate limiter.


async def test_the_rate_limiter_spaces_attempts_evenly() -> None:
    clock = FakeClock(START)
    retrier = make(clock, rate=20)
    scripts = [Script(clock, ok()) for _ in range(11)]
    await clock.run(
        asyncio.gather(*(retrier.call(s, what=WHAT, options=options()) for s in scripts))
    )
    sent = sorted(t for s in scripts for t in s.sent)
    assert since_start(sent) == [round(n * 0.05, 9) for n in range(11)]


async def test_the_rate_limiter_refuses_a_slot_past_the_deadline_and_books_nothing() -> None:
    clock = FakeClock(START)
    retrier = make(clock, rate=2)
    scripts = [Script(clock, ok()) for _ in range(6)]

    async def lookup(script: Script) -> BaseException | None:
        try:
            await retrier.call(script, what=WHAT, options=options(deadline=0.5))
        except APITimeoutError as error:
            return error
        return None

    outcomes = await clock.run(asyncio.gather(*(lookup(s) for s in scripts)))
    assert outcomes[0] is None
    assert all(isinstance(e, APITimeoutError) and e.attempts == 0 for e in outcomes[1:])
    assert clock.now == START  # refused at once
    # The slots the failed calls did not book are free: the next call takes the second slot.
    after = Script(clock, ok())
    await clock.run(retrier.call(after, what=WHAT, options=options()))
    assert since_start(after.sent) == [0.5]


# ---------------------------------------------------------------------------------------------
# The retry budget.


async def test_the_retry_budget_drains_with_retries_and_refills_with_successes() -> None:
    clock = FakeClock(START)
    budget = RetryBudget(capacity=10, retry_cost=5, timeout_cost=10)
    retrier = make(clock, budget=budget)
    with pytest.raises(ServerError) as first:
        await clock.run(retrier.call(Script(clock, status(503)), what=WHAT, options=options()))
    assert (first.value.attempts, budget.available) == (3, 0)  # two retries of 5 each
    with pytest.raises(ServerError) as second:
        await clock.run(retrier.call(Script(clock, status(503)), what=WHAT, options=options()))
    assert second.value.attempts == 1  # nothing left to retry with
    # A success with no retry pays back one token; one with retries pays back their cost.
    await clock.run(retrier.call(Script(clock, ok()), what=WHAT, options=options()))
    assert budget.available == 1
    budget.available = 10
    await clock.run(
        retrier.call(Script(clock, dropped, status(502), ok()), what=WHAT, options=options())
    )
    assert budget.available == 10
    # A timeout ties a connection up longer: it costs 10.
    await clock.run(
        retrier.call(Script(clock, HANG, ok()), what=WHAT, options=options(timeout=1.0))
    )
    assert budget.available == 10
    budget.available = 9
    with pytest.raises(APITimeoutError):
        await clock.run(retrier.call(Script(clock, HANG), what=WHAT, options=options(timeout=1.0)))


# ---------------------------------------------------------------------------------------------
# What the loop says.


async def test_each_retry_is_logged_once_naming_the_request_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(START)
    caplog.set_level(logging.WARNING, logger="argos_async")
    script = Script(clock, dropped, status(503), ok())
    await clock.run(make(clock).call(script, what=WHAT, options=options(backoff_base=0.25)))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "GET /v3/submission failed: ServerDisconnectedError; retry 1 of 5 in 0.25 s",
        "GET /v3/submission: 503 Service Unavailable; retry 2 of 5 in 0.50 s",
    ]
    assert all(line.count("/v3/submission") == 1 for line in lines)


async def test_counts_are_what_was_sent() -> None:
    clock = FakeClock(START)
    retrier = make(clock)
    await clock.run(retrier.call(Script(clock, status(500), ok()), what=WHAT, options=options()))
    await clock.run(retrier.call(Script(clock, ok()), what=WHAT, options=options()))
    assert (retrier.attempts, retrier.retries) == (3, 1)


async def test_a_retry_the_budget_refuses_is_logged_once_naming_the_request_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(START)
    caplog.set_level(logging.WARNING, logger="argos_async")
    retrier = make(clock, budget=RetryBudget(capacity=0))
    with pytest.raises(APIConnectionError):
        await clock.run(retrier.call(Script(clock, dropped), what=WHAT, options=options()))
    assert [r.getMessage() for r in caplog.records] == [
        "GET /v3/submission failed: ServerDisconnectedError; not retried: the retry budget is spent"
    ]
