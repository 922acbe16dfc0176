"""Retries, Retry-After, the shared 429 gate, deadlines and budgets, against a faulty emulator.

Delays are kept short (``backoff_base`` of milliseconds, Retry-After of about a second) so
that the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import struct
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp import web
from support import FAST, client_for

from argos_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ArgosClient,
    AuthenticationError,
    ClientPausedError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)
from argos_async.testing import (
    ArgosEmulator,
    Delay,
    DropConnection,
    FaultPlan,
    QuotaExceeded,
    Redirect,
    Status,
    TruncateBody,
)

pytestmark = pytest.mark.anyio

ANY_PATH = "/v3/submission"


async def test_mixed_faults_over_50000_items_deliver_every_item_once_in_order() -> None:
    plan = FaultPlan.mixed(0.2, seed=5)
    async with (
        ArgosEmulator(submissions=50_000, seed=5, faults=plan) as emu,
        client_for(emu, FAST, max_retries=8) as argos,
    ):
        ids = [s.submission_id async for s in argos.iter_submissions(page_size=500)]
        assert ids == emu.dataset.expected_ids()
        faulted = [r for r in emu.responses if r.fault is not None]
        assert len(faulted) >= 0.1 * len(emu.responses)
        kinds = {r.fault for r in faulted}
        assert {"Status", "DropConnection", "TruncateBody"} <= kinds
        statuses = {r.status for r in faulted if r.fault == "Status"}
        assert len(statuses & {429, 500, 502, 503, 504}) >= 3, statuses
        # The cut-off and truncated bodies came with a 200.
        assert {r.status for r in faulted if r.fault != "Status"} == {200}


@pytest.mark.parametrize("http_date", [False, True], ids=["seconds", "http-date"])
async def test_retry_after_is_never_shortened(http_date: bool) -> None:
    plan = FaultPlan([Status(429, retry_after=1, http_date=http_date, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            sub = await argos.get_submission(emu.dataset.ids[0])
        assert sub.submission_id == emu.dataset.ids[0]
        limited, retried = emu.responses[0], emu.requests[1]
        assert limited.status == 429
        # An HTTP-date has one-second resolution: the emulator rounds it up, never down.
        assert retried.received_at - limited.sent_at >= (0.98 if http_date else 1.0)


async def test_retry_after_is_honoured_on_every_attempt_without_jitter() -> None:
    plan = FaultPlan([Status(429, retry_after=0.3, at={1, 2, 3}, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, backoff_base=5.0) as argos:
            await argos.get_submission(emu.dataset.ids[0])
        gaps = [emu.requests[i + 1].received_at - emu.responses[i].sent_at for i in range(3)]
        assert all(0.3 <= gap < 2.0 for gap in gaps), gaps


async def test_forbidden_fails_at_once_without_retrying() -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        async with client_for(emu, FAST, api_key="wrong") as argos:
            with pytest.raises(AuthenticationError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.attempts == 1


async def test_daily_quota_is_not_retried_and_says_when_it_resets() -> None:
    plan = FaultPlan([QuotaExceeded(path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            with pytest.raises(QuotaExceededError, match=r"resets at .* 00:00 UTC") as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.resets_at.tzinfo is not None
    assert 0 < (info.value.resets_at - datetime.now(timezone.utc)).total_seconds() <= 86_400
    assert (info.value.resets_at.hour, info.value.resets_at.minute) == (0, 0)


async def test_server_errors_are_retried_until_max_retries_then_raised_with_attempts() -> None:
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, max_retries=3) as argos:
            with pytest.raises(ServerError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 4
    assert info.value.status == 503
    assert info.value.attempts == 4


@pytest.mark.parametrize(
    "fault",
    [
        Status(500, at=1, path=ANY_PATH),
        Status(502, at=1, path=ANY_PATH),
        Status(504, at=1, path=ANY_PATH),
        Status(429, at=1, path=ANY_PATH),
        DropConnection(at=1, path=ANY_PATH),
        TruncateBody(at=1, path=ANY_PATH),
    ],
    ids=["500", "502", "504", "429", "drop", "truncate"],
)
async def test_each_transient_fault_is_retried(fault: Any) -> None:
    async with ArgosEmulator(submissions=20, seed=1, faults=FaultPlan([fault])) as emu:
        async with client_for(emu, FAST) as argos:
            sub = await argos.get_submission(emu.dataset.ids[3])
        assert sub.submission_id == emu.dataset.ids[3]
        assert len(emu.requests) == 2


async def test_a_timed_out_attempt_is_retried() -> None:
    plan = FaultPlan([Delay(2.0, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, timeout=0.2) as argos:
            sub = await argos.get_submission(emu.dataset.ids[0])
        assert sub.submission_id == emu.dataset.ids[0]
        assert len(emu.requests) == 2


@pytest.mark.parametrize(
    "fault", [Delay(5.0, path=ANY_PATH), Status(503, path=ANY_PATH)], ids=["slow", "503"]
)
async def test_the_deadline_bounds_the_whole_call(fault: Any) -> None:
    # A backoff wait that would cross the deadline ends the call at once, so a call can end
    # early by at most backoff_max: kept small here for the lower bound to hold.
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=FaultPlan([fault])) as emu,
        client_for(emu, FAST, backoff_base=0.01, backoff_max=0.05, max_retries=1000) as argos,
    ):
        started = time.monotonic()
        with pytest.raises((APITimeoutError, ServerError)):
            await argos.with_options(deadline=1.0).get_submission(emu.dataset.ids[0])
        elapsed = time.monotonic() - started
    # Exact on a fake clock (test_retry_loop.py); here within half the deadline either way.
    assert 0.5 <= elapsed <= 1.5


async def test_a_listing_deadline_bounds_each_page_not_the_whole_listing() -> None:
    """``deadline`` on a listing applies to each page's request (with its retries)."""
    slow_pages = FaultPlan([Delay(0.4, at={1, 2, 3})])
    async with ArgosEmulator(submissions=30, seed=1, faults=slow_pages) as emu:
        async with client_for(emu, FAST) as argos:
            started = time.monotonic()
            ids = [
                s.submission_id
                async for s in argos.with_options(prefetch=0, deadline=1.0).iter_submissions(
                    page_size=10
                )
            ]
        # Three pages of 0.4 s each: longer than the deadline in all, shorter page by page (by
        # 0.6 s each, room for a busy machine).
        assert time.monotonic() - started >= 1.2
        assert ids == emu.dataset.expected_ids()

    stuck_page_2 = FaultPlan([Delay(5.0, at=2)])
    async with ArgosEmulator(submissions=30, seed=1, faults=stuck_page_2) as emu:
        pages = []
        async with client_for(emu, FAST) as argos:
            with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s") as info:
                async for page in argos.with_options(prefetch=0, deadline=0.5).iter_pages(
                    page_size=10
                ):
                    pages.append(page)
                    page_2_asked = time.monotonic()
        elapsed = time.monotonic() - page_2_asked
    # Cut off by the deadline, not by the page's 5 s.
    assert 0.25 <= elapsed < 2.5
    assert len(pages) == 1
    assert info.value.cursor == pages[0].cursor


