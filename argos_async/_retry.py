"""Where a failed attempt becomes a wait and another attempt, and a 429 pauses the client.

Every call (a lookup, or one page of a listing) runs through :meth:`Retrier.call`, a plain loop
that reads top to bottom:

1. admit: wait at the client's pause gate and for a rate-limit slot, or fail at once when either
   would hold the attempt past the call's deadline;
2. send one attempt, bounded by the per-attempt timeout and what is left of the deadline;
3. classify the failure (:func:`is_retryable`, :func:`server_wait`); a ``Retry-After`` closes the
   shared gate, whether or not this call retries, since the limit it reports is the client's;
4. decide: retry only while tries and the shared budget last; wait the server's ``Retry-After``
   exactly (never shortened by jitter; one over ``max_retry_after`` fails at once), otherwise
   backoff's exponential delay with full jitter; never wait past the deadline;
5. wait, and go round.

When someone listens (event hooks, ``argos_async.otel``), the loop hands a ``CallTrace``
(``_hooks.py``) each step as it happens; with nobody listening there is no trace and each step
costs one ``is not None``.

Every wait the client makes is a ``clock.sleep`` in this module. The clock (monotonic time and
sleep) and the jitter (the random source) are arguments, so tests drive every timing rule on a
fake clock in milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Final, Protocol, TypeVar

import anyio
import backoff

from ._hooks import CallTrace, error_fields
from ._options import RequestOptions
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientPausedError,
    DecryptionError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)

T = TypeVar("T")

logger = logging.getLogger("argos_async")

Attempt = Callable[[float, int], Awaitable[T]]
"""Sends one attempt, given its timeout in seconds and its number (1-based)."""

Jitter = Callable[[float], float]
"""Turns a backoff delay into the wait actually slept (backoff's ``full_jitter``: 0 to delay)."""


class Clock(Protocol):
    """The retry machinery's only sense of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Waits ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and anyio's sleep."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``anyio.sleep(seconds)``."""
        await anyio.sleep(seconds)


# ---------------------------------------------------------------------------------------------
# Classification: which failures may pass if the same GET is sent again.

RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})


def is_retryable(error: BaseException) -> bool:
    """Whether sending the same GET again may succeed (every request here is idempotent)."""
    if isinstance(error, QuotaExceededError):
        return False  # the daily quota: nothing changes before 00:00 UTC
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, ServerError):
        return error.status in RETRY_STATUSES
    if isinstance(error, APIConnectionError):
        return True  # refused, reset, cut off mid-body, timed out
    if isinstance(error, DecryptionError):
        return False  # a wrong key or a damaged ciphertext: the same bytes fail the same way
    if isinstance(error, ResponseDecodeError):
        return error.incomplete  # a 200 whose JSON was cut off
    return False


def server_wait(error: BaseException) -> float | None:
    """The wait the server asked for with ``Retry-After`` on a 429 or a 503, if any. The daily
    quota's is no such wait: that error is not retried, and it must not pause the client."""
    if isinstance(error, QuotaExceededError):
        return None
    if isinstance(error, RateLimitError):
        return error.retry_after
    if isinstance(error, ServerError) and error.status == 503:
        return error.retry_after
    return None


# ---------------------------------------------------------------------------------------------
# The shared pieces a client's calls pass through.


