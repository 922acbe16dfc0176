"""Listings end to end, over loopback HTTP against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import date

import pytest
from support import client_for, round_trip, wait_until

from argos_async import ArgosClient, PaginationError, Submission
from argos_async.testing import (
    ArgosEmulator,
    Delay,
    FaultPlan,
    RecordedRequest,
    RecordedResponse,
    RepeatKey,
)

pytestmark = pytest.mark.anyio


def list_requests(emu: ArgosEmulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.path == "/v3/submission"]


def list_responses(emu: ArgosEmulator) -> list[RecordedResponse]:
    return [r for r in emu.responses if emu.requests[r.index].path == "/v3/submission"]


async def ids_of(items: AsyncIterator[Submission]) -> list[str]:
    return [s.submission_id async for s in items]


@pytest.mark.argos_emulator(submissions=20_000, seed=7)
async def test_streams_20000_items_exactly_once_in_server_order(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = await ids_of(argos_client.iter_submissions())
    assert len(ids) == 20_000
    assert len(set(ids)) == 20_000
    assert ids == argos_emulator.dataset.expected_ids()
    requests = list_requests(argos_emulator)
    assert all(r.query["count"] == "2000" for r in requests)
    # Only the first request goes without a key; every later one continues from one.
    assert "nextpage_id" not in requests[0].query
    assert all("nextpage_id" in r.query and "nextpage_date" in r.query for r in requests[1:])


@pytest.mark.argos_emulator(submissions=3_000, seed=11)
async def test_every_filter_and_parameter_reaches_the_server_as_documented(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    email = argos_emulator.dataset.heavy_email
    userid = argos_emulator.dataset.for_email(email)[0]["userid"]
    got = await ids_of(
        argos_client.iter_submissions(
            email=email,
            userid=userid,
            start_date=date(2025, 2, 1),
            end_date="2025-11-30",
            request_type="kyc",
            page_size=7,
        )
    )
    first = list_requests(argos_emulator)[0]
    assert first.query == {
        "email": email,
        "userid": userid,
        "start_date": "2025-02-01",
        "end_date": "2025-11-30",
        "request_type": "kyc",
        "count": "7",
    }
    assert first.headers["x-api-key"] == argos_emulator.api_key
    expected = argos_emulator.dataset.expected_ids(
        email=email, userid=userid, start_date=date(2025, 2, 1), end_date=date(2025, 11, 30)
    )
    assert got == expected
    assert len(expected) > 7  # several pages were needed


@pytest.mark.argos_emulator(submissions=500, seed=3)
async def test_request_type_projects_each_item(argos_client: ArgosClient) -> None:
    subs = [s async for s in argos_client.iter_submissions(request_type="aml", max_items=200)]
    assert all(s.kyc is None and s.data is None and s.email is None for s in subs)
    assert any(s.aml is not None for s in subs)


@pytest.mark.argos_emulator(submissions=500, seed=3)
@pytest.mark.argos_client(date_format="YYYYMMDD")
async def test_compact_date_format_option(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    got = await ids_of(
        argos_client.iter_submissions(start_date="2025-03-01", end_date=date(2025, 3, 31))
    )
    query = list_requests(argos_emulator)[0].query
    assert (query["start_date"], query["end_date"]) == ("20250301", "20250331")
    assert got == argos_emulator.dataset.expected_ids(
        start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    assert got  # the window is not empty


@pytest.mark.argos_emulator(submissions=5_000, seed=5)
async def test_resume_by_cursor_continues_right_after_the_page(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    first_part: list[str] = []
    cursor = None
    async with aclosing(argos_client.iter_pages(page_size=400, start_date="2025-01-15")) as pages:
        async for page in pages:
            first_part.extend(s.submission_id for s in page.items)
            cursor = page.cursor
            if len(first_part) >= 1_200:
                break
    assert cursor is not None
    rest = await ids_of(
        argos_client.iter_submissions(page_size=999, start_date="2025-01-15", cursor=cursor)
    )
    assert first_part + rest == argos_emulator.dataset.expected_ids(start_date=date(2025, 1, 15))

    before = len(argos_emulator.requests)
    with pytest.raises(ValueError, match="other filters"):
        argos_client.iter_submissions(start_date="2025-01-16", cursor=cursor)
    assert len(argos_emulator.requests) == before


BASE_FILTERS: dict[str, object] = {"start_date": "2025-01-15"}


@pytest.mark.parametrize(
    "changed",
    [
        {"email": "someone@example.com"},
        {"userid": "user_10001"},
        {"start_date": "2025-01-16"},
        {"start_date": None},
        {"end_date": date(2025, 12, 1)},
        {"request_type": "kyc"},
    ],
    ids=["email", "userid", "start_date", "no-start_date", "end_date", "request_type"],
)
@pytest.mark.argos_emulator(submissions=1_000, seed=5)
async def test_a_cursor_is_refused_with_any_other_filter(
    changed: dict[str, object], argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    async with aclosing(argos_client.iter_pages(page_size=100, **BASE_FILTERS)) as pages:  # type: ignore[arg-type]
        cursor = (await anext(pages)).cursor
    assert cursor is not None
    before = len(argos_emulator.requests)
    filters = {**BASE_FILTERS, **changed}
    for method in (argos_client.iter_pages, argos_client.iter_submissions):
        with pytest.raises(ValueError, match="other filters"):
            method(cursor=cursor, **filters)  # type: ignore[arg-type]
    assert len(argos_emulator.requests) == before  # refused before any request
    # The same filters resume, however they are spelled and whatever the page size.
    same = {**BASE_FILTERS, "start_date": date(2025, 1, 15)}
    async with aclosing(argos_client.iter_pages(page_size=7, cursor=cursor, **same)) as pages:  # type: ignore[arg-type]
        assert len((await anext(pages)).items) == 7


@pytest.mark.argos_emulator(submissions=1_000, seed=5)
async def test_the_cursor_is_none_on_the_last_page_only(argos_client: ArgosClient) -> None:
    pages = [page async for page in argos_client.iter_pages(page_size=300)]
    assert [len(page.items) for page in pages] == [300, 300, 300, 100]
    assert [page.cursor is None for page in pages] == [False, False, False, True]
    assert pages[-1].next_key is None
    assert len({page.cursor for page in pages}) == 4


@pytest.mark.argos_emulator(submissions=3_000, seed=9, page_byte_limit=40_000)
async def test_short_pages_from_the_byte_limit(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    sizes = []
    ids: list[str] = []
    async for page in argos_client.iter_pages(page_size=2000):
        sizes.append(len(page.items))
        ids.extend(s.submission_id for s in page.items)
    assert max(sizes) < 2000  # every page was cut short by bytes, not by count
    assert len(sizes) > 10
    assert ids == argos_emulator.dataset.expected_ids()


@pytest.mark.argos_emulator(submissions=4_000, seed=4, filter_mode="scan")
async def test_empty_pages_with_a_next_key_do_not_end_the_listing(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    email = argos_emulator.dataset.heavy_email
    sizes = []
    ids: list[str] = []
    async for page in argos_client.iter_pages(email=email, page_size=50):
        sizes.append(len(page.items))
        ids.extend(s.submission_id for s in page.items)
    assert 0 in sizes[:-1]  # an empty page that still had a next key
    assert ids == argos_emulator.dataset.expected_ids(email=email)
    assert len(ids) >= 50


@pytest.mark.argos_emulator(submissions=6_000, seed=1)
async def test_max_items_stops_exactly_and_asks_for_no_more(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = await ids_of(argos_client.iter_submissions(page_size=1_000, max_items=4_321))
    assert ids == argos_emulator.dataset.expected_ids()[:4_321]
    counts = [r.query["count"] for r in list_requests(argos_emulator)]
    assert counts == ["1000"] * 4 + ["321"]


@pytest.mark.parametrize(("at", "back"), [(2, 1), (3, 2), (4, 2)])
async def test_a_repeating_page_key_raises(at: int, back: int) -> None:
    plan = FaultPlan([RepeatKey(at=at, back=back)])
    async with (
        ArgosEmulator(submissions=2_000, seed=2, faults=plan) as emu,
        client_for(emu) as argos,
    ):
        delivered: list[str | None] = []
        with pytest.raises(PaginationError) as info:
            async for page in argos.iter_pages(page_size=100):
                delivered.append(page.cursor)
        # The pages before the loop were delivered; the error says where to resume.
        assert len(delivered) == at - 1
        assert info.value.cursor == delivered[-1]
        assert len(list_requests(emu)) == at


@pytest.mark.argos_emulator(submissions=2_000, seed=6, latency=0.01)
async def test_read_ahead_requests_page_k_plus_1_while_page_k_is_consumed_never_k_plus_2(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    k = 0
    async for _page in argos_client.iter_pages(page_size=200, max_items=1_000):
        k += 1
        last = k == 5
        expected = k if last else k + 1
        # The request for page k+1 arrives while the caller still holds page k...
        await wait_until(lambda: len(list_requests(argos_emulator)) >= expected)  # noqa: B023
        # ...and nothing runs further ahead than that: once page k+1 is answered, a request
        # the client sent on it would reach the server before a round trip of our own.
        await wait_until(lambda: len(list_responses(argos_emulator)) >= expected)  # noqa: B023
        await round_trip(argos_emulator)
        assert len(list_requests(argos_emulator)) == expected
    assert k == 5


@pytest.mark.argos_emulator(submissions=1_000, seed=6, latency=0.01)
@pytest.mark.argos_client(prefetch=0)
async def test_prefetch_zero_requests_only_when_asked(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    k = 0
    async for _page in argos_client.iter_pages(page_size=250):
        k += 1
        # A read-ahead would leave as the page is handed over: before a round trip of ours.
        await round_trip(argos_emulator)
        assert len(list_requests(argos_emulator)) == k
    assert k == 4


# Leaving early. The autouse fixtures in conftest.py fail any of these tests that leaves a task
# running, an exception unretrieved or a session unclosed.

# The read-ahead request (the second list request) is held by the server for this long: far
# longer than the test may wait, so only a cancellation can end it in time.
HOLD = 5.0


@pytest.mark.parametrize("closing", [True, False], ids=["aclosing", "bare"])
@pytest.mark.parametrize("how", ["break", "exception", "cancel"])
@pytest.mark.parametrize("api", ["iter_pages", "iter_submissions"])
@pytest.mark.argos_emulator(submissions=3_000, seed=8, faults=FaultPlan([Delay(HOLD, at=2)]))
async def test_leaving_early_cancels_the_read_ahead_request_at_the_server(
    api: str, how: str, closing: bool, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:

    def listing() -> AsyncGenerator[object, None]:
        gen: AsyncGenerator[object, None] = getattr(argos_client, api)(page_size=500)
        return gen

    holding = asyncio.Event()

    async def step() -> bool:
        """The caller's work on one element; True: leave the loop with break."""
        emu = argos_emulator
        await wait_until(lambda: len(list_requests(emu)) == 2 and emu.in_flight == 1)
        holding.set()
        if how == "exception":
            raise KeyError("caller failed")
        if how == "cancel":
            await asyncio.sleep(30)  # busy until the task is cancelled
        return True

    async def consume() -> None:
        # No name holds the bare listing: once the loop is left, nothing refers to it and
        # only its finalizer can close it.
        if closing:
            async with aclosing(listing()) as elements:
                async for _ in elements:
                    if await step():
                        break
        else:
            async for _ in listing():
                if await step():
                    break

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(holding.wait(), 5)
    if how == "cancel":
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    elif how == "exception":
        with pytest.raises(KeyError):
            await task
    else:
        await task
    left = asyncio.get_running_loop().time()
    # The server sees the read-ahead request go away well before it would have answered.
    await wait_until(lambda: argos_emulator.in_flight == 0, timeout=1.0)
    assert asyncio.get_running_loop().time() - left < 1.0
    assert len(list_requests(argos_emulator)) == 2
    assert [r.index for r in argos_emulator.responses] == [0]  # the read-ahead never got an answer
