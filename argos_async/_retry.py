"""Where a failed attempt becomes a wait and another attempt, and a 429 pauses the client.

One call (a lookup, or one page of a listing) runs through :meth:`Retrier.call`: it waits at
the client's shared pause gate and rate limiter, sends an attempt bounded by the per-attempt
timeout and what is left of the call's deadline, and on a retryable failure waits and tries
again. The loop is backoff's; the decisions are ours:

- which failures are retried, and how long a 429's ``Retry-After`` makes us wait, come from
  ``_protocol`` (pure functions);
- other waits are exponential with full jitter (backoff's ``expo`` and ``full_jitter``);
- a ``Retry-After`` is never shortened by jitter, and one that exceeds ``max_retry_after`` or
  the call's deadline fails at once rather than sleeping past either;
- a 429 closes the shared gate until its wait is over, so every concurrent request of the
  client waits too instead of retrying into the same limit;
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
from .errors import APIError, APITimeoutError, RateLimitError

T = TypeVar("T")

logger = logging.getLogger("argos_async")

Attempt = Callable[[float, int], Awaitable[T]]
"""Sends one attempt, given its timeout in seconds and its number (1-based)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries. ``backoff_base`` is the first backoff delay before jitter, doubling
    up to ``backoff_max``; ``max_retry_after`` caps how long a 429 may make a call wait."""

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
    """Closed by a 429 until its wait is over; every attempt of the client passes it first."""

    def __init__(self) -> None:
        self.closed_until = 0.0

    def close_until(self, when: float) -> None:
        self.closed_until = max(self.closed_until, when)

    async def wait(self, end: float | None) -> None:
        """Waits until the gate opens; fails at once if it opens only after ``end``."""
        while (remaining := self.closed_until - time.monotonic()) > 0:
            if end is not None and self.closed_until > end:
                raise RateLimitError(
                    "the client is paused by a 429 beyond this call's deadline",
                    retry_after=remaining,
                )
            # Loop: another 429 may have pushed the gate further while we slept.
            await anyio.sleep(remaining)


class RateLimiter:
    """At most ``per_second`` attempts a second across the client, evenly spaced.

    Each caller books the next free slot and sleeps until it comes (a GCRA without burst).
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next_slot = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(self._next_slot, now)
        self._next_slot = slot + self.interval
        if slot > now:
            await anyio.sleep(slot - now)


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
            giveup=lambda error: not protocol.is_retryable(error),
            jitter=None,  # jitter is applied in _waits(), never to a Retry-After
            on_backoff=self._log_retry,
            on_giveup=self._give_up,
            raise_on_giveup=True,
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
            if not protocol.is_retryable(error) or max_retries == 0:
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
        call.tries += 1
        self.attempts += 1
        await self.gate.wait(call.end)
        if self.limiter is not None:
            await self.limiter.acquire()
        limit = call.attempt_timeout
        if call.end is not None:
            limit = min(limit, call.end - time.monotonic())
            if limit <= 0:
                raise call.deadline_passed()
        try:
            return await call.attempt(limit, call.tries)
        except APITimeoutError:
            if call.end is not None and time.monotonic() >= call.end:
                raise call.deadline_passed() from None
            raise

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
            is_429_wait = isinstance(error, RateLimitError) and error.retry_after is not None
            if is_429_wait and wait > policy.max_retry_after:
                return  # the server asks for a longer pause than we accept: fail now
            if call.end is not None and time.monotonic() + wait > call.end:
                return  # the deadline would pass while waiting
            if self.budget is not None:
                cost = self.budget.withdraw(error)
                if not cost:
                    logger.warning("%s: retry budget exhausted, not retrying %s", call.what, error)
                    return
                call.spent += cost
            if isinstance(error, RateLimitError):
                # Every request of the client waits out this 429, not only this call.
                self.gate.close_until(time.monotonic() + wait)
            self.retries += 1
            error = yield wait

    @staticmethod
    def _log_retry(details: Any) -> None:
        call: _Call[Any] = details["args"][0]
        logger.warning(
            "%s: %s; retry %d of %d in %.2f s",
            call.what,
            details["exception"],
            details["tries"],
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

    def deadline_passed(self) -> APITimeoutError:
        return APITimeoutError(f"{self.what}: the call's deadline of {self.deadline:g} s passed")


_current: ContextVar[_Call[Any]] = ContextVar("argos_async_retried_call")
