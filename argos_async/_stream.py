"""``Stream``: what every streaming method returns, an async iterator that is also an async
context manager.

``async for x in stream`` works as with a plain async generator; ``async with stream as xs``
closes it the moment the block ends (cancelling any read-ahead or in-flight requests), so
nobody needs ``contextlib.aclosing`` to release a connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class Stream(Generic[T]):
    """An async iterator of ``T`` that is also an async context manager closing it."""

    __slots__ = ("_items",)

    def __init__(self, items: AsyncGenerator[T, None]) -> None:
        self._items = items

    def __aiter__(self) -> AsyncGenerator[T, None]:
        # The generator itself, not a wrapper: no extra await per item, and a plain
        # ``async for`` that breaks leaves it to be finalized as any async generator is.
        return self._items

    async def __anext__(self) -> T:
        """The next item (``anext(stream)``)."""
        return await self._items.__anext__()

    async def aclose(self) -> None:
        """Stops the stream now, releasing what it holds; safe to call twice."""
        await self._items.aclose()

    async def __aenter__(self) -> Stream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
