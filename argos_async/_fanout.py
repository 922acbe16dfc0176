"""Bounded-concurrency fan-out: many lookups, at most ``concurrency`` in flight, results as
they complete (or in input order).

Shape: a runner task owns an anyio task group with a fixed pool of ``concurrency`` workers.
Each worker, when free, takes the next key from the input itself (``_Keys``), so the input is
read lazily, no more than ``concurrency`` requests are ever in flight, and no task is created
per key, however long the input. Workers send their results down a bounded stream that the
caller's iterator reads.

Ordered mode: a finished result may have to wait for an earlier, slower key. A window of
``buffer + 1`` keys started but not yet delivered bounds that wait: while the earliest key
runs, at most ``buffer`` finished results are held, so a slow key also limits how many
lookups run behind it (to ``buffer + 1``, when that is below ``concurrency``).

``fail_fast``: unordered, the first error to arrive is raised; ordered, the first error in
input order is raised at its turn, after every result before it has been yielded, exactly
where a plain loop over the keys would have stopped.

Why a runner task: a task group must not stay open across the ``yield`` of an async generator
(anyio forbids it: the caller's code would run inside the group's cancel scope). So the group
lives in its own task, and the generator only reads a stream; leaving the loop (``break``, an
error, cancellation) closes the generator, which cancels the runner and with it every
in-flight request.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any, Final, Generic, TypeVar, cast

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

from ._protocol.masking import mask_text
from ._stream import Stream
from ._tasks import receive_now_or_wait, send_now_or_wait, single_errors, stop
from .errors import ArgosError

V = TypeVar("V")

Keys = Iterable[str] | AsyncIterable[str]


class BatchResult(msgspec.Struct, Generic[V], frozen=True):
    """The outcome for one key: ``value`` when it succeeded, else ``error``."""

    key: str
    value: V | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True when the lookup succeeded."""
        return self.error is None

    def unwrap(self) -> V:
        """The value, or the key's error raised."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def __repr__(self) -> str:
        # Keys may be emails: keep them out of logs that print results.
        outcome = f"error={self.error!r}" if self.error is not None else "ok"
        return f"BatchResult(key={mask_text(str(self.key))!r}, {outcome})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # What pretty-printers (rich, IPython) show in place of msgspec's field-by-field
        # default: the same masked view as repr.
        shown: list[tuple[str, Any]] = [("key", mask_text(str(self.key)))]
        if self.error is not None:
            shown.append(("error", self.error))
        return shown


class _Plan(msgspec.Struct, Generic[V], frozen=True):
    """What a batch runs: its input, its lookup and how results come back."""

    keys: Keys
    fetch: Callable[[str], Awaitable[V]]
    argument: str
    concurrency: int
    buffer: int
    ordered: bool
    fail_fast: bool
    dedupe: bool


class Batch(Stream[BatchResult[V]]):
    """Results of a batch lookup, streamed as they complete.

    Iterate it once, either directly (``async for r in batch``) or, to release everything
    the moment the block ends, inside ``async with batch: async for r in batch``.
    """

    def __init__(
        self,
        keys: Keys,
        fetch: Callable[[str], Awaitable[V]],
        *,
        argument: str,
        concurrency: int,
        buffer: int,
        ordered: bool,
        fail_fast: bool,
        dedupe: bool,
    ) -> None:
        plan = _Plan(keys, fetch, argument, concurrency, buffer, ordered, fail_fast, dedupe)
        # The generator gets the plan, not the batch: holding it must not form a cycle, or a
        # loop that breaks would leave its requests running until the garbage collector came.
        super().__init__(_results(plan))
        self._iterated = False

    def __aiter__(self) -> AsyncGenerator[BatchResult[V], None]:
        if self._iterated:
            raise RuntimeError("a batch can be iterated only once")
        self._iterated = True
        return super().__aiter__()


async def _results(plan: _Plan[V]) -> AsyncGenerator[BatchResult[V], None]:
    # The earliest key is not held while it runs: `buffer + 1` keys started but not yet
    # delivered leave at most `buffer` finished results waiting behind it.
    window = anyio.Semaphore(plan.buffer + 1) if plan.ordered else None
    send, receive = anyio.create_memory_object_stream[tuple[int, BatchResult[V]]](plan.buffer)
    runner = asyncio.ensure_future(_run(plan, send, window))
    try:
        with receive:
            waiting: dict[int, BatchResult[V]] = {}
            next_index = 0
            while True:
                try:
                    index, result = await receive_now_or_wait(receive)
                except anyio.EndOfStream:
                    break
                if window is None:
                    if plan.fail_fast and result.error is not None:
                        raise result.error
                    yield result
                    continue
                # A later key's error waits its turn like any result: the keys before it
                # are still answered.
                waiting[index] = result
                while next_index in waiting:
                    ready = waiting.pop(next_index)
                    next_index += 1
                    if plan.fail_fast and ready.error is not None:
                        raise ready.error
                    window.release()
                    yield ready
        await runner  # raises what broke the batch: the input's exception, or a bug
    finally:
        await stop(runner)


async def _run(
    plan: _Plan[V],
    send: MemoryObjectSendStream[tuple[int, BatchResult[V]]],
    window: anyio.Semaphore | None,
) -> None:
    keys = _Keys(plan)
    fetch = plan.fetch

    async def work(results: MemoryObjectSendStream[tuple[int, BatchResult[V]]]) -> None:
        async with results:
            while True:
                if window is not None:
                    await window.acquire()
                now = keys.take_now() if keys.plain else _BUSY
                taken = await keys.take() if now is _BUSY else cast("_Taken | None", now)
                if taken is None:
                    if window is not None:
                        window.release()  # a worker still waiting for a turn must see the end
                    return
                index, key, problem = taken
                if problem is not None:
                    result: BatchResult[V] = BatchResult(key, error=problem)
                else:
                    try:
                        result = BatchResult(key, await fetch(key))
                    except ArgosError as error:
                        result = BatchResult(key, error=error)
                await send_now_or_wait(results, (index, result))

    with single_errors():
        async with send, anyio.create_task_group() as group:
            for _ in range(plan.concurrency):
                group.start_soon(work, send.clone())


_END: Final = object()


_Taken = tuple[int, str, Exception | None]
"""A key to look up: its index, the key, and the error for it if it cannot be a key."""

_BUSY: Final = object()
"""``_Keys.take_now``'s answer after a long run of repeats: await, then take again."""


