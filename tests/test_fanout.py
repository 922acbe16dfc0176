"""Batch lookups: bounded concurrency, lazy input, every key answered once, clean exits."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from support import FAST, client_for, round_trip, wait_until

from argos_async import ArgosClient, ArgosError, BatchResult, NotFoundError, Submission
from argos_async._fanout import Batch
from argos_async.testing import ArgosEmulator, Dataset, Delay, FaultPlan, RecordedRequest, Status

pytestmark = pytest.mark.anyio


LOOKUP = "/v3/submission"


def missing_id(n: int) -> str:
    return f"missing{n:09d}"


def lookups(emu: ArgosEmulator) -> list[RecordedRequest]:
    """The lookups the emulator received (not ``round_trip``'s request)."""
    return [r for r in emu.requests if r.path == LOOKUP]


def answered_lookups(emu: ArgosEmulator) -> list[int]:
    """The indexes of the lookups the emulator answered; a cancelled one has no response."""
    return [r.index for r in emu.responses if emu.requests[r.index].path == LOOKUP]


@pytest.mark.argos_emulator(submissions=9_500, seed=3, latency=0.001)
async def test_10000_ids_with_5_percent_missing_each_answered_exactly_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    real = list(argos_emulator.dataset.ids)
    ids = real + [missing_id(n) for n in range(500)]
    ids = ids[::2] + ids[1::2]  # missing ones spread through the input
    answered: dict[str, BatchResult[Submission]] = {}
    async for result in argos_client.batch_get_submissions(ids, concurrency=32):
        assert result.key not in answered
        answered[result.key] = result
    assert set(answered) == set(ids)
    assert argos_emulator.max_in_flight <= 32
    assert len(argos_emulator.requests) == 10_000
    missing = {k for k, r in answered.items() if isinstance(r.error, NotFoundError)}
    assert missing == {missing_id(n) for n in range(500)}
    for key in real:
        value = answered[key].unwrap()
        assert value.submission_id == key


@pytest.mark.argos_emulator(submissions=400, seed=3, latency=0.02)
async def test_the_server_never_sees_more_than_concurrency_requests(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = argos_emulator.dataset.ids
    results = [r async for r in argos_client.batch_get_submissions(ids, concurrency=8)]
    assert len(results) == 400
    assert argos_emulator.max_in_flight == 8  # the bound is reached, and never passed


# Every seventh lookup is slow, so results complete out of input order.
@pytest.mark.argos_emulator(
    submissions=300, seed=4, faults=FaultPlan([Delay(0.02, path=LOOKUP, at=range(0, 2_000, 7))])
)
async def test_ordered_mode_keeps_input_order_that_slow_lookups_scramble(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = [*list(reversed(argos_emulator.dataset.ids)), "not-there-at-all"]
    batch = argos_client.batch_get_submissions
    unordered = [r.key async for r in batch(ids, concurrency=16)]
    keys = [r.key async for r in batch(ids, concurrency=16, ordered=True)]
    assert sorted(unordered) == sorted(ids)
    assert unordered != ids  # so that keeping the order is something ordered mode does
    assert keys == ids


@pytest.mark.argos_emulator(submissions=50, seed=4)
async def test_repeated_keys_are_fetched_and_answered_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    a, b = argos_emulator.dataset.ids[:2]
    keys = [r.key async for r in argos_client.batch_get_submissions([a, b, a, a, b], ordered=True)]
    assert keys == [a, b]
    assert sorted(r.query["submission_id"] for r in argos_emulator.requests) == sorted([a, b])


@pytest.mark.argos_emulator(submissions=50, seed=4)
async def test_bad_keys_get_their_own_error_and_the_batch_goes_on(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    keys: list[Any] = [argos_emulator.dataset.ids[0], "", None, 7]
    results = [r async for r in argos_client.batch_get_submissions(keys, ordered=True)]
    assert results[0].ok
    assert isinstance(results[1].error, ValueError)
    assert "ids[1]" in str(results[1].error)
    assert isinstance(results[2].error, TypeError)
    assert "ids[2]" in str(results[2].error)
    assert isinstance(results[3].error, TypeError)


@pytest.mark.argos_emulator(submissions=2_000, seed=5, latency=0.05)
async def test_fail_fast_raises_the_first_error_and_cancels_the_rest(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = [missing_id(0), *argos_emulator.dataset.ids]
    with pytest.raises(NotFoundError, match="missing"):
        async for _ in argos_client.batch_get_submissions(ids, concurrency=4, fail_fast=True):
            pass
    seen = len(argos_emulator.requests)
    await wait_until(lambda: argos_emulator.in_flight == 0)  # the requests in flight were cancelled
    # Anything the batch still had going would reach the server before this is answered.
    await round_trip(argos_emulator)
    assert len(lookups(argos_emulator)) == seen  # and nothing more was sent
    assert seen < 20


@pytest.mark.argos_emulator(submissions=1_000, seed=6)
async def test_an_async_input_is_read_lazily(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    pulled = 0

    async def ids_from_a_queue(ids: list[str]) -> AsyncIterator[str]:
        nonlocal pulled
        for submission_id in ids:
            pulled += 1
            yield submission_id

    ids = list(argos_emulator.dataset.ids)
    for ordered in (False, True):
        pulled = 0
        consumed = 0
        batch = argos_client.batch_get_submissions(
            ids_from_a_queue(ids),
            concurrency=8,
            buffer=4,
            ordered=ordered,
        )
        async with batch as results:
            async for _ in results:
                consumed += 1
                await asyncio.sleep(0.001)  # a slow consumer
                assert pulled <= consumed + 8 + 4 + 1
        assert consumed == 1_000


async def test_break_cancels_in_flight_requests_and_leaves_nothing_behind() -> None:
    latency, concurrency = 0.2, 16
    async with (
        ArgosEmulator(submissions=500, seed=7, latency=latency) as emu,
        client_for(emu, FAST) as argos,
    ):
        stream = aiter(argos.batch_get_submissions(emu.dataset.ids, concurrency=concurrency))
        finalized = weakref.ref(stream)
        async for _ in stream:
            break
        # A plain loop is cleaned up when the iterator is finalized, a moment after the
        # loop dropped it: each worker may start one more lookup before that, none after.
        del stream
        await wait_until(lambda: finalized() is None, timeout=1.0)
        await wait_until(lambda: emu.in_flight == 0)
        await round_trip(emu)  # what was sent before the finalizer ran has arrived
        # Cancelled: only the first lookups, ending as the loop broke off, were answered;
        # each one started after them would have run for 0.2 s.
        assert all(index < concurrency for index in answered_lookups(emu))
        sent = len(lookups(emu))
        assert sent <= concurrency * 2
        before = len(emu.requests)
        async with argos.batch_get_submissions(emu.dataset.ids, concurrency=concurrency) as results:
            async for _ in results:
                break
        # Released when the block ended: the server sees the requests go, and none started
        # after this batch's first lookups got an answer.
        await wait_until(lambda: emu.in_flight == 0)
        first = range(before, before + concurrency)
        assert all(index < concurrency or index in first for index in answered_lookups(emu))
        await round_trip(emu)
        assert len(lookups(emu)) <= sent + concurrency * 2  # and nothing was sent after that


@pytest.mark.argos_emulator(submissions=200, seed=7, latency=0.05)
async def test_an_error_in_the_callers_loop_cleans_up(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = argos_emulator.dataset.ids
    with pytest.raises(ZeroDivisionError):
        async with argos_client.batch_get_submissions(ids, concurrency=16) as results:
            async for _ in results:
                _ = 1 / 0
    # The server sees the requests go, cancelled: only the first lookups, one a worker and
    # ending as the error came, were answered; each one started after would take 0.05 s.
    await wait_until(lambda: argos_emulator.in_flight == 0)
    assert all(r.index < 16 for r in argos_emulator.responses)


@pytest.mark.argos_emulator(submissions=20, seed=7)
async def test_the_inputs_own_exception_surfaces_as_itself(argos_client: ArgosClient) -> None:
    async def broken() -> AsyncIterator[str]:
        yield "abc"
        raise LookupError("the queue went away")

    with pytest.raises(LookupError, match="queue went away"):
        async for _ in argos_client.batch_get_submissions(broken()):
            pass


@pytest.mark.argos_emulator(submissions=20_000, seed=8, page_byte_limit=60_000)
async def test_batch_by_email_follows_pagination_per_address(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    dataset = argos_emulator.dataset
    heavy = dataset.heavy_email
    light = dataset.items[0]["email"]
    nobody = "nobody@example.org"
    results = {
        r.key: r.unwrap()
        async for r in argos_client.batch_get_by_email(
            [heavy, light, nobody], concurrency=2, page_size=150
        )
    }
    assert argos_emulator.max_in_flight <= 2
    assert [s.submission_id for s in results[heavy]] == dataset.expected_ids(email=heavy)
    assert len(results[heavy]) >= 400  # many pages for one address
    assert [s.submission_id for s in results[light]] == dataset.expected_ids(email=light)
    assert results[nobody] == []


@pytest.mark.argos_emulator(submissions=2_000, seed=9)
async def test_batch_applicants(argos_emulator: ArgosEmulator, argos_client: ArgosClient) -> None:
    shared = argos_emulator.dataset.shared_applicant_ids[:5]
    results = {r.key: r.unwrap() async for r in argos_client.batch_get_applicants(shared)}
    for applicant_id in shared:
        expected = [e["submission_id"] for e in argos_emulator.dataset.for_applicant(applicant_id)]
        assert [a.submission_id for a in results[applicant_id]] == expected


@pytest.mark.argos_emulator(
    submissions=300, seed=9, faults=FaultPlan([Status(503, path=LOOKUP, probability=0.2)], seed=2)
)
async def test_transient_faults_are_retried_inside_a_batch(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    # The draws are seeded, but which lookup meets which depends on timing: with the
    # default 5 retries, one of 300 keys meets six 503s in a row about once in 50 runs.
    results = [
        r
        async for r in argos_client.with_options(max_retries=20).batch_get_submissions(
            argos_emulator.dataset.ids
        )
    ]
    faulted = sum(r.fault is not None for r in argos_emulator.responses)
    retries = argos_client.stats.retries
    assert all(r.ok for r in results)
    assert len(results) == 300
    assert retries == faulted > 30


async def test_result_repr_masks_email_keys() -> None:
    result: BatchResult[list[Submission]] = BatchResult("ana.silva@example.com", [])
    assert "ana.silva" not in repr(result)
    assert "a***@example.com" in repr(result)


@pytest.mark.argos_emulator(submissions=5, seed=1)
async def test_a_batch_is_iterated_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    batch = argos_client.batch_get_submissions(argos_emulator.dataset.ids)
    assert [r async for r in batch]
    with pytest.raises(RuntimeError, match="only once"):
        batch.__aiter__()


async def test_200000_keys_keep_about_concurrency_tasks_alive() -> None:
    # The fan-out machinery alone, with a trivial lookup, so that the input can be large.
    async def lookup(key: str) -> str:
        await asyncio.sleep(0)
        return key

    def keys() -> AsyncIterator[str] | list[str]:
        return (f"id{n}" for n in range(200_000))  # type: ignore[return-value]

    batch = Batch(
        keys(),
        lookup,
        argument="ids",
        concurrency=32,
        buffer=32,
        ordered=False,
        fail_fast=False,
        dedupe=False,
    )
    most_tasks = 0
    count = 0
    async with aclosing(batch.__aiter__()) as results:
        async for _ in results:
            count += 1
            if count % 1_000 == 0:
                most_tasks = max(most_tasks, len(asyncio.all_tasks()))
    assert count == 200_000
    # 32 workers, the runner, the test's own task and anyio's runner task.
    assert most_tasks <= 32 + 4


def batch_of(
    keys: list[str],
    lookup: Callable[[str], Awaitable[str]],
    *,
    concurrency: int = 16,
    buffer: int = 16,
    ordered: bool = False,
    fail_fast: bool = False,
) -> Batch[str]:
    """The fan-out machinery alone, around a fake lookup."""
    return Batch(
        keys,
        lookup,
        argument="ids",
        concurrency=concurrency,
        buffer=buffer,
        ordered=ordered,
        fail_fast=fail_fast,
        dedupe=True,
    )


async def test_lookups_of_varying_latency_come_in_input_order_only_when_ordered() -> None:
    async def lookup(key: str) -> str:
        await asyncio.sleep((15 - int(key) % 16) / 1000)
        return key

    keys = [str(n) for n in range(64)]
    unordered = [r async for r in batch_of(keys, lookup)]
    ordered = [r async for r in batch_of(keys, lookup, ordered=True)]
    assert sorted(r.key for r in unordered) == sorted(keys)
    assert [r.key for r in unordered] != keys
    assert [r.key for r in ordered] == keys
    assert all(r.value == r.key for r in ordered)


@pytest.mark.parametrize(("concurrency", "buffer"), [(8, 4), (4, 16), (4, 0)])
async def test_a_slow_first_key_holds_at_most_buffer_finished_results(
    concurrency: int, buffer: int
) -> None:
    started = finished = delivered = 0
    slow_done = False
    most_held = most_held_behind = most_ahead = most_in_flight = 0

    def watch() -> None:
        nonlocal most_held, most_held_behind, most_ahead, most_in_flight
        most_held = max(most_held, finished - delivered)
        if not slow_done:
            most_held_behind = max(most_held_behind, finished - delivered)
        most_ahead = max(most_ahead, started - delivered)
        most_in_flight = max(most_in_flight, started - finished)

    async def lookup(key: str) -> str:
        nonlocal started, finished, slow_done
        started += 1
        watch()
        if key == "0":
            await asyncio.sleep(0.05)  # the slow first key
            slow_done = True
        else:
            await asyncio.sleep(0)
        finished += 1
        watch()
        return key

    keys = [str(n) for n in range(60)]
    got = []
    batch = batch_of(keys, lookup, concurrency=concurrency, buffer=buffer, ordered=True)
    async with batch as results:
        async for result in results:
            delivered += 1
            got.append(result.key)
    assert got == keys
    # Reached behind the slow key, and never passed: the documented bound.
    assert most_held_behind == buffer
    # Once the slow key is done too, it is delivered next, at once.
    assert most_held <= buffer + 1
    assert most_ahead <= buffer + 1
    assert most_in_flight <= concurrency


def failing_at(fast: set[int], slow: set[int]) -> Callable[[str], Awaitable[str]]:
    """A lookup whose keys in ``fast`` fail at once, in ``slow`` fail after 30 ms; the others
    succeed after 10 ms."""

    async def lookup(key: str) -> str:
        n = int(key)
        if n in fast:
            raise ArgosError(f"failed {key}")
        await asyncio.sleep(0.03 if n in slow else 0.01)
        if n in slow:
            raise ArgosError(f"failed {key}")
        return key

    return lookup


async def test_ordered_fail_fast_raises_the_first_error_in_input_order_at_its_turn() -> None:
    keys = [str(n) for n in range(12)]
    got: list[str] = []
    # A later key fails first: the keys before it are still answered, then its error.
    with pytest.raises(ArgosError, match="failed 7"):
        async for result in batch_of(keys, failing_at({7}, set()), ordered=True, fail_fast=True):
            got.append(result.key)
    assert got == [str(n) for n in range(7)]

    # Two errors: the earlier one in input order wins, though it arrives last.
    got.clear()
    with pytest.raises(ArgosError, match="failed 2"):
        lookup = failing_at({7}, {2})
        async for result in batch_of(keys, lookup, ordered=True, fail_fast=True):
            got.append(result.key)
    assert got == ["0", "1"]

    # Unordered, the first error to arrive is raised, before anything slower.
    got.clear()
    with pytest.raises(ArgosError, match="failed 7"):
        async for result in batch_of(keys, failing_at({7}, {2}), fail_fast=True):
            got.append(result.key)
    assert got == []


@pytest.mark.argos_emulator(submissions=300, seed=7, latency=0.005)
async def test_cancelling_a_batch_through_an_anyio_scope_leaves_nothing_behind(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    # As Starlette cancels a request handler: the scope cancels the caller while requests are
    # in flight and results wait; the autouse fixtures fail the test on any leaked task or
    # unretrieved exception.
    ids = argos_emulator.dataset.ids
    for attempt in range(10):
        for ordered in (False, True):
            with anyio.move_on_after(attempt * 0.004) as scope:
                batch = argos_client.batch_get_submissions(ids, concurrency=8, ordered=ordered)
                async with batch as results:
                    async for _ in results:
                        await asyncio.sleep(0)
            assert scope.cancelled_caught  # each attempt was cut off mid-batch
    await wait_until(lambda: argos_emulator.in_flight == 0, timeout=1.0)


async def test_an_address_with_3000_submissions_comes_back_whole_in_two_pages() -> None:
    emu = ArgosEmulator(submissions=5_000, seed=8, page_byte_limit=None)
    # An emulator's own data set gives its heavy address n // 50 submissions: 3,000 of them
    # in a small data set keeps it quick to build.
    emu.dataset = Dataset.generate(5_000, 8, heavy=3_000)
    heavy = emu.dataset.heavy_email
    async with emu, client_for(emu, FAST) as argos:
        results = [
            r.unwrap()
            async for r in argos.batch_get_by_email([heavy, "nobody@example.org"], ordered=True)
        ]
        asked = [r.query for r in emu.requests if r.query.get("email") == heavy]
    expected = emu.dataset.expected_ids(email=heavy)
    assert len(expected) == 3_000
    assert [s.submission_id for s in results[0]] == expected  # all of them, in server order
    assert results[1] == []
    assert len(asked) == 2
    assert {q["count"] for q in asked} == {"2000"}


@pytest.mark.argos_emulator(submissions=50, seed=4)
@pytest.mark.parametrize("kind", ["plain", "async"])
async def test_a_long_run_of_repeated_keys_lets_other_tasks_run(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient, kind: str
) -> None:
    a, b = argos_emulator.dataset.ids[:2]
    ticks = 0
    ticks_seen: list[int] = []

    def repeats() -> Iterator[str]:
        yield a
        for n in range(50_000):
            if n % 1_000 == 0:
                ticks_seen.append(ticks)
            yield a
        yield b

    async def async_repeats() -> AsyncIterator[str]:
        for key in repeats():
            yield key

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    keys = repeats() if kind == "plain" else async_repeats()
    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        results = [r.key async for r in argos_client.batch_get_submissions(keys, concurrency=2)]
        group.cancel_scope.cancel()
    assert sorted(results) == sorted([a, b])
    # The other task ran while the repeats were being skipped, not only before and after.
    assert len(set(ticks_seen)) > 1, ticks_seen