async def test_the_rate_limiter_does_not_hold_a_call_past_its_deadline() -> None:
    """A slot after the call's deadline fails the call at once and is not booked."""
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        async with client_for(emu, FAST, max_requests_per_second=2) as argos:
            started = time.monotonic()

            async def timed_lookup(submission_id: str) -> tuple[float, BaseException | None]:
                try:
                    await argos.with_options(deadline=0.5).get_submission(submission_id)
                except APITimeoutError as error:
                    return time.monotonic() - started, error
                return time.monotonic() - started, None

            outcomes = await asyncio.gather(*(timed_lookup(i) for i in emu.dataset.ids[:6]))
            # The slots the failed calls did not book are free: the next call goes at the
            # second slot after the first (1 s), not after five wasted ones (3 s).
            await argos.get_submission(emu.dataset.ids[7])
            next_call_done = time.monotonic() - started
            stats = argos.stats
        assert all(elapsed <= 0.75 for elapsed, _ in outcomes), outcomes
        assert outcomes[0][1] is None
        failed = [error for _, error in outcomes if error is not None]
        assert len(failed) >= 4
        assert all(isinstance(e, APITimeoutError) and e.attempts <= 1 for e in failed)
        # At 2 a second, a 0.5 s deadline leaves room for at most two requests.
        assert len(emu.requests) <= 3
        assert stats.requests == len(emu.requests)
    assert next_call_done < 2.0  # not the 3 s that five wasted slots would have cost


