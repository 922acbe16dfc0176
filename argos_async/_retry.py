"""Where a failed attempt becomes a wait and another attempt, and a 429 pauses the client.

One call (a lookup, or one page of a listing) runs through :meth:`Retrier.call`: it waits at
the client's shared pause gate and rate limiter, sends an attempt bounded by the per-attempt
timeout and what is left of the call's deadline, and on a retryable failure waits and tries
again. The loop is backoff's; the decisions are ours:

- which failures are retried, and how long a ``Retry-After`` (on a 429 or a 503) makes us
  wait, come from ``_protocol`` (pure functions);
- other waits are exponential with full jitter (backoff's ``expo`` and ``full_jitter``);
- a ``Retry-After`` is never shortened by jitter, and one that exceeds ``max_retry_after`` or
  the call's deadline fails at once rather than sleeping past either;
- every response carrying a ``Retry-After`` closes the shared gate until that time, whether
  or not its own call retries, so every request of the client waits too instead of running
  into the same limit; a plain 429 is left to full jitter, which already spreads the retries;
- an attempt that cannot be sent before the call's deadline (the gate or the rate limiter
  would hold it past it) fails at once and books nothing;
- every retry spends from a budget shared by the client (after botocore's retry quota), and
  successes pay it back, so during an outage a bulk job cannot multiply its load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import anyio
import backoff

from . import _protocol as protocol
from .errors import APIError, APIStatusError, APITimeoutError, RateLimitError

T = TypeVar("T")

logger = logging.getLogger("argos_async")

Attempt = Callable[[float, int], Awaitable[T]]
"""Sends one attempt, given its timeout in seconds and its number (1-based)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries. ``backoff_base`` is the first backoff delay before jitter, doubling
    up to ``backoff_max``; ``max_retry_after`` caps how long a ``Retry-After`` (on a 429 or a
    503) may make a call wait, and how long it may pause the whole client."""

    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0


class RetryBudget:
    """Retry tokens shared by every call of a client.

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout, which ties up a
    connection longer); a call that succeeds returns what it spent, or one token if it needed
    no retry. When the budget is empty, failures are raised at once.
    """

    def __init__(self, capacity: int = 500, retry_cost: int = 5, timeout_cost: int = 10) -> None:
        self.capacity = capacity
        self.available = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost

    def withdraw(self, error: BaseException) -> int:
        """Takes the cost of retrying after ``error``; returns 0 when there is not enough."""
        cost = self.timeout_cost if isinstance(error, APITimeoutError) else self.retry_cost
        if cost > self.available:
            return 0
        self.available -= cost
        return cost

    def deposit(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + amount)


class PauseGate:
    """Closed by a server's ``Retry-After`` until that time; every attempt of the client passes
    it before it is sent."""

    def __init__(self) -> None:
        self.closed_until = 0.0

    def close_until(self, when: float) -> None:
        self.closed_until = max(self.closed_until, when)

    def is_closed(self) -> bool:
        return self.closed_until > time.monotonic()

    async def wait(self, end: float | None) -> bool:
        """Waits until the gate opens; returns False at once if it opens only after ``end``."""
        while (remaining := self.closed_until - time.monotonic()) > 0:
            if end is not None and self.closed_until > end:
                return False
            # Loop: another Retry-After may have pushed the gate further while we slept.
            await anyio.sleep(remaining)
        return True


class RateLimiter:
    """At most ``per_second`` attempts a second across the client, evenly spaced.

    Each caller books the next free slot and sleeps until it comes (a GCRA without burst).
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next_slot = 0.0

    def book(self, end: float | None) -> float | None:
        """Books the next free slot and returns its time; books nothing and returns None when
        that slot comes only at or after ``end``, so that a call about to fail does not push
        back every call queued behind it."""
        slot = max(self._next_slot, time.monotonic())
        if end is not None and slot >= end:
            return None
        self._next_slot = slot + self.interval
        return slot


