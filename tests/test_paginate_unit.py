"""The page loop alone, driven by a scripted fetch function (no HTTP): its edges."""

from __future__ import annotations

import asyncio
import tracemalloc
from contextlib import aclosing

import msgspec
import pytest

from argos_async import PaginationError, ServerError
from argos_async._pagination import Fetched, LoopGuard, paginate
from argos_async._protocol.decoding import AFTER_PAGE, decode_page, scan_page
from argos_async._protocol.query import START, Position, decode_cursor, encode_cursor
from argos_async.models import Page, PageKey

pytestmark = pytest.mark.anyio


def key(name: str) -> PageKey:
    return PageKey(id=name, created_at=f"t-{name}")


def fetched(ids: list[str], next_name: str | None) -> Fetched:
    """A page as the server would send it, scanned as the client does."""
    envelope: dict[str, object] = {"Items": [{"submission_id": i} for i in ids]}
    if next_name:
        envelope["nextpageKey"] = {"id": next_name, "created_at": f"t-{next_name}"}
    body = msgspec.json.encode(envelope)
    return Fetched(body, *scan_page(body))


def decode(
    page: Fetched, first: int = 0, count: int | None = None, resume: Position | None = AFTER_PAGE
) -> Page:
    return decode_page(page.body, "f", first=first, count=count, resume=resume)


class Script:
    """Answers the n-th fetch with the n-th scripted (item ids, next key name) pair."""

    def __init__(self, pages: list[tuple[list[str], str | None]]) -> None:
        self.pages = pages
        self.calls: list[tuple[PageKey | None, int]] = []

    async def __call__(self, after: PageKey | None, count: int) -> Fetched:
        self.calls.append((after, count))
        ids, next_name = self.pages[len(self.calls) - 1]
        return fetched(ids[:count], next_name)


async def collect(script: Script, **kwargs: object) -> list[str]:
    out: list[str] = []
    async with aclosing(paginate(script, decode, page_size=3, **kwargs)) as pages:  # type: ignore[arg-type]
        async for page in pages:
            out.extend(s.submission_id for s in page.items)
    return out


async def test_follows_keys_across_short_and_empty_pages() -> None:
    script = Script([(["a", "b", "c"], "A"), ([], "B"), (["d"], "C"), (["e", "f"], None)])
    assert await collect(script) == ["a", "b", "c", "d", "e", "f"]
    assert [after for after, _ in script.calls] == [None, key("A"), key("B"), key("C")]


@pytest.mark.parametrize(
    "names",
    [["A", "A"], ["A", "B", "A"], ["A", "B", "C", "B"]],
    ids=["A,A", "A,B,A", "A,B,C,B"],
)
async def test_a_repeated_key_anywhere_raises_with_the_last_good_cursor(names: list[str]) -> None:
    script = Script([(["x"], n) for n in names])
    with pytest.raises(PaginationError) as info:
        await collect(script, prefetch=0)
    assert info.value.cursor is not None
    assert info.value.cursor == decode(fetched(["x"], names[-2])).cursor
    assert len(script.calls) == len(names)


async def test_resuming_key_counts_as_seen() -> None:
    script = Script([(["x"], "S")])
    with pytest.raises(PaginationError):
        await collect(script, start=Position(key("S")), start_cursor="cursor-S")


async def test_max_items_asks_only_for_what_is_still_wanted() -> None:
    script = Script([(["a", "b", "c"], "A"), (["d", "e"], "B"), (["f", "g", "h"], "C")])
    assert await collect(script, max_items=5) == ["a", "b", "c", "d", "e"]
    assert [count for _, count in script.calls] == [3, 2]


async def test_max_items_zero_sends_nothing() -> None:
    script = Script([])
    assert await collect(script, max_items=0) == []
    assert script.calls == []


async def test_an_error_mid_listing_carries_the_resume_cursor() -> None:
    async def fetch(after: PageKey | None, count: int) -> Fetched:
        if after is None:
            return fetched(["a"], "A")
        raise ServerError("Bad Gateway", status=502)

    with pytest.raises(ServerError) as info:
        async with aclosing(paginate(fetch, decode, page_size=1)) as pages:
            async for _ in pages:
                pass
    assert info.value.cursor == encode_cursor(Position(key("A")), "f")


async def test_an_error_on_the_first_page_of_a_resumed_listing_keeps_the_start_cursor() -> None:
    async def fetch(after: PageKey | None, count: int) -> Fetched:
        raise ServerError("Internal server error", status=500)

    with pytest.raises(ServerError) as info:
        async with aclosing(
            paginate(fetch, decode, page_size=1, start=Position(key("S")), start_cursor="c-S")
        ) as pages:
            async for _ in pages:
                pass
    assert info.value.cursor == "c-S"