class RetryBudget:
    """Retry tokens shared by every call of a client (after botocore's retry quota).

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout, which ties up a
    connection longer); a call that succeeds pays back what it spent, or one token if it needed
    no retry. When the budget is empty, failures are raised at once, so that during an outage
    a bulk job cannot multiply its load. It refills by successes, not by time: no clock.
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
        """Pays ``amount`` tokens back, up to the capacity."""
        self.available = min(self.capacity, self.available + amount)


class PauseGate:
    """Closed by a server's ``Retry-After`` until that time; every attempt of the client passes
    it before it is sent."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.closed_until = 0.0

    def close_until(self, when: float) -> None:
        """Keeps the gate closed until at least ``when`` (a time on the clock)."""
        self.closed_until = max(self.closed_until, when)

    def is_closed(self) -> bool:
        """Whether an attempt would have to wait now."""
        return self.closed_until > self.clock.monotonic()

    async def wait(self, end: float | None) -> bool:
        """Waits until the gate opens; returns False at once if it opens only after ``end``."""
        while (remaining := self.closed_until - self.clock.monotonic()) > 0:
            if end is not None and self.closed_until > end:
                return False
            # Loop: another Retry-After may have pushed the gate further while we slept.
            await self.clock.sleep(remaining)
        return True


class RateLimiter:
    """At most ``per_second`` attempts a second across the client, evenly spaced.

    Each caller books the next free slot and sleeps until it comes (a GCRA without burst).
    """

    def __init__(self, per_second: float, clock: Clock) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next_slot = 0.0

    def book(self, end: float | None) -> float | None:
        """Books the next free slot and returns its time; books nothing and returns None when
        that slot comes only at or after ``end``, so that a call about to fail does not push
        back every call queued behind it."""
        slot = max(self._next_slot, self.clock.monotonic())
        if end is not None and slot >= end:
            return None
        self._next_slot = slot + self.interval
        return slot


# ---------------------------------------------------------------------------------------------
# The loop.