async def test_the_default_is_five_retries() -> None:
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            with pytest.raises(ServerError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 6
    assert info.value.attempts == 6


async def test_the_last_error_is_raised_with_the_attempt_count() -> None:
    plan = FaultPlan([Status(503, at=1, path=ANY_PATH), Status(500, at=2, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, max_retries=1) as argos:
            with pytest.raises(ServerError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 2
    assert (info.value.status, info.value.attempts) == (500, 2)


async def test_a_per_call_timeout_overrides_the_clients() -> None:
    plan = FaultPlan([Delay(2.0, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, timeout=60) as argos:
            started = time.monotonic()
            sub = await argos.with_options(timeout=0.2).get_submission(emu.dataset.ids[0])
            elapsed = time.monotonic() - started
        assert len(emu.requests) == 2
    assert sub.submission_id == emu.dataset.ids[0]
    assert elapsed < 1.0


async def test_backoff_is_exponential_with_full_jitter_and_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # backoff's full_jitter draws random.uniform(0, delay): record each draw's range and
    # answer with its top, so that the waits slept can be checked against the server's log.
    drawn: list[tuple[float, float]] = []

    def top_of_range(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", top_of_range)
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(
            emu, FAST, max_retries=6, backoff_base=0.01, backoff_max=0.04
        ) as argos:
            with pytest.raises(ServerError):
                await argos.get_submission(emu.dataset.ids[0])
        gaps = [emu.requests[i + 1].received_at - emu.responses[i].sent_at for i in range(6)]
    assert drawn == [(0, d) for d in (0.01, 0.02, 0.04, 0.04, 0.04, 0.04)]
    assert all(gap >= high for gap, (_, high) in zip(gaps, drawn, strict=True)), gaps
    # That each wait lies anywhere from 0 to its delay, and differs from the others, is shown
    # on a fake clock: tests/test_retry_loop.py.


async def test_a_503_retry_after_is_honoured_exactly() -> None:
    plan = FaultPlan([Status(503, retry_after=0.5, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        # A backoff of 5 s would be jittered anywhere in 0..5 s: the 0.5 s wait is the server's.
        async with client_for(emu, FAST, backoff_base=5.0, backoff_max=5.0) as argos:
            await argos.get_submission(emu.dataset.ids[0])
        gap = emu.requests[1].received_at - emu.responses[0].sent_at
    assert 0.5 <= gap < 1.0


async def test_a_custom_retry_after_cap_fails_at_once() -> None:
    plan = FaultPlan([Status(429, retry_after=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST, max_retry_after=0.5) as argos:
            started = time.monotonic()
            with pytest.raises(RateLimitError) as info:
                await argos.get_submission(emu.dataset.ids[0])
            elapsed = time.monotonic() - started
        assert len(emu.requests) == 1
    assert info.value.retry_after == 1
    assert info.value.attempts == 1
    assert elapsed < 0.5  # not the 1 s the server asked for


async def test_a_slow_server_ends_the_call_with_a_timeout_error_naming_the_deadline() -> None:
    plan = FaultPlan([Delay(5.0, path=ANY_PATH)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        client_for(emu, FAST, deadline=0.5) as argos,
    ):
        with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s"):
            await argos.get_submission(emu.dataset.ids[0])


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitError), (503, ServerError)])
async def test_retry_after_beyond_the_cap_fails_at_once(
    status: int, error: type[RateLimitError | ServerError]
) -> None:
    plan = FaultPlan([Status(status, retry_after=120, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            started = time.monotonic()
            with pytest.raises(error) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    raised = info.value
    assert isinstance(raised, (RateLimitError, ServerError))
    assert raised.retry_after == 120
    assert time.monotonic() - started < 1.0


async def test_retry_after_beyond_the_deadline_fails_at_once() -> None:
    plan = FaultPlan([Status(429, retry_after=5, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            with pytest.raises(RateLimitError) as info:
                await argos.with_options(deadline=2.0).get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.retry_after == 5


async def test_one_429_pauses_every_concurrent_request_of_the_client() -> None:
    plan = FaultPlan([Status(429, retry_after=1, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=200, seed=1, faults=plan, latency=0.02) as emu:
        ids = list(emu.dataset.ids[:32])
        async with client_for(emu, FAST) as argos:

            async def lookup_many(chunk: list[str]) -> list[str]:
                out = []
                for submission_id in chunk:
                    out.append((await argos.get_submission(submission_id)).submission_id)
                return out

            # 32 concurrent lookups, each worker doing several in a row.
            chunks = [ids[i::8] + ids[(i + 1) % 8 :: 8] for i in range(8)]
            results = await asyncio.gather(*(lookup_many(chunk) for chunk in chunks))
        assert [r for chunk in results for r in chunk] == [s for c in chunks for s in c]
        limited = next(r for r in emu.responses if r.status == 429)
        # Requests already on the wire when the 429 left may still arrive just after it;
        # after that, nothing until the Retry-After second is over.
        during = [
            r
            for r in emu.requests
            if limited.sent_at + 0.25 < r.received_at < limited.sent_at + 1.0
        ]
        assert during == []
        assert any(r.received_at >= limited.sent_at + 1.0 for r in emu.requests)


@pytest.mark.parametrize("spread", ["staggered starts", "client rate limit"])
async def test_32_concurrent_lookups_send_nothing_during_a_429s_retry_after(spread: str) -> None:
    """The issue's gate test: 32 separate calls gathered at once, one 429 with Retry-After 1 s.

    The calls' requests are spread over about half a second (their starts staggered, or the
    client's rate limit spacing them), so that without the gate they would keep arriving
    during that second.
    """
    plan = FaultPlan([Status(429, retry_after=1, at=1, path=ANY_PATH)])
    rate = {"max_requests_per_second": 64} if spread == "client rate limit" else {}
    async with ArgosEmulator(submissions=200, seed=1, faults=plan) as emu:
        ids = list(emu.dataset.ids[:32])
        async with client_for(emu, FAST, **rate) as argos:

            async def lookup(n: int, submission_id: str) -> str:
                if spread == "staggered starts":
                    await asyncio.sleep(n * 0.016)
                return (await argos.get_submission(submission_id)).submission_id

            results = await asyncio.gather(*(lookup(n, i) for n, i in enumerate(ids)))
        assert results == ids
        assert len(emu.requests) == 33
        limited = emu.responses[0]
        assert limited.status == 429
        # Only requests already on the wire when the 429 left may arrive just after it.
        during = [
            r.received_at - limited.sent_at
            for r in emu.requests
            if limited.sent_at + 0.25 < r.received_at < limited.sent_at + 1.0
        ]
        assert during == []
        assert sum(r.received_at >= limited.sent_at + 1.0 for r in emu.requests) >= 25


@pytest.mark.parametrize(
    ("faults", "options", "call_options", "pause"),
    [
        ([Status(429, retry_after=0.5, at=1, path=ANY_PATH)], {}, {"max_retries": 0}, 0.5),
        (
            [
                Status(503, at=1, path=ANY_PATH),
                Status(429, retry_after=0.5, at=2, path=ANY_PATH),
            ],
            {},
            {"max_retries": 1},
            0.5,
        ),
        ([Status(429, retry_after=0.5, at=1, path=ANY_PATH)], {}, {"deadline": 0.2}, 0.5),
        ([Status(429, retry_after=0.5, at=1, path=ANY_PATH)], {"retry_budget": 0}, {}, 0.5),
        # Over the cap, the call fails at once and the client pauses for the cap, not 5 s.
        ([Status(429, retry_after=5, at=1, path=ANY_PATH)], {"max_retry_after": 0.3}, {}, 0.3),
        ([Status(503, retry_after=0.5, at=1, path=ANY_PATH)], {}, {"max_retries": 0}, 0.5),
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
    faults: list[Any], options: dict[str, Any], call_options: dict[str, Any], pause: float
) -> None:
    async with ArgosEmulator(submissions=20, seed=1, faults=FaultPlan(faults)) as emu:
        async with client_for(emu, FAST, **options) as argos:
            with pytest.raises((RateLimitError, ServerError, ClientPausedError)):
                await argos.with_options(**call_options).get_submission(emu.dataset.ids[0])
            paused = emu.responses[-1]
            # One call already waiting when the failure comes, and one started after it.
            await asyncio.gather(
                argos.get_submission(emu.dataset.ids[1]),
                argos.get_submission(emu.dataset.ids[2]),
            )
        later = emu.requests[paused.index + 1 :]
        assert len(later) == 2
        assert all(
            paused.sent_at + pause <= r.received_at < paused.sent_at + pause + 0.3 for r in later
        ), [r.received_at - paused.sent_at for r in later]


async def test_a_call_stopped_at_the_gate_sends_nothing_and_counts_no_request() -> None:
    plan = FaultPlan([Status(429, retry_after=1, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            with pytest.raises(RateLimitError):
                await argos.with_options(max_retries=0).get_submission(emu.dataset.ids[0])
            started = time.monotonic()
            with pytest.raises(ClientPausedError, match="paused") as info:
                await argos.with_options(deadline=0.3).get_submission(emu.dataset.ids[1])
            assert time.monotonic() - started < 0.15  # at once, not at the 0.3 s deadline
            stats = argos.stats
        assert len(emu.requests) == 1
    assert (stats.requests, stats.retries) == (1, 0)
    assert info.value.attempts == 0
    assert info.value.retry_after is not None
    assert 0.5 < info.value.retry_after <= 1.0


async def test_the_retry_budget_is_shared_and_stops_retries_when_spent() -> None:
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        # 10 tokens: two retries at 5 each, for the whole client.
        async with client_for(emu, FAST, retry_budget=10, max_retries=5) as argos:
            with pytest.raises(ServerError) as first:
                await argos.get_submission(emu.dataset.ids[0])
            with pytest.raises(ServerError) as second:
                await argos.get_submission(emu.dataset.ids[1])
        assert len(emu.requests) == 4
    assert (first.value.attempts, second.value.attempts) == (3, 1)


async def test_client_side_rate_limit_spaces_requests() -> None:
    # When each attempt is let go (its "request" event), not when it reaches the server: the
    # first request's new connection may take longer on a busy machine and shrink the span.
    released: list[float] = []
    loop = asyncio.get_running_loop()
    hooks = {"request": [lambda event: released.append(loop.time())]}
    async with ArgosEmulator(submissions=50, seed=1) as emu:
        async with client_for(emu, FAST, max_requests_per_second=20, event_hooks=hooks) as argos:
            await asyncio.gather(*(argos.get_submission(i) for i in emu.dataset.ids[:11]))
        assert len(emu.requests) == 11
    assert len(released) == 11
    assert max(released) - min(released) >= 10 / 20 * 0.95


async def test_a_page_too_large_is_asked_for_again_with_half_the_count() -> None:
    async with ArgosEmulator(
        submissions=3_000, seed=2, page_byte_limit=None, response_byte_limit=150_000
    ) as emu:
        async with client_for(emu, FAST) as argos:
            ids = [s.submission_id async for s in argos.iter_submissions(page_size=2000)]
        assert ids == emu.dataset.expected_ids()
        counts = [int(r.query["count"]) for r in emu.requests]
        assert counts[:3] == [2000, 1000, 500]
        statuses = [r.status for r in emu.responses]
        # Once a size fits, the listing keeps it: no 413 after the first page that fitted.
        first_ok = statuses.index(200)
        assert 413 not in statuses[first_ok:]


async def test_a_413_mid_listing_asks_for_the_same_page_with_half_the_count() -> None:
    plan = FaultPlan([Status(413, at=3)])
    async with ArgosEmulator(submissions=100, seed=2, faults=plan) as emu:
        async with client_for(emu, FAST) as argos:
            ids = [s.submission_id async for s in argos.iter_submissions(page_size=20)]
        assert ids == emu.dataset.expected_ids()  # every item once, in order
        refused, again = emu.requests[2], emu.requests[3]
        assert emu.responses[2].status == 413
        assert "nextpage_id" in refused.query
        for name in ("nextpage_id", "nextpage_date"):
            assert again.query[name] == refused.query[name]
        assert (refused.query["count"], again.query["count"]) == ("20", "10")


async def test_a_single_item_too_large_still_fails() -> None:
    async with ArgosEmulator(
        submissions=100, seed=2, page_byte_limit=None, response_byte_limit=100
    ) as emu:
        async with client_for(emu, FAST) as argos:
            with pytest.raises(PayloadTooLargeError):
                async for _ in argos.iter_submissions(page_size=8):
                    pass
        assert [r.query["count"] for r in emu.requests] == ["8", "4", "2", "1"]


async def test_a_redirect_to_another_host_is_not_followed_and_the_key_stays_home() -> None:
    async with ArgosEmulator(submissions=10, seed=1) as elsewhere:
        plan = FaultPlan([Redirect(elsewhere.url, path=ANY_PATH)])
        async with (
            ArgosEmulator(submissions=10, seed=1, faults=plan) as emu,
            client_for(emu, FAST) as argos,
        ):
            with pytest.raises(APIStatusError, match="redirect") as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert elsewhere.requests == []  # the other host never saw the key, nor anything
    assert info.value.status == 307
    assert emu.api_key not in str(info.value)


async def test_an_oversized_response_is_refused_not_retried() -> None:
    async with ArgosEmulator(submissions=500, seed=1) as emu:
        async with client_for(emu, FAST, max_response_bytes=10_000) as argos:
            with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
                async for _ in argos.iter_submissions(page_size=500):
                    pass
        assert len(emu.requests) == 1


@pytest.fixture
async def streaming_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering every request with a chunked body (no Content-Length) of the
    ``size`` bytes its submission_id names; yields its origin and the sizes asked for."""
    asked: list[int] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        size = int(request.query["submission_id"])
        asked.append(size)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (1 << 20)
        while size > 0:
            await response.write(chunk[:size])
            size -= len(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get(ANY_PATH, stream)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


async def test_a_streamed_body_over_the_cap_is_refused_not_retried(
    streaming_server: tuple[str, list[int]],
) -> None:
    url, asked = streaming_server
    async with ArgosClient(api_key="k", base_url=url, max_response_bytes=10_000, **FAST) as argos:
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes of 10,000") as info:
            await argos.get_submission("40000")
    assert asked == [40000]
    assert info.value.attempts == 1


async def test_the_default_response_cap_is_64_mib(
    streaming_server: tuple[str, list[int]],
) -> None:
    url, asked = streaming_server
    async with ArgosClient(api_key="k", base_url=url, **FAST) as argos:
        with pytest.raises(ResponseTooLargeError, match="of 67,108,864"):
            await argos.get_submission(str(64 * 1024 * 1024 + 1))
    assert asked == [64 * 1024 * 1024 + 1]


@pytest.fixture
async def resetting_server() -> AsyncIterator[tuple[str, list[int], list[int]]]:
    """A raw TCP server that reads each request and resets the connection (an RST, by
    SO_LINGER 0) while the resets it is told to send last, then answers properly. Yields its
    origin, the list to append reset counts to (empty: always reset), and the connections."""
    resets: list[int] = []
    connections: list[int] = []
    body = b'{"Items":[{"submission_id":"abc"}]}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"x-amzn-RequestId: reset-test\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        await reader.readuntil(b"\r\n\r\n")
        if not resets or len(connections) <= resets[0]:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.write(answer)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", resets, connections
    finally:
        server.close()
        await server.wait_closed()


async def test_a_reset_connection_is_retried(
    resetting_server: tuple[str, list[int], list[int]],
) -> None:
    url, resets, connections = resetting_server
    # Two resets: aiohttp itself may send a GET again once after a reset (RFC 9112's remedy
    # for a stale keep-alive connection), so only the second one is sure to reach our retries.
    resets.append(2)
    async with ArgosClient(api_key="k", base_url=url, **FAST) as argos:
        sub = await argos.get_submission("abc")
        assert argos.stats.retries >= 1
    assert sub.submission_id == "abc"
    assert connections == [1, 2, 3]


async def test_connections_reset_every_time_fail_after_the_retries(
    resetting_server: tuple[str, list[int], list[int]],
) -> None:
    url, _, connections = resetting_server
    async with ArgosClient(api_key="k", base_url=url, **FAST) as argos:
        with pytest.raises(APIConnectionError, match="GET /v3/submission failed") as info:
            await argos.with_options(max_retries=2).get_submission("abc")
    assert info.value.attempts == 3
    assert len(connections) in (3, 6)  # with or without aiohttp's own resend per attempt


async def test_an_error_mid_listing_carries_the_cursor_to_resume_from() -> None:
    plan = FaultPlan([Status(500, at={3, 4})])
    async with ArgosEmulator(submissions=1_000, seed=3, faults=plan) as emu:
        pages = []
        async with client_for(emu, FAST, max_retries=1) as argos:
            with pytest.raises(ServerError) as info:
                async for page in argos.with_options(prefetch=0).iter_pages(page_size=100):
                    pages.append(page)
        assert len(pages) == 2
        assert info.value.cursor == pages[-1].cursor
        assert info.value.attempts == 2
        # Resuming from it, once the server has recovered, gives exactly the rest.
        async with client_for(emu, FAST) as argos:
            rest = [
                s.submission_id
                async for s in argos.iter_submissions(page_size=100, cursor=info.value.cursor)
            ]
        done = [s.submission_id for p in pages for s in p.items]
        assert done + rest == emu.dataset.expected_ids()


async def test_debug_logs_of_a_fault_heavy_run_hold_neither_key_nor_email(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = FaultPlan.mixed(0.5, seed=9, path=ANY_PATH)
    caplog.set_level(logging.DEBUG, logger="argos_async")
    async with ArgosEmulator(submissions=3_000, seed=9, faults=plan) as emu:
        email = emu.dataset.heavy_email
        userid = emu.dataset.for_email(email)[0]["userid"]
        async with client_for(emu, FAST, max_retries=10) as argos:
            subs = [s async for s in argos.iter_submissions(email=email, page_size=20)]
            for sub in subs[:10]:
                await argos.get_submission(sub.submission_id)
            async for _ in argos.iter_submissions(userid=userid, page_size=20):
                pass
    text = caplog.text
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    request_line = re.compile(
        r"GET /v3/submission \{.*\} -> (\d{3}|\w+) in [\d.]+ ms "
        r"\(attempt \d+, request id ([\w-]+)\)"
    )
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert debug
    matches = [request_line.fullmatch(line) for line in debug]
    assert all(matches), debug[:3]
    # Every answer that arrived, even one whose body was then cut off, names the request id
    # the emulator sent with it.
    answered = [m for m in matches if m and m.group(1) != "timeout"]
    assert answered
    assert all(uuid.fullmatch(m.group(2)) for m in answered), [m.group(0) for m in answered][:3]
    assert any("attempt 2" in line for line in debug)
    # Every retry says why and how long it waits.
    assert warnings
    assert all(re.search(r"; retry \d+ of 10 in [\d.]+ s$", line) for line in warnings)
    assert any("503" in line for line in warnings)
    assert emu.api_key not in text
    assert email not in text
    assert userid not in text
    for found in re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text):
        assert re.fullmatch(r"\w\*\*\*@.+", found), found
    assert "Items" not in text  # never a body


async def test_connection_errors_name_no_personal_data() -> None:
    plan = FaultPlan([DropConnection(path=ANY_PATH)])
    async with ArgosEmulator(submissions=100, seed=1, faults=plan) as emu:
        email = emu.dataset.heavy_email
        async with client_for(emu, FAST, max_retries=1) as argos:
            with pytest.raises(APIConnectionError) as info:
                async for _ in argos.iter_submissions(email=email):
                    pass
    assert email not in str(info.value)
    assert info.value.attempts == 2


async def test_retries_log_only_on_the_argos_async_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        client_for(emu, FAST, max_retries=2) as argos,
    ):
        with pytest.raises(ServerError):
            await argos.get_submission(emu.dataset.ids[0])
    assert [r.getMessage() for r in caplog.records if r.name == "backoff"] == []
    ours = [r.levelname for r in caplog.records if r.name == "argos_async"]
    assert [level for level in ours if level != "DEBUG"] == ["WARNING"] * 2