async def test_closing_early_cancels_the_read_ahead() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def fetch(after: PageKey | None, count: int) -> Fetched:
        if after is None:
            return fetched(["a"], "A")
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("not reached")

    async with aclosing(paginate(fetch, decode, page_size=1, prefetch=1)) as pages:
        async for _ in pages:
            await asyncio.wait_for(started.wait(), 5)
            break
    assert cancelled.is_set()


async def test_the_next_request_leaves_before_the_page_is_decoded() -> None:
    events: list[str] = []

    async def fetch(after: PageKey | None, count: int) -> Fetched:
        events.append(f"fetch {after.id if after else 'first'}")
        return fetched(["a"], None if after else "A")

    def decode_noting(page: Fetched, first: int, count: int, resume: Position | None) -> Page:
        events.append("decode")
        return decode(page, first, count, resume)

    async with aclosing(paginate(fetch, decode_noting, page_size=1)) as pages:
        async for _ in pages:
            await asyncio.sleep(0)
    # The request for page 2 went out before page 1 was decoded.
    assert events == ["fetch first", "fetch A", "decode", "decode"]


def test_the_loop_guard_stops_at_a_repeated_id_whatever_its_date() -> None:
    guard = LoopGuard()
    for page_id in ("A", "B"):
        guard.check(page_id)
    with pytest.raises(PaginationError, match="'A' after 2 pages"):
        guard.check("A")  # A, B, A: caught at once, with any created_at


def test_the_loop_guard_holds_bounded_memory_however_long_the_listing() -> None:
    guard = LoopGuard(window=1024)
    tracemalloc.start()
    try:
        for n in range(2_000):
            guard.check(f"warm-{n:07d}")
        before, _ = tracemalloc.get_traced_memory()
        for n in range(200_000):
            guard.check(f"page-{n:07d}")
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert guard.pages == 202_000
    # A set of every key would grow by about 48 MB here; the guard's memory does not grow.
    assert after - before < 64 * 1024


@pytest.mark.parametrize("loop", [2, 1_000, 5_000, 50_000])
def test_the_loop_guard_catches_a_loop_longer_than_its_window_within_twice_its_length(
    loop: int,
) -> None:
    guard = LoopGuard(window=1024)
    lead_in = 777  # pages before the loop begins
    sequence = [f"lead-{n}" for n in range(lead_in)] + [f"loop-{n}" for n in range(loop)]
    with pytest.raises(PaginationError):
        for step in range(10 * (lead_in + loop)):
            guard.check(
                sequence[step]
                if step < len(sequence)
                else sequence[lead_in + (step - lead_in) % loop]
            )
    assert guard.pages <= 2 * (lead_in + loop) + loop


class Overfull(Script):
    """A server that sends its pages whole, whatever ``count`` asked for."""

    async def __call__(self, after: PageKey | None, count: int) -> Fetched:
        self.calls.append((after, count))
        names = [name for _, name in self.pages]
        start = 0 if after is None else names.index(after.id) + 1
        ids, next_name = self.pages[start]
        return fetched(ids, next_name)


PAGES_OF_8 = [
    ([f"{p}{n}" for n in range(8)], None if p == "c" else p.upper()) for p in ("a", "b", "c")
]


@pytest.mark.parametrize("max_items", [1, 5, 8, 11, 16, 23, 24, 30])
async def test_never_more_than_max_items_and_the_cut_pages_cursor_resumes_at_the_next_item(
    max_items: int,
) -> None:
    everything = [i for ids, _ in PAGES_OF_8 for i in ids]
    delivered: list[str] = []
    cursor: str | None = None
    start = START
    # Again and again from the last cursor, max_items at a time, to the end of the listing.
    for _ in range(30):
        got: list[str] = []
        async with aclosing(
            paginate(Overfull(PAGES_OF_8), decode, page_size=10, start=start, max_items=max_items)
        ) as pages:
            async for page in pages:
                got.extend(s.submission_id for s in page.items)
                assert [bytes(r) for r in page.raw_items] == [
                    msgspec.json.encode({"submission_id": i}) for i in got[-len(page.items) :]
                ]
                cursor = page.cursor
        assert len(got) <= max_items
        delivered.extend(got)
        if cursor is None:
            break
        start = decode_cursor(cursor, "f")
    assert delivered == everything  # no gap, no duplicate, in order


async def test_a_resumed_page_shorter_than_what_was_delivered_of_it_skips_into_the_next() -> None:
    # Resuming at "7 items after A" when the page after A now holds 3: skip all 3, then 4 more.
    script = Script([(["b0", "b1", "b2"], "B"), ([f"c{n}" for n in range(8)], None)])
    out: list[str] = []
    async with aclosing(
        paginate(script, decode, page_size=10, start=Position(key("A"), 7))
    ) as pages:
        async for page in pages:
            out.extend(s.submission_id for s in page.items)
    assert out == ["c4", "c5", "c6", "c7"]
