"""Retries, Retry-After, the shared 429 gate, deadlines and budgets, against a faulty emulator.

Delays are kept short (``backoff_base`` of milliseconds, Retry-After of about a second) so
that the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest

from argos_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ArgosClient,
    AuthenticationError,
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

FAST: dict[str, Any] = {"backoff_base": 0.001, "backoff_max": 0.01}
ANY_PATH = "/v3/submission"


def client_for(emu: ArgosEmulator, **options: Any) -> ArgosClient:
    return ArgosClient(api_key=emu.api_key, base_url=emu.url, **{**FAST, **options})


async def test_mixed_faults_over_50000_items_deliver_every_item_once_in_order() -> None:
    plan = FaultPlan.mixed(0.2, seed=5)
    async with (
        ArgosEmulator(submissions=50_000, seed=5, faults=plan) as emu,
        client_for(emu, max_retries=8) as argos,
    ):
        ids = [s.submission_id async for s in argos.iter_submissions(page_size=500)]
        assert ids == emu.dataset.expected_ids()
        faulted = [r for r in emu.responses if r.fault is not None]
        assert len(faulted) >= 0.1 * len(emu.responses)
        kinds = {r.fault for r in faulted}
        assert len(kinds) >= 1
        statuses = {r.status for r in faulted}
        assert {429, 500, 502, 503, 504} & statuses
        assert 200 in statuses  # the cut-off and truncated bodies came with a 200


@pytest.mark.parametrize("http_date", [False, True], ids=["seconds", "http-date"])
async def test_retry_after_is_never_shortened(http_date: bool) -> None:
    plan = FaultPlan([Status(429, retry_after=1, http_date=http_date, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu) as argos:
            sub = await argos.get_submission(emu.dataset.ids[0])
        assert sub.submission_id == emu.dataset.ids[0]
        limited, retried = emu.responses[0], emu.requests[1]
        assert limited.status == 429
        # An HTTP-date has one-second resolution: the emulator rounds it up, never down.
        assert retried.received_at - limited.sent_at >= (0.98 if http_date else 1.0)


async def test_retry_after_is_honoured_on_every_attempt_without_jitter() -> None:
    plan = FaultPlan([Status(429, retry_after=0.3, at={1, 2, 3}, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, backoff_base=5.0) as argos:
            await argos.get_submission(emu.dataset.ids[0])
        gaps = [emu.requests[i + 1].received_at - emu.responses[i].sent_at for i in range(3)]
        assert all(0.3 <= gap < 2.0 for gap in gaps), gaps


async def test_forbidden_fails_at_once_without_retrying() -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        async with ArgosClient(api_key="wrong", base_url=emu.url, **FAST) as argos:
            with pytest.raises(AuthenticationError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.attempts == 1


async def test_daily_quota_is_not_retried_and_says_when_it_resets() -> None:
    plan = FaultPlan([QuotaExceeded(path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu) as argos:
            with pytest.raises(QuotaExceededError, match=r"resets at .* 00:00 UTC") as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 86_400


async def test_server_errors_are_retried_until_max_retries_then_raised_with_attempts() -> None:
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, max_retries=3) as argos:
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
        async with client_for(emu) as argos:
            sub = await argos.get_submission(emu.dataset.ids[3])
        assert sub.submission_id == emu.dataset.ids[3]
        assert len(emu.requests) == 2


async def test_a_timed_out_attempt_is_retried() -> None:
    plan = FaultPlan([Delay(2.0, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu, timeout=0.2) as argos:
            sub = await argos.get_submission(emu.dataset.ids[0])
        assert sub.submission_id == emu.dataset.ids[0]
        assert len(emu.requests) == 2


@pytest.mark.parametrize("fault", [Delay(5.0, path=ANY_PATH), Status(503, path=ANY_PATH)])
async def test_the_deadline_bounds_the_whole_call_within_ten_percent(fault: Any) -> None:
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=FaultPlan([fault])) as emu,
        client_for(emu, backoff_base=0.05, backoff_max=0.2, max_retries=100) as argos,
    ):
        started = time.monotonic()
        with pytest.raises((APITimeoutError, ServerError)):
            await argos.get_submission(emu.dataset.ids[0], deadline=1.0)
        elapsed = time.monotonic() - started
    assert elapsed <= 1.1


async def test_a_slow_server_ends_the_call_with_a_timeout_error_naming_the_deadline() -> None:
    plan = FaultPlan([Delay(5.0, path=ANY_PATH)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        client_for(emu, deadline=0.5) as argos,
    ):
        with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s"):
            await argos.get_submission(emu.dataset.ids[0])


async def test_retry_after_beyond_the_cap_fails_at_once() -> None:
    plan = FaultPlan([Status(429, retry_after=120, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu) as argos:
            started = time.monotonic()
            with pytest.raises(RateLimitError) as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert len(emu.requests) == 1
    assert info.value.retry_after == 120
    assert time.monotonic() - started < 1.0


async def test_retry_after_beyond_the_deadline_fails_at_once() -> None:
    plan = FaultPlan([Status(429, retry_after=5, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with client_for(emu) as argos:
            with pytest.raises(RateLimitError) as info:
                await argos.get_submission(emu.dataset.ids[0], deadline=2.0)
        assert len(emu.requests) == 1
    assert info.value.retry_after == 5


async def test_one_429_pauses_every_concurrent_request_of_the_client() -> None:
    plan = FaultPlan([Status(429, retry_after=1, at=1, path=ANY_PATH)])
    async with ArgosEmulator(submissions=200, seed=1, faults=plan, latency=0.02) as emu:
        ids = list(emu.dataset.ids[:32])
        async with client_for(emu) as argos:

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
            if limited.sent_at + 0.05 < r.received_at < limited.sent_at + 1.0
        ]
        assert during == []
        assert any(r.received_at >= limited.sent_at + 1.0 for r in emu.requests)


async def test_the_retry_budget_is_shared_and_stops_retries_when_spent() -> None:
    plan = FaultPlan([Status(503, path=ANY_PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        # 10 tokens: two retries at 5 each, for the whole client.
        async with client_for(emu, retry_budget=10, max_retries=5) as argos:
            with pytest.raises(ServerError) as first:
                await argos.get_submission(emu.dataset.ids[0])
            with pytest.raises(ServerError) as second:
                await argos.get_submission(emu.dataset.ids[1])
        assert len(emu.requests) == 4
    assert (first.value.attempts, second.value.attempts) == (3, 1)


async def test_client_side_rate_limit_spaces_requests() -> None:
    async with ArgosEmulator(submissions=50, seed=1) as emu:
        async with client_for(emu, max_requests_per_second=20) as argos:
            await asyncio.gather(*(argos.get_submission(i) for i in emu.dataset.ids[:11]))
        arrivals = sorted(r.received_at for r in emu.requests)
    assert arrivals[-1] - arrivals[0] >= 10 / 20 * 0.95


async def test_a_page_too_large_is_asked_for_again_with_half_the_count() -> None:
    async with ArgosEmulator(
        submissions=3_000, seed=2, page_byte_limit=None, response_byte_limit=150_000
    ) as emu:
        async with client_for(emu) as argos:
            ids = [s.submission_id async for s in argos.iter_submissions(page_size=2000)]
        assert ids == emu.dataset.expected_ids()
        counts = [int(r.query["count"]) for r in emu.requests]
        assert counts[:3] == [2000, 1000, 500]
        statuses = [r.status for r in emu.responses]
        # Once a size fits, the listing keeps it: no 413 after the first page that fitted.
        first_ok = statuses.index(200)
        assert 413 not in statuses[first_ok:]


async def test_a_single_item_too_large_still_fails() -> None:
    async with ArgosEmulator(
        submissions=100, seed=2, page_byte_limit=None, response_byte_limit=100
    ) as emu:
        async with client_for(emu) as argos:
            with pytest.raises(PayloadTooLargeError):
                async for _ in argos.iter_submissions(page_size=8):
                    pass
        assert [r.query["count"] for r in emu.requests] == ["8", "4", "2", "1"]


async def test_a_redirect_to_another_host_is_not_followed_and_the_key_stays_home() -> None:
    async with ArgosEmulator(submissions=10, seed=1) as elsewhere:
        plan = FaultPlan([Redirect(elsewhere.url, path=ANY_PATH)])
        async with (
            ArgosEmulator(submissions=10, seed=1, faults=plan) as emu,
            client_for(emu) as argos,
        ):
            with pytest.raises(APIStatusError, match="redirect") as info:
                await argos.get_submission(emu.dataset.ids[0])
        assert elsewhere.requests == []  # the other host never saw the key, nor anything
    assert info.value.status == 307
    assert emu.api_key not in str(info.value)


async def test_an_oversized_response_is_refused_not_retried() -> None:
    async with ArgosEmulator(submissions=500, seed=1) as emu:
        async with client_for(emu, max_response_bytes=10_000) as argos:
            with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
                async for _ in argos.iter_submissions(page_size=500):
                    pass
        assert len(emu.requests) == 1


async def test_an_error_mid_listing_carries_the_cursor_to_resume_from() -> None:
    plan = FaultPlan([Status(500, at={3, 4})])
    async with ArgosEmulator(submissions=1_000, seed=3, faults=plan) as emu:
        pages = []
        async with client_for(emu, max_retries=1) as argos:
            with pytest.raises(ServerError) as info:
                async for page in argos.iter_pages(page_size=100, prefetch=0):
                    pages.append(page)
        assert len(pages) == 2
        assert info.value.cursor == pages[-1].cursor
        assert info.value.attempts == 2
        # Resuming from it, once the server has recovered, gives exactly the rest.
        async with client_for(emu) as argos:
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
        async with client_for(emu, max_retries=10) as argos:
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
        r"\(attempt \d+, request id [\w-]+\)"
    )
    assert debug
    assert all(request_line.fullmatch(line) for line in debug), debug[:3]
    assert any("attempt 2" in line for line in debug)
    # Every retry says why and how long it waits.
    assert warnings
    assert all(re.search(r"; retry \d+ of 10 in [\d.]+ s$", line) for line in warnings)
    assert any("503" in line for line in warnings)
    assert emu.api_key not in text
    assert email not in text
    assert f"'{userid}'" not in text
    for found in re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text):
        assert re.fullmatch(r"\w\*\*\*@.+", found), found
    assert "Items" not in text  # never a body


async def test_connection_errors_name_no_personal_data() -> None:
    plan = FaultPlan([DropConnection(path=ANY_PATH)])
    async with ArgosEmulator(submissions=100, seed=1, faults=plan) as emu:
        email = emu.dataset.heavy_email
        async with client_for(emu, max_retries=1) as argos:
            with pytest.raises(APIConnectionError) as info:
                async for _ in argos.iter_submissions(email=email):
                    pass
    assert email not in str(info.value)
    assert info.value.attempts == 2
