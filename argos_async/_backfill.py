"""Bulk backfill: a date range cut into day windows, pulled by parallel shards, merged into one
stream with backpressure, resumable from a checkpoint.

Shards take windows from one shared queue, so a busy window never leaves the others idle.
Each shard lists its window page by page (with the client's read-ahead) and hands every page
down one unbuffered stream; it waits there until the caller takes the page. Memory is thus
bounded by ``shards`` x ``page_size`` x (1 + read-ahead), whatever the length of the range.

Exactly once: the API's date filters are whole days, so day windows partition the listing;
each window is listed by one shard; and the checkpoint records a page only once the caller
has come back for the next one, so a page is either recorded (and never fetched again) or
fetched again after a crash (and the caller's output must be rolled back to the checkpoint,
as the export command does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sized
from contextlib import aclosing
from typing import Protocol, TypeVar

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

from ._checkpoint import Checkpoint
from ._plan import Window
from ._stream import Stream
from ._tasks import single_errors, stop
from .models import Page, RawPage, Submission


class _AnyPage(Protocol):
    """What a backfill needs of a page, decoded or raw: its size and where it resumes."""

    @property
    def items(self) -> Sized: ...
    @property
    def cursor(self) -> str | None: ...


P = TypeVar("P", bound=_AnyPage)

ListWindow = Callable[[Window, "str | None"], Stream[P]]
"""Lists one window from a resume cursor (``None``: from its start)."""


class BackfillStats(msgspec.Struct):
    """Live counts of a backfill: what the caller has consumed, and how many windows are done."""

    windows: int
    windows_done: int = 0
    pages: int = 0
    items: int = 0


class Backfill(Stream[Submission]):
    """A running backfill. ``async for sub in backfill`` gives submissions; ``backfill.pages()``
    gives whole pages, ``backfill.raw_pages()`` whole pages of items as sent, undecoded (for
    lossless export). Iterate it once, one way;
    ``async with`` releases every shard the moment the block ends.

    ``stats`` counts what has been consumed; ``checkpoint`` (if any) is saved after each page
    the caller has finished, and ``checkpoint.extra`` is saved with it, for the caller's own
    bookkeeping.
    """

    def __init__(
        self,
        windows: list[Window],
        list_window: ListWindow[Page],
        list_raw_window: ListWindow[RawPage],
        *,
        shards: int,
        checkpoint: Checkpoint | None,
    ) -> None:
        done = checkpoint.done if checkpoint is not None else set()
        todo = [w for w in windows if w.name not in done]
        stats = BackfillStats(windows=len(windows), windows_done=len(windows) - len(todo))
        # The generators get the run, not the backfill: holding them must not form a cycle,
        # or a loop that breaks would leave its shards running until the garbage collector came.
        self._run = _Run(todo, shards, checkpoint, stats)
        self._list_window = list_window
        self._list_raw_window = list_raw_window
        super().__init__(_items(self._run, list_window))

    @property
    def stats(self) -> BackfillStats:
        """Live counts of what the caller has consumed."""
        return self._run.stats

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint this backfill saves to, if it was given one."""
        return self._run.checkpoint

    def pages(self) -> Stream[Page]:
        """The backfill page by page, in the order pages arrive from the shards."""
        return Stream(_pages(self._run, self._list_window))

    def raw_pages(self) -> Stream[RawPage]:
        """The backfill page by page, each item's JSON exactly as the server sent it and no
        ``Submission`` built (see ``ArgosClient.iter_raw_pages``); checkpoints as ``pages``."""
        return Stream(_pages(self._run, self._list_raw_window))


class _Run(msgspec.Struct):
    todo: list[Window]
    shards: int
    checkpoint: Checkpoint | None
    stats: BackfillStats
    started: bool = False


async def _items(run: _Run, list_window: ListWindow[Page]) -> AsyncGenerator[Submission, None]:
    async with aclosing(_pages(run, list_window)) as pages:
        async for page in pages:
            for item in page.items:
                yield item


async def _pages(run: _Run, list_window: ListWindow[P]) -> AsyncGenerator[P, None]:
    if run.started:
        raise RuntimeError("a backfill can be iterated only once")
    run.started = True
    send, receive = anyio.create_memory_object_stream[tuple[Window, P]](0)
    runner = asyncio.ensure_future(_shards(run, list_window, send))
    try:
        with receive:
            async for window, page in receive:
                yield page
                # The caller came back for more: it is done with this page.
                await _consumed(run, window, page)
        await runner  # raises what stopped a shard
    finally:
        await stop(runner)


async def _consumed(run: _Run, window: Window, page: _AnyPage) -> None:
    run.stats.pages += 1
    run.stats.items += len(page.items)
    if page.cursor is None:
        run.stats.windows_done += 1
    if run.checkpoint is not None:
        run.checkpoint.record(window.name, page.cursor)
        # fsync takes milliseconds: let the shards go on meanwhile.
        await anyio.to_thread.run_sync(run.checkpoint.save)


async def _shards(
    run: _Run, list_window: ListWindow[P], send: MemoryObjectSendStream[tuple[Window, P]]
) -> None:
    queue = iter(run.todo)
    cursors = dict(run.checkpoint.cursors) if run.checkpoint is not None else {}

    async def shard(out: MemoryObjectSendStream[tuple[Window, P]]) -> None:
        async with out:
            # One iterator shared by every shard: each window is taken by exactly one.
            for window in queue:
                async with list_window(window, cursors.get(window.name)) as pages:
                    async for page in pages:
                        await out.send((window, page))

    with single_errors():
        async with send, anyio.create_task_group() as group:
            for _ in range(run.shards):
                group.start_soon(shard, send.clone())
