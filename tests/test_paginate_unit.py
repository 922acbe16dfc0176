"""The page loop alone, driven by a scripted fetch function (no HTTP): its edges."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from argos_async import PaginationError, ServerError
from argos_async._pagination import paginate
from argos_async.models import Page, PageKey, Submission

pytestmark = pytest.mark.anyio


def key(name: str) -> PageKey:
    return PageKey(id=name, created_at=f"t-{name}")


class Script:
    """Answers the n-th fetch with the n-th scripted (item ids, next key name) pair."""

    def __init__(self, pages: list[tuple[list[str], str | None]]) -> None:
        self.pages = pages
        self.calls: list[tuple[PageKey | None, int]] = []

    async def __call__(self, after: PageKey | None, count: int) -> Page:
        self.calls.append((after, count))
        ids, next_name = self.pages[len(self.calls) - 1]
        next_key = key(next_name) if next_name else None
        return Page(
            items=[Submission(submission_id=i) for i in ids[:count]],
            next_key=next_key,
            cursor=f"cursor-{next_name}" if next_name else None,
        )


async def collect(script: Script, **kwargs: object) -> list[str]:
    out: list[str] = []
    async with aclosing(paginate(script, page_size=3, **kwargs)) as pages:  # type: ignore[arg-type]
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
    assert info.value.cursor == f"cursor-{names[-2]}"
    assert len(script.calls) == len(names)


async def test_resuming_key_counts_as_seen() -> None:
    script = Script([(["x"], "S")])
    with pytest.raises(PaginationError):
        await collect(script, start=key("S"), start_cursor="cursor-S")


async def test_max_items_asks_only_for_what_is_still_wanted() -> None:
    script = Script([(["a", "b", "c"], "A"), (["d", "e"], "B"), (["f", "g", "h"], "C")])
    assert await collect(script, max_items=5) == ["a", "b", "c", "d", "e"]
    assert [count for _, count in script.calls] == [3, 2]


async def test_max_items_zero_sends_nothing() -> None:
    script = Script([])
    assert await collect(script, max_items=0) == []
    assert script.calls == []


async def test_an_error_mid_listing_carries_the_resume_cursor() -> None:
    async def fetch(after: PageKey | None, count: int) -> Page:
        if after is None:
            return Page(items=[Submission(submission_id="a")], next_key=key("A"), cursor="c-A")
        raise ServerError("Bad Gateway", status=502)

    with pytest.raises(ServerError) as info:
        async with aclosing(paginate(fetch, page_size=1)) as pages:
            async for _ in pages:
                pass
    assert info.value.cursor == "c-A"


async def test_an_error_on_the_first_page_of_a_resumed_listing_keeps_the_start_cursor() -> None:
    async def fetch(after: PageKey | None, count: int) -> Page:
        raise ServerError("Internal server error", status=500)

    with pytest.raises(ServerError) as info:
        async with aclosing(
            paginate(fetch, page_size=1, start=key("S"), start_cursor="c-S")
        ) as pages:
            async for _ in pages:
                pass
    assert info.value.cursor == "c-S"


async def test_closing_early_cancels_the_read_ahead() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def fetch(after: PageKey | None, count: int) -> Page:
        if after is None:
            return Page(items=[Submission(submission_id="a")], next_key=key("A"), cursor="c")
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("not reached")

    async with aclosing(paginate(fetch, page_size=1, prefetch=1)) as pages:
        async for _ in pages:
            await asyncio.wait_for(started.wait(), 5)
            break
    assert cancelled.is_set()
