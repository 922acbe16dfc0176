"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds.

    For things another party does on its own time, like a server noticing that a client
    hung up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m argos_async.testing serve --port 0 ARGS...`` in a child process; yields it
    and the first line it printed (its address). Ends it with SIGTERM, which must exit 0, or
    kills it if the test failed first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "argos_async.testing", "serve", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


class FakeClock:
    """Virtual time for the retry machinery (``argos_async._retry.Clock``).

    ``sleep`` parks its caller until the clock reaches its wake time; :meth:`run` runs a
    coroutine and, whenever every task is parked, jumps straight to the next wake time. So a
    test of a 60-second pause takes microseconds, and times are exact, not windows.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        """Every duration asked of :meth:`sleep`, in order."""
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), wake))
        try:
            await wake
        finally:
            wake.cancel()  # a cancelled sleeper is dropped when it comes up

    async def run(self, main: Awaitable[T]) -> T:
        """``await main``, jumping the clock whenever nothing else can run."""
        task = asyncio.ensure_future(main)
        try:
            while True:
                for _ in range(20):  # let every runnable task run until it parks
                    await asyncio.sleep(0)
                if task.done():
                    return task.result()
                while self._sleepers and self._sleepers[0][2].done():
                    heapq.heappop(self._sleepers)
                if not self._sleepers:
                    raise AssertionError("deadlock: nothing runs and nothing sleeps")
                self.now = max(self.now, self._sleepers[0][0])
                while self._sleepers and self._sleepers[0][0] <= self.now:
                    wake = heapq.heappop(self._sleepers)[2]
                    if not wake.done():
                        wake.set_result(None)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
