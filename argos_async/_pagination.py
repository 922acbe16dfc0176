"""Follows ``nextpageKey`` from page to page, one page of read-ahead, with a loop guard.

Read-ahead is one ``asyncio`` task, not an anyio task group: a task group must not stay open
across the ``yield`` of an async generator. The task is small and owned here: it is created
when a page is handed to the caller and cancelled in ``finally`` whatever way the caller leaves
(``break``, an exception, cancellation).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import NamedTuple, Protocol, TypeVar

import msgspec

from ._hooks import log_fields
from ._protocol.query import START, Position
from ._protocol.wire import SUBMISSION_PATH
from ._tasks import stop
from .errors import APIError, PaginationError, PayloadTooLargeError
from .models import PageKey

logger = logging.getLogger("argos_async")


class Fetched(NamedTuple):
    """A page as received: known to be whole and of the documented envelope, its items not
    decoded yet (each one's bytes, as sent)."""

    body: bytes
    next_key: PageKey | None
    items: list[msgspec.Raw]


FetchPage = Callable[[PageKey | None, int], Awaitable[Fetched]]
"""Fetches the page after a key (``None``: the first page) holding at most ``count`` items."""


class _Resumable(Protocol):
    """What the listing needs of a page it built: where to resume after it."""

    @property
    def cursor(self) -> str | None: ...


P = TypeVar("P", bound=_Resumable)

DecodePage = Callable[[Fetched, int, int, Position | None], P]
"""Builds a page (a ``Page``, or a ``RawPage``) of the fetched items ``first`` to
``first + count``, whose cursor resumes at the position given (``None``: the listing is
over)."""


async def paginate(
    fetch: FetchPage,
    decode: DecodePage[P],
    *,
    page_size: int,
    start: Position = START,
    start_cursor: str | None = None,
    max_items: int | None = None,
    prefetch: int = 1,
) -> AsyncGenerator[P, None]:
    """Yields pages until the server stops sending ``nextpageKey`` or ``max_items`` are out.

    Pages may be short or empty while a next key is still present (a DynamoDB-style query
    stops at a byte limit): only the key's absence ends a listing. When ``max_items`` is
    set, the last requests ask for no more than the items still wanted, and a page that holds
    more (a server that sends more than ``count`` asked for) is cut short: never more than
    ``max_items`` come, and the cut page's cursor resumes at its first item not delivered.
    An ``APIError`` raised mid-listing carries ``cursor``, the resume point after the last
    page delivered.

    A page is decoded only once the request for the next one is on its way: the decoding then
    overlaps that request's latency instead of adding to it.
    """
    remaining = max_items
    guard = LoopGuard()
    after, skip = start
    if after is not None:
        guard.check(after.id)
    resume_from = start_cursor
    read_ahead: asyncio.Task[Fetched] | None = None

    def count(skip: int) -> int:
        # A page resumed inside must hold what was delivered of it too.
        return page_size if remaining is None else min(page_size, remaining + skip)

    async def fetch_fitting(after: PageKey | None, skip: int) -> Fetched:
        # 413: the page would exceed the server's response limit. Ask again for half as many
        # items from the same key, and keep the smaller size for the pages that follow.
        nonlocal page_size
        while True:
            asked = count(skip)
            try:
                return await fetch(after, asked)
            except PayloadTooLargeError as error:
                if asked <= 1:
                    raise
                page_size = asked // 2
                logger.info(
                    "a page of %d items was too large; asking for %d",
                    asked,
                    page_size,
                    extra=log_fields(
                        SUBMISSION_PATH,
                        attempt=error.attempts,
                        status=error.status,
                        request_id=error.request_id,
                    ),
                )

    try:
        if remaining == 0:
            return
        fetched = await fetch_fitting(after, skip)
        while True:
            next_key = fetched.next_key
            if next_key is not None:
                guard.check(next_key.id)
            # The first `skip` items after `after` were delivered before (a resumed cursor).
            item_count = len(fetched.items)
            first = min(skip, item_count)
            take = item_count - first
            if remaining is not None and take > remaining:
                take = remaining
            if remaining is not None:
                remaining -= take
            if first + take < item_count:
                resume: Position | None = Position(after, first + take)  # cut short
                more = False
            else:
                resume = None if next_key is None else Position(next_key)
                more = next_key is not None and remaining != 0
            # A resumed page shorter than what had been delivered of it: the rest of the skip
            # falls on the next page.
            skip -= first
            if more and prefetch:
                read_ahead = asyncio.ensure_future(fetch_fitting(next_key, skip))
                # Let it send its request before the decoding below keeps the loop busy.
                await asyncio.sleep(0)
            page = decode(fetched, first, take, resume)
            yield page
            resume_from = page.cursor
            if not more:
                return
            after = next_key
            if read_ahead is not None:
                fetched = await read_ahead
                read_ahead = None
            else:
                fetched = await fetch_fitting(after, skip)
    except APIError as exc:
        exc.cursor = resume_from
        raise
    finally:
        if read_ahead is not None:
            await stop(read_ahead)


class LoopGuard:
    """Stops a listing whose server hands out a page id it handed out before.

    The id alone is compared (a page key's ``id`` is the last submission of its page, which
    no listing delivers twice), so a key that comes back with another ``created_at`` is caught
    too. Memory stays bounded however long the listing: the last ``window`` ids are kept and
    checked exactly (A, B, A, B stops at the second A), and beyond them Brent's cycle
    detection keeps one id, moved forward at doubling strides: a server that loops, however
    long the loop, hands that id out again within twice the loop's length.
    """

    def __init__(self, window: int = 1024) -> None:
        self._window = window
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()
        self._saved: str | None = None
        self._stride = 1
        self._steps = 0
        self.pages = 0

    def check(self, page_id: str) -> None:
        """Records the next page's id; raises ``PaginationError`` if it came before."""
        if page_id in self._recent_set or page_id == self._saved:
            raise PaginationError(
                f"the server repeated page key {page_id!r} after {self.pages} pages; "
                "stopping instead of looping"
            )
        self.pages += 1
        self._recent.append(page_id)
        self._recent_set.add(page_id)
        if len(self._recent) > self._window:
            self._recent_set.discard(self._recent.popleft())
        self._steps += 1
        if self._steps == self._stride:
            self._saved, self._stride, self._steps = page_id, self._stride * 2, 0
