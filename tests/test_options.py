"""``with_options``: a view of a client with other options that shares everything else."""

from __future__ import annotations

import asyncio
import time

import pytest

from argos_async import (
    APITimeoutError,
    ArgosClient,
    RateLimitError,
    RequestOptions,
    ServerError,
)
from argos_async.testing import ArgosEmulator, Delay, FaultPlan, Status

pytestmark = pytest.mark.anyio

PATH = "/v3/submission"


async def test_a_view_changes_only_what_it_is_given() -> None:
    async with ArgosClient(api_key="k", base_url="http://127.0.0.1:9", max_retries=3) as argos:
        view = argos.with_options(deadline=2.0)
        assert view.options == RequestOptions(max_retries=3, deadline=2.0)
        assert argos.options == RequestOptions(max_retries=3)  # the client is untouched
        # A view of a view, and None to remove a deadline.
        again = view.with_options(deadline=None, prefetch=0)
        assert again.options == RequestOptions(max_retries=3, prefetch=0)
        assert repr(view) == repr(argos)
        assert "k" not in repr(view).replace(argos.base_url, "")


async def test_a_views_options_apply_to_its_calls() -> None:
    plan = FaultPlan([Delay(2.0, at=1, path=PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url, timeout=60) as argos:
            started = time.monotonic()
            sub = await argos.with_options(timeout=0.2).get_submission(emu.dataset.ids[0])
            assert time.monotonic() - started < 1.0  # the first attempt gave up after 0.2 s
        assert sub.submission_id == emu.dataset.ids[0]
        assert len(emu.requests) == 2


async def test_views_share_stats_and_the_pool() -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        argos = ArgosClient(api_key=emu.api_key, base_url=emu.url)
        async with argos:
            view = argos.with_options(max_retries=0)
            async with view:  # a view does not own the pool: leaving it closes nothing
                await view.get_submission(emu.dataset.ids[0])
            await argos.get_submission(emu.dataset.ids[1])
            await view.get_submission(emu.dataset.ids[2])
            assert argos.stats.requests == view.stats.requests == 3
        # Closing the client closes the pool for every view.
        with pytest.raises(RuntimeError, match="closed"):
            await view.get_submission(emu.dataset.ids[0])


async def test_a_429_through_a_view_pauses_the_client_and_its_other_views() -> None:
    plan = FaultPlan([Status(429, retry_after=0.5, at=1, path=PATH)])
    async with ArgosEmulator(submissions=20, seed=1, faults=plan) as emu:
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            with pytest.raises(RateLimitError):
                await argos.with_options(max_retries=0).get_submission(emu.dataset.ids[0])
            other = argos.with_options(timeout=30)
            await asyncio.gather(
                argos.get_submission(emu.dataset.ids[1]),
                other.get_submission(emu.dataset.ids[2]),
            )
        limited = emu.responses[0]
        assert all(r.received_at >= limited.sent_at + 0.5 for r in emu.requests[1:])


async def test_views_spend_one_retry_budget() -> None:
    plan = FaultPlan([Status(503, path=PATH)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        ArgosClient(
            api_key=emu.api_key, base_url=emu.url, retry_budget=10, backoff_base=0.001
        ) as argos,
    ):
        with pytest.raises(ServerError) as first:
            await argos.with_options(max_retries=5).get_submission(emu.dataset.ids[0])
        with pytest.raises(ServerError) as second:
            await argos.get_submission(emu.dataset.ids[1])
    assert (first.value.attempts, second.value.attempts) == (3, 1)


async def test_views_share_one_rate_limiter() -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        async with ArgosClient(
            api_key=emu.api_key, base_url=emu.url, max_requests_per_second=20
        ) as argos:
            views = [argos, argos.with_options(deadline=30), argos.with_options(max_retries=1)]
            await asyncio.gather(
                *(views[n % 3].get_submission(emu.dataset.ids[n]) for n in range(10))
            )
        arrivals = sorted(r.received_at for r in emu.requests)
    assert arrivals[-1] - arrivals[0] >= 9 / 20 * 0.95


async def test_a_views_deadline_ends_a_call() -> None:
    plan = FaultPlan([Delay(5.0, path=PATH)])
    async with (
        ArgosEmulator(submissions=20, seed=1, faults=plan) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        with pytest.raises(APITimeoutError, match=r"deadline of 0\.3 s"):
            await argos.with_options(deadline=0.3).get_submission(emu.dataset.ids[0])
