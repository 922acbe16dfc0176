"""Listings end to end, over loopback HTTP against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import date

import pytest
from support import wait_until

from argos_async import ArgosClient, PaginationError, Submission
from argos_async.testing import ArgosEmulator, FaultPlan, RecordedRequest, RepeatKey

pytestmark = pytest.mark.anyio


def list_requests(emu: ArgosEmulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.path == "/v3/submission"]


async def ids_of(items: AsyncIterator[Submission]) -> list[str]:
    return [s.submission_id async for s in items]


async def test_streams_20000_items_exactly_once_in_server_order() -> None:
    async with (
        ArgosEmulator(submissions=20_000, seed=7) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        ids = await ids_of(argos.iter_submissions())
        assert len(ids) == 20_000
        assert len(set(ids)) == 20_000
        assert ids == emu.dataset.expected_ids()
        requests = list_requests(emu)
        assert all(r.query["count"] == "2000" for r in requests)
        # Only the first request goes without a key; every later one continues from one.
        assert "nextpage_id" not in requests[0].query
        assert all("nextpage_id" in r.query and "nextpage_date" in r.query for r in requests[1:])


async def test_every_filter_and_parameter_reaches_the_server_as_documented() -> None:
    async with ArgosEmulator(submissions=3_000, seed=11) as emu:
        email = emu.dataset.heavy_email
        userid = emu.dataset.for_email(email)[0]["userid"]
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            got = await ids_of(
                argos.iter_submissions(
                    email=email,
                    userid=userid,
                    start_date=date(2025, 2, 1),
                    end_date="2025-11-30",
                    request_type="kyc",
                    page_size=7,
                )
            )
        first = list_requests(emu)[0]
        assert first.query == {
            "email": email,
            "userid": userid,
            "start_date": "2025-02-01",
            "end_date": "2025-11-30",
            "request_type": "kyc",
            "count": "7",
        }
        assert first.headers["x-api-key"] == emu.api_key
        expected = emu.dataset.expected_ids(
            email=email, userid=userid, start_date=date(2025, 2, 1), end_date=date(2025, 11, 30)
        )
        assert got == expected
        assert len(expected) > 7  # several pages were needed


async def test_request_type_projects_each_item() -> None:
    async with (
        ArgosEmulator(submissions=500, seed=3) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        subs = [s async for s in argos.iter_submissions(request_type="aml", max_items=200)]
        assert all(s.kyc is None and s.data is None and s.email is None for s in subs)
        assert any(s.aml is not None for s in subs)


async def test_compact_date_format_option() -> None:
    async with ArgosEmulator(submissions=500, seed=3) as emu:
        async with ArgosClient(
            api_key=emu.api_key, base_url=emu.url, date_format="YYYYMMDD"
        ) as argos:
            got = await ids_of(
                argos.iter_submissions(start_date="2025-03-01", end_date=date(2025, 3, 31))
            )
        query = list_requests(emu)[0].query
        assert (query["start_date"], query["end_date"]) == ("20250301", "20250331")
        assert got == emu.dataset.expected_ids(
            start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
        )
        assert got  # the window is not empty


async def test_resume_by_cursor_continues_right_after_the_page() -> None:
    async with (
        ArgosEmulator(submissions=5_000, seed=5) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        first_part: list[str] = []
        cursor = None
        async with aclosing(argos.iter_pages(page_size=400, start_date="2025-01-15")) as pages:
            async for page in pages:
                first_part.extend(s.submission_id for s in page.items)
                cursor = page.cursor
                if len(first_part) >= 1_200:
                    break
        assert cursor is not None
        rest = await ids_of(
            argos.iter_submissions(page_size=999, start_date="2025-01-15", cursor=cursor)
        )
        assert first_part + rest == emu.dataset.expected_ids(start_date=date(2025, 1, 15))

        before = len(emu.requests)
        with pytest.raises(ValueError, match="other filters"):
            argos.iter_submissions(start_date="2025-01-16", cursor=cursor)
        assert len(emu.requests) == before


async def test_short_pages_from_the_byte_limit() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=9, page_byte_limit=40_000) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        sizes = []
        ids: list[str] = []
        async for page in argos.iter_pages(page_size=2000):
            sizes.append(len(page.items))
            ids.extend(s.submission_id for s in page.items)
        assert max(sizes) < 2000  # every page was cut short by bytes, not by count
        assert len(sizes) > 10
        assert ids == emu.dataset.expected_ids()


async def test_empty_pages_with_a_next_key_do_not_end_the_listing() -> None:
    async with ArgosEmulator(submissions=4_000, seed=4, filter_mode="scan") as emu:
        email = emu.dataset.heavy_email
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            sizes = []
            ids: list[str] = []
            async for page in argos.iter_pages(email=email, page_size=50):
                sizes.append(len(page.items))
                ids.extend(s.submission_id for s in page.items)
        assert 0 in sizes[:-1]  # an empty page that still had a next key
        assert ids == emu.dataset.expected_ids(email=email)
        assert len(ids) >= 50


async def test_max_items_stops_exactly_and_asks_for_no_more() -> None:
    async with (
        ArgosEmulator(submissions=6_000, seed=1) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        ids = await ids_of(argos.iter_submissions(page_size=1_000, max_items=4_321))
        assert ids == emu.dataset.expected_ids()[:4_321]
        counts = [r.query["count"] for r in list_requests(emu)]
        assert counts == ["1000"] * 4 + ["321"]


@pytest.mark.parametrize(("at", "back"), [(2, 1), (3, 2), (4, 2)])
async def test_a_repeating_page_key_raises(at: int, back: int) -> None:
    plan = FaultPlan([RepeatKey(at=at, back=back)])
    async with (
        ArgosEmulator(submissions=2_000, seed=2, faults=plan) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        delivered: list[str | None] = []
        with pytest.raises(PaginationError) as info:
            async for page in argos.iter_pages(page_size=100):
                delivered.append(page.cursor)
        # The pages before the loop were delivered; the error says where to resume.
        assert len(delivered) == at - 1
        assert info.value.cursor == delivered[-1]
        assert len(list_requests(emu)) == at


async def test_read_ahead_requests_page_k_plus_1_while_page_k_is_consumed_never_k_plus_2() -> None:
    async with (
        ArgosEmulator(submissions=2_000, seed=6, latency=0.01) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        k = 0
        async for _page in argos.iter_pages(page_size=200, max_items=1_000):
            k += 1
            last = k == 5
            expected = k if last else k + 1
            # The request for page k+1 arrives while the caller still holds page k...
            await wait_until(lambda: len(list_requests(emu)) >= expected)  # noqa: B023
            # ...and nothing runs further ahead than that.
            await asyncio.sleep(0.15)
            assert len(list_requests(emu)) == expected
        assert k == 5


async def test_prefetch_zero_requests_only_when_asked() -> None:
    async with (
        ArgosEmulator(submissions=1_000, seed=6) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url, prefetch=0) as argos,
    ):
        k = 0
        async for _page in argos.iter_pages(page_size=250):
            k += 1
            await asyncio.sleep(0.05)
            assert len(list_requests(emu)) == k
        assert k == 4


# Leaving early. The autouse fixtures in conftest.py fail any of these tests that leaves a task
# running, an exception unretrieved or a session unclosed.


async def test_break_after_the_first_item_leaves_nothing_behind() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=8, latency=0.2) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        async for _sub in argos.iter_submissions(page_size=500):
            # Page 2 is in flight (the server sleeps 0.2 s on it) when we leave.
            await wait_until(lambda: len(list_requests(emu)) == 2)
            break
        await asyncio.sleep(0.05)


async def test_break_inside_aclosing_cancels_the_read_ahead_at_once() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=8, latency=0.3) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        async with aclosing(argos.iter_pages(page_size=500)) as pages:
            async for _page in pages:
                await wait_until(lambda: emu.in_flight == 1)
                break
        # Closing the iterator cancelled the in-flight request: the server saw it go away.
        await wait_until(lambda: emu.in_flight == 0, timeout=2.0)
        assert len(list_requests(emu)) == 2


async def test_an_exception_in_the_callers_loop_leaves_nothing_behind() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=8, latency=0.2) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        with pytest.raises(KeyError):
            async with aclosing(argos.iter_submissions(page_size=500)) as subs:
                async for _sub in subs:
                    raise KeyError("caller failed")


async def test_cancelling_the_consumer_cancels_the_in_flight_request() -> None:
    async with (
        ArgosEmulator(submissions=3_000, seed=8, latency=0.3) as emu,
        ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
    ):
        got_first = asyncio.Event()

        async def consume() -> None:
            async for _sub in argos.iter_submissions(page_size=500):
                got_first.set()
                await asyncio.sleep(30)

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: emu.in_flight == 0, timeout=2.0)