class Retrier:
    """Runs calls with the client's retry policy, pause gate, rate limiter and budget."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        budget: RetryBudget | None,
        max_requests_per_second: float | None,
    ) -> None:
        self.policy = policy
        self.budget = budget
        self.gate = PauseGate()
        self.limiter = RateLimiter(max_requests_per_second) if max_requests_per_second else None
        self.attempts = 0
        self.retries = 0
        # Decorated once: wrapping per call costs more than a fast request. What differs per
        # call travels as the argument (for the handlers) and in _current (for backoff's
        # argument-less hooks: max_tries and the wait generator).
        self._retrying = backoff.on_exception(
            # backoff sends each failure into the wait generator; its stubs do not say so.
            cast("Callable[..., Generator[float, None, None]]", self._waits),
            APIError,
            max_tries=lambda: _current.get().max_retries + 1,
            giveup=lambda error: _current.get().final or not protocol.is_retryable(error),
            jitter=None,  # jitter is applied in _waits(), never to a Retry-After
            on_backoff=self._log_retry,
            on_giveup=self._give_up,
            raise_on_giveup=True,
            # Ours are the log lines (on "argos_async", masked); backoff's own would add an
            # ERROR for every failure a caller may well expect, naming StopIteration.
            logger=None,
        )(self._once)

    async def call(
        self,
        attempt: Attempt[T],
        *,
        what: str,
        attempt_timeout: float,
        deadline: float | None,
        max_retries: int,
    ) -> T:
        """Runs ``attempt`` until it succeeds or a failure is final; raises the last error with
        ``attempts`` set. ``deadline`` (seconds) bounds the whole call, waits included."""
        call = _Call(
            attempt,
            what=what,
            attempt_timeout=attempt_timeout,
            deadline=deadline,
            max_retries=max_retries,
        )
        try:
            # Most calls succeed at once: only a failure pays for backoff's machinery.
            result = await self._once(call)
        except APIError as error:
            if call.final or not protocol.is_retryable(error) or max_retries == 0:
                error.attempts = call.tries
                raise
            call.first_failure = error
            token = _current.set(call)
            try:
                result = await self._retrying(call)
            finally:
                _current.reset(token)
        if self.budget is not None:
            # A success pays back what its retries cost, or one token if it needed none.
            self.budget.deposit(call.spent or 1)
        return result

    async def _once(self, call: _Call[T]) -> T:
        if call.first_failure is not None:
            # backoff's first try replays the failure of the attempt made before it took over.
            failure, call.first_failure = call.first_failure, None
            raise failure
        await self._admit(call)
        limit = call.attempt_timeout
        if call.end is not None:
            limit = min(limit, call.end - time.monotonic())
            if limit <= 0:
                raise call.expire("passed")
        # Counted only now: an attempt stopped before it was sent reached no server.
        call.tries += 1
        self.attempts += 1
        if call.tries > 1:
            self.retries += 1
        try:
            return await call.attempt(limit, call.tries)
        except APITimeoutError:
            if call.end is not None and time.monotonic() >= call.end:
                raise call.expire("passed") from None
            raise
        except APIStatusError as error:
            self._pause_for(error)
            raise

    async def _admit(self, call: _Call[Any]) -> None:
        """Waits for the gate and a rate-limit slot; fails at once, booking nothing, when
        either would hold the attempt past the call's deadline."""
        while True:
            if not await self.gate.wait(call.end):
                call.final = True
                raise RateLimitError(
                    f"{call.what}: the client is paused by the server's Retry-After beyond "
                    "this call's deadline",
                    retry_after=self.gate.closed_until - time.monotonic(),
                )
            if self.limiter is None:
                return
            slot = self.limiter.book(call.end)
            if slot is None:
                raise call.expire("would pass before the client's rate limit lets it send")
            delay = slot - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            # A Retry-After that arrived while this attempt slept must hold it too.
            if not self.gate.is_closed():
                return

    def _pause_for(self, error: APIStatusError) -> None:
        """Closes the gate for the wait a response's ``Retry-After`` asked for, whether or not
        its own call retries: the limit it reports is the client's, not one call's."""
        asked = protocol.server_wait(error)
        if asked is not None:
            # Capped like a call's own wait: one absurd header (or a far-off HTTP-date) must
            # not freeze a long-lived client for hours. The call that got it fails at once,
            # and after the cap the next request asks the server again.
            self.gate.close_until(time.monotonic() + min(asked, self.policy.max_retry_after))

    def _waits(self) -> Generator[float, BaseException, None]:
        """backoff's wait generator: sent each retryable failure, yields the wait before the next
        attempt; returning instead makes backoff raise that failure at once."""
        call = _current.get()
        policy = self.policy
        delays = backoff.expo(base=2, factor=policy.backoff_base, max_value=policy.backoff_max)
        next(delays)  # backoff's generators start with a bare yield
        error = yield 0.0
        while True:
            jittered = backoff.full_jitter(next(delays))
            wait = protocol.retry_wait(error, jittered)
            if protocol.server_wait(error) is not None and wait > policy.max_retry_after:
                return  # the server asks for a longer pause than we accept: fail now
            if call.end is not None and time.monotonic() + wait > call.end:
                return  # the deadline would pass while waiting
            if self.budget is not None:
                cost = self.budget.withdraw(error)
                if not cost:
                    logger.warning("%s: retry budget exhausted, not retrying %s", call.what, error)
                    return
                call.spent += cost
            error = yield wait

    @staticmethod
    def _log_retry(details: Any) -> None:
        call: _Call[Any] = details["args"][0]
        logger.warning(
            "%s: %s; retry %d of %d in %.2f s",
            call.what,
            details["exception"],
            call.tries,
            call.max_retries,
            details["wait"],
        )

    @staticmethod
    def _give_up(details: Any) -> None:
        error = details["exception"]
        if isinstance(error, APIError):
            error.attempts = details["args"][0].tries


class _Call(Generic[T]):
    """One call and what it carries between its attempts."""

    __slots__ = (
        "attempt",
        "attempt_timeout",
        "deadline",
        "end",
        "final",
        "first_failure",
        "max_retries",
        "spent",
        "tries",
        "what",
    )

    def __init__(
        self,
        attempt: Attempt[T],
        *,
        what: str,
        attempt_timeout: float,
        deadline: float | None,
        max_retries: int,
    ) -> None:
        self.attempt = attempt
        self.what = what
        self.attempt_timeout = attempt_timeout
        self.deadline = deadline
        self.end = None if deadline is None else time.monotonic() + deadline
        self.max_retries = max_retries
        self.tries = 0
        self.spent = 0
        self.first_failure: APIError | None = None
        self.final = False
        """Set when no retry can help, however much of the budget and tries is left."""

    def expire(self, how: str) -> APITimeoutError:
        """The error for a call whose deadline ``how`` ("passed", ...); it is not retried."""
        self.final = True
        return APITimeoutError(f"{self.what}: the call's deadline of {self.deadline:g} s {how}")


_current: ContextVar[_Call[Any]] = ContextVar("argos_async_retried_call")
