"""``with_options``: a view of a client with other options that shares everything else."""

from __future__ import annotations

import asyncio
import time

import pytest
from support import client_for

from argos_async import (
    APITimeoutError,
    ArgosClient,
    RateLimitError,
    RequestOptions,
    ServerError,
)
from argos_async.testing import ArgosEmulator, Delay, FaultPlan, Status

pytestmark = [pytest.mark.anyio, pytest.mark.argos_emulator(submissions=20, seed=1)]

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


@pytest.mark.argos_emulator(faults=FaultPlan([Delay(2.0, at=1, path=PATH)]))
@pytest.mark.argos_client(timeout=60)
async def test_a_views_options_apply_to_its_calls(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    started = time.monotonic()
    sub = await argos_client.with_options(timeout=0.2).get_submission(argos_emulator.dataset.ids[0])
    # The first attempt gave up after 0.2 s; without the view's timeout it would take 2 s.
    assert time.monotonic() - started < 1.0
    assert sub.submission_id == argos_emulator.dataset.ids[0]
    assert len(argos_emulator.requests) == 2


async def test_views_share_stats_and_the_pool() -> None:
    async with ArgosEmulator(submissions=20, seed=1) as emu:
        argos = client_for(emu)
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


@pytest.mark.argos_emulator(faults=FaultPlan([Status(429, retry_after=0.5, at=1, path=PATH)]))
async def test_a_429_through_a_view_pauses_the_client_and_its_other_views(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = argos_emulator.dataset.ids
    with pytest.raises(RateLimitError):
        await argos_client.with_options(max_retries=0).get_submission(ids[0])
    other = argos_client.with_options(timeout=30)
    await asyncio.gather(argos_client.get_submission(ids[1]), other.get_submission(ids[2]))
    limited = argos_emulator.responses[0]
    assert all(r.received_at >= limited.sent_at + 0.5 for r in argos_emulator.requests[1:])


@pytest.mark.argos_emulator(faults=FaultPlan([Status(503, path=PATH)]))
@pytest.mark.argos_client(retry_budget=10)
async def test_views_spend_one_retry_budget(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    with pytest.raises(ServerError) as first:
        await argos_client.with_options(max_retries=5).get_submission(argos_emulator.dataset.ids[0])
    with pytest.raises(ServerError) as second:
        await argos_client.get_submission(argos_emulator.dataset.ids[1])
    assert (first.value.attempts, second.value.attempts) == (3, 1)


@pytest.mark.argos_client(max_requests_per_second=20)
async def test_views_share_one_rate_limiter(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    views = [
        argos_client,
        argos_client.with_options(deadline=30),
        argos_client.with_options(max_retries=1),
    ]
    ids = argos_emulator.dataset.ids
    await asyncio.gather(*(views[n % 3].get_submission(ids[n]) for n in range(10)))
    arrivals = sorted(r.received_at for r in argos_emulator.requests)
    assert arrivals[-1] - arrivals[0] >= 9 / 20 * 0.95


@pytest.mark.argos_emulator(faults=FaultPlan([Delay(5.0, path=PATH)]))
async def test_a_views_deadline_ends_a_call(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    with pytest.raises(APITimeoutError, match=r"deadline of 0\.3 s"):
        await argos_client.with_options(deadline=0.3).get_submission(argos_emulator.dataset.ids[0])


@pytest.mark.argos_emulator(submissions=300, seed=2)
async def test_a_batch_validates_its_options_once_however_many_keys_follow(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argos_async._protocol import checks

    validated: list[str] = []
    for name in ("check_seconds", "check_optional_seconds", "check_int", "check_request_type"):
        real = getattr(checks, name)

        def spy(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            validated.append(_name)
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(checks, name, spy)
    real_replace = RequestOptions.replace

    def replace(self: RequestOptions, **changes: object) -> RequestOptions:
        validated.append("RequestOptions.replace")
        return real_replace(self, **changes)

    monkeypatch.setattr(RequestOptions, "replace", replace)
    view = argos_client.with_options(deadline=30.0, max_retries=2)
    batch = view.batch_get_submissions(argos_emulator.dataset.ids, concurrency=8)
    before = len(validated)
    assert before > 0  # the batch's own arguments were checked when it was made
    found = sum([r.ok async for r in batch])
    assert found == 300
    assert len(validated) == before  # and nothing per key: not the options, not request_type