class _Keys:
    """The input, taken a key at a time by whichever worker is free.

    A worker takes its next key itself (the way the backfill's shards take windows): the input
    is read no faster than it is worked through, no task is made per key, and no key passes
    between tasks. A plain iterator is advanced without an await (so two workers never
    advance it at once, and a key costs no coroutine); an async one is advanced under a lock.
    """

    def __init__(self, plan: _Plan[Any]) -> None:
        self._argument = plan.argument
        self._dedupe = plan.dedupe
        self._seen: set[str] = set()
        self._lock = anyio.Lock()
        if isinstance(plan.keys, AsyncIterable):
            self._async: AsyncIterator[str] | None = aiter(plan.keys)
            self._sync: Iterator[str] | None = None
        else:
            self._async = None
            self._sync = iter(plan.keys)
        self.plain = self._sync is not None
        """Whether :meth:`take_now` can read the input."""
        self._index = 0  # in the order keys are taken: what ordered mode delivers by
        self._position = 0  # in the input: what a bad key's error names
        self._done = False

    def take_now(self) -> _Taken | object | None:
        """The next key of a plain iterator, as :meth:`take`; ``_BUSY`` after 1,024 repeats
        in a row, so that a long run of them cannot hog the loop."""
        assert self._sync is not None
        for _ in range(1024):
            taken = next(self._sync, _END) if not self._done else _END
            if taken is _END:
                self._done = True
                return None
            accepted = self._accept(taken)
            if accepted is not None:
                return accepted
        return _BUSY

    async def take(self) -> _Taken | None:
        """The next key to look up, its index and the error for it if it cannot be a key;
        None once the input is exhausted."""
        while not self._done:
            if self._sync is not None:
                taken = self.take_now()
                if taken is _BUSY:
                    await anyio.lowlevel.checkpoint()
                    continue
                return cast("_Taken | None", taken)
            item = await self._next_async()
            if item is _END:
                self._done = True
                break
            accepted = self._accept(item)
            if accepted is None:
                await anyio.lowlevel.checkpoint()  # a repeat: let the loop breathe
                continue
            return accepted
        return None

    def _accept(self, taken: object) -> _Taken | None:
        """Numbers a key; None for a repeat, answered at its first occurrence. An element
        that cannot be a key gets its own error result, and the batch goes on."""
        key = cast("str", taken)
        problem = _check_key(key, self._argument, self._position)
        self._position += 1
        if problem is None and self._dedupe:
            if key in self._seen:
                return None
            self._seen.add(key)
        index = self._index
        self._index += 1
        return index, key, problem

    async def _next_async(self) -> object:
        assert self._async is not None
        async with self._lock:
            if self._done:
                return _END
            try:
                return await anext(self._async)
            except StopAsyncIteration:
                return _END


def _check_key(key: object, argument: str, index: int) -> Exception | None:
    """A per-key error for an element that cannot be a key (the batch goes on)."""
    if not isinstance(key, str):
        return TypeError(f"{argument}[{index}] must be a str, got {type(key).__name__}")
    if not key.strip():
        return ValueError(f"{argument}[{index}] must not be empty")
    return None
