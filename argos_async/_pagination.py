"""Follows ``nextpageKey`` from page to page, one page of read-ahead, with a loop guard.

Read-ahead is one ``asyncio`` task, not an anyio task group: a task group must not stay open
across the ``yield`` of an async generator. The task is small and owned here: it is created
when a page is handed to the caller and cancelled in ``finally`` whatever way the caller leaves
(``break``, an exception, cancellation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import NamedTuple

from ._tasks import stop
from .errors import APIError, PaginationError, PayloadTooLargeError
from .models import Page, PageKey

logger = logging.getLogger("argos_async")


class Fetched(NamedTuple):
    """A page as received: known to be whole and of the documented envelope, not decoded yet."""

    body: bytes
    next_key: PageKey | None
    item_count: int


FetchPage = Callable[[PageKey | None, int], Awaitable[Fetched]]
"""Fetches the page after a key (``None``: the first page) holding at most ``count`` items."""

DecodePage = Callable[[Fetched], Page]
"""Builds the page's Structs."""


async def paginate(
    fetch: FetchPage,
    decode: DecodePage,
    *,
    page_size: int,
    start: PageKey | None = None,
    start_cursor: str | None = None,
    max_items: int | None = None,
    prefetch: int = 1,
) -> AsyncGenerator[Page, None]:
    """Yields pages until the server stops sending ``nextpageKey`` or ``max_items`` are out.

    Pages may be short or empty while a next key is still present (a DynamoDB-style query
    stops at a byte limit): only the key's absence ends a listing. When ``max_items`` is
    set, the last requests ask for no more than the items still wanted, so every page ends
    exactly where its cursor resumes. An ``APIError`` raised mid-listing carries ``cursor``,
    the resume point after the last page delivered.

    A page is decoded only once the request for the next one is on its way: the decoding then
    overlaps that request's latency instead of adding to it.
    """
    remaining = max_items
    seen: set[PageKey] = set() if start is None else {start}
    resume_from = start_cursor
    read_ahead: asyncio.Task[Fetched] | None = None

    def count() -> int:
        return page_size if remaining is None else min(page_size, remaining)

    async def fetch_fitting(after: PageKey | None) -> Fetched:
        # 413: the page would exceed the server's response limit. Ask again for half as many
        # items from the same key, and keep the smaller size for the pages that follow.
        nonlocal page_size
        while True:
            asked = count()
            try:
                return await fetch(after, asked)
            except PayloadTooLargeError:
                if asked <= 1:
                    raise
                page_size = asked // 2
                logger.info("a page of %d items was too large; asking for %d", asked, page_size)

    try:
        if remaining == 0:
            return
        fetched = await fetch_fitting(start)
        while True:
            next_key = fetched.next_key
            if next_key is not None:
                if next_key in seen:
                    raise PaginationError(
                        f"the server repeated page key {next_key.id!r} after {len(seen)} "
                        "pages; stopping instead of looping"
                    )
                seen.add(next_key)
            if remaining is not None:
                remaining = max(0, remaining - fetched.item_count)
            more = next_key is not None and remaining != 0
            if more and prefetch:
                read_ahead = asyncio.ensure_future(fetch_fitting(next_key))
                # Let it send its request before the decoding below keeps the loop busy.
                await asyncio.sleep(0)
            page = decode(fetched)
            yield page
            resume_from = page.cursor
            if not more:
                return
            if read_ahead is not None:
                fetched = await read_ahead
                read_ahead = None
            else:
                fetched = await fetch_fitting(next_key)
    except APIError as exc:
        exc.cursor = resume_from
        raise
    finally:
        if read_ahead is not None:
            await stop(read_ahead)
