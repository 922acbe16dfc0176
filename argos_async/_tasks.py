"""Small pieces of task plumbing shared by the read-ahead, the fan-out and the backfill."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .errors import ArgosError

if sys.version_info < (3, 11):  # pragma: no cover - exercised on Python 3.10 only
    from exceptiongroup import BaseExceptionGroup

T = TypeVar("T")


async def stop(task: asyncio.Future[Any]) -> None:
    """Cancels ``task`` unless it is done and waits for it to end, without swallowing a
    cancellation of our own. Its outcome is then marked as seen, so that asyncio does not log
    "exception was never retrieved" for work the caller has walked away from."""
    if not task.done():
        task.cancel()
        # Shielded: under an anyio cancel scope, the cancellation that brought us here would be
        # delivered again at this await and leave the task's outcome unseen. The task is
        # cancelled, so it ends promptly.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


@contextmanager
def single_errors() -> Iterator[None]:
    """Re-raises a task group's exceptions as one: a group of one as that exception, and a
    group holding API errors (a wrong key fails every shard at once) as the first of them, the
    rest kept as its cause. A group of bugs only stays a group: none of them may be hidden."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        first = next((e for e in _leaves(group) if isinstance(e, ArgosError)), None)
        if first is not None:
            raise first from group
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


# anyio's send() and receive() always pass through the event loop once, even when the item can
# go at once; per lookup of a fan-out that doubles the loop's work. These go at once when they
# can and fall back to waiting.


async def send_now_or_wait(stream: MemoryObjectSendStream[T], item: T) -> None:
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


async def receive_now_or_wait(stream: MemoryObjectReceiveStream[T]) -> T:
    """The next item; raises ``anyio.EndOfStream`` once the senders are gone."""
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        return await stream.receive()