class Retrier:
    """Runs calls with a client's pause gate, rate limiter and retry budget, and counts what it
    sends. One per client, shared by its ``with_options`` views: only the options differ."""

    def __init__(
        self,
        *,
        budget: RetryBudget | None,
        max_requests_per_second: float | None,
        clock: Clock | None = None,
        jitter: Jitter = backoff.full_jitter,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.jitter = jitter
        self.budget = budget
        self.gate = PauseGate(self.clock)
        self.limiter = (
            RateLimiter(max_requests_per_second, self.clock) if max_requests_per_second else None
        )
        self.attempts = 0
        self.retries = 0

    async def call(
        self,
        attempt: Attempt[T],
        *,
        what: str,
        options: RequestOptions,
        trace: CallTrace | None = None,
        path: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        """Runs ``attempt`` until it succeeds or a failure is final; raises the last error with
        ``attempts`` set. ``options.deadline`` bounds the whole call, waits included.
        ``trace`` (if any) is told every step; ``path`` and ``params`` (not masked yet) go
        into the log records, masked."""
        clock = self.clock
        end = None if options.deadline is None else clock.monotonic() + options.deadline
        delays: Iterator[float] | None = None  # backoff's, made at the first backoff
        tries = 0
        spent = 0  # budget tokens this call's retries took
        try:
            while True:
                # 1. Admit (no await at all while the gate is open and no limiter is set).
                if self.limiter is not None or self.gate.is_closed():
                    await self._admit(what, end, options, tries, trace)
                timeout = options.timeout
                if end is not None:
                    timeout = min(timeout, end - clock.monotonic())
                    if timeout <= 0:
                        raise _expired(what, options, tries, "passed")

                # 2. Send. Counted only now: an attempt stopped before it was sent reached no
                # one.
                tries += 1
                self.attempts += 1
                if tries > 1:
                    self.retries += 1
                if trace is not None:
                    await trace.request(tries)
                sent = clock.monotonic()
                try:
                    result = await attempt(timeout, tries)
                except APIError as error:
                    error.attempts = tries
                    elapsed = clock.monotonic() - sent
                    if trace is not None:
                        await trace.response(tries, elapsed, error)

                    # 3. Classify.
                    asked = server_wait(error)
                    if asked is not None:
                        # Capped like a call's own wait: one absurd header (or a far-off
                        # HTTP-date) must not freeze a long-lived client for hours.
                        self.gate.close_until(
                            clock.monotonic() + min(asked, options.max_retry_after)
                        )
                    timed_out = isinstance(error, APITimeoutError)
                    if timed_out and end is not None and clock.monotonic() >= end:
                        raise _expired(what, options, tries, "passed") from None
                    if not is_retryable(error) or tries > options.max_retries:
                        raise

                    # 4. Decide how long to wait, or give up now.
                    if asked is not None:
                        if asked > options.max_retry_after:
                            raise  # the server asks for a longer pause than we accept
                        wait = asked  # exactly: jitter must never make it shorter
                    else:
                        if delays is None:
                            delays = _backoff_delays(options)
                        wait = self.jitter(next(delays))
                    if end is not None and clock.monotonic() + wait > end:
                        raise  # the deadline would pass while waiting
                    fields = error_fields(path, params, error, attempt=tries, elapsed=elapsed)
                    if self.budget is not None:
                        cost = self.budget.withdraw(error)
                        if not cost:
                            logger.warning(
                                "%s; not retried: the retry budget is spent",
                                _describe(what, error),
                                extra=fields,
                            )
                            raise
                        spent += cost
                    if trace is not None:
                        await trace.retry(tries, wait, error, asked)
                    fields["argos_wait_ms"] = round(wait * 1000, 3)
                    fields["argos_reason"] = type(error).__name__
                    logger.warning(
                        "%s; retry %d of %d in %.2f s",
                        _describe(what, error),
                        tries,
                        options.max_retries,
                        wait,
                        extra=fields,
                    )

                    # 5. Wait, and go round.
                    await clock.sleep(wait)
                    continue

                if trace is not None:
                    await trace.response(tries, clock.monotonic() - sent, None)
                if self.budget is not None:
                    # A success pays back what its retries cost, or one token if it needed
                    # none.
                    self.budget.deposit(spent or 1)
                if trace is not None:
                    trace.end(None, tries)
                return result
        except BaseException as error:
            if trace is not None:
                trace.end(error, tries)
            raise

    async def _admit(
        self,
        what: str,
        end: float | None,
        options: RequestOptions,
        tries: int,
        trace: CallTrace | None = None,
    ) -> None:
        """Waits for the gate and a rate-limit slot; fails at once, booking nothing, when
        either would hold the attempt past the call's deadline (``tries``: sent so far).
        A wait at the gate is told to ``trace``."""
        while True:
            began = self.clock.monotonic() if trace is not None else 0.0
            opened = await self.gate.wait(end)
            if trace is not None and (waited := self.clock.monotonic() - began) > 0:
                trace.paused(waited)
            if not opened:
                paused = ClientPausedError(
                    f"{what}: not sent, the client is paused by the server's Retry-After "
                    "beyond this call's deadline",
                    retry_after=self.gate.closed_until - self.clock.monotonic(),
                )
                paused.attempts = tries
                raise paused
            if self.limiter is None:
                return
            slot = self.limiter.book(end)
            if slot is None:
                raise _expired(what, options, tries, "would pass before a rate-limit slot")
            delay = slot - self.clock.monotonic()
            if delay > 0:
                await self.clock.sleep(delay)
            # A Retry-After that arrived while this attempt slept must hold it too.
            if not self.gate.is_closed():
                return


def _backoff_delays(options: RequestOptions) -> Iterator[float]:
    """``backoff_base``, doubling up to ``backoff_max``: backoff's ``expo`` generator."""
    delays = backoff.expo(base=2, factor=options.backoff_base, max_value=options.backoff_max)
    next(delays)  # backoff's generators start with a bare yield
    return delays


def _expired(what: str, options: RequestOptions, tries: int, how: str) -> APITimeoutError:
    error = APITimeoutError(f"{what}: the call's deadline of {options.deadline:g} s {how}")
    error.attempts = tries
    return error


def _describe(what: str, error: APIError) -> str:
    """The failure for a log line, naming the request once."""
    text = str(error)
    return text if text.startswith(what) else f"{what}: {text}"
