"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import aiohttp

from argos_async import ArgosClient
from argos_async.pytest_plugin import DEFAULT_CLIENT_OPTIONS
from argos_async.testing import ArgosEmulator

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")

FAST: Mapping[str, Any] = DEFAULT_CLIENT_OPTIONS
"""Quick retries (``backoff_base`` 1 ms, ``backoff_max`` 10 ms), as the plugin's ``argos_client``
has them: ``client_for(emu, FAST)``. Without it a client backs off as ``ArgosClient`` does by
default (0.5 s, doubling)."""

_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


def client_for(
    emu: ArgosEmulator, defaults: Mapping[str, Any] = _NO_OPTIONS, /, **options: Any
) -> ArgosClient:
    """An ``ArgosClient`` with ``emu``'s key and address: ``options`` over ``defaults`` (such
    as :data:`FAST`) over ``ArgosClient``'s own defaults; either may replace the key or the
    address too. Use it as ``async with client_for(emu, FAST, max_retries=1) as argos:``."""
    return ArgosClient(**{"api_key": emu.api_key, "base_url": emu.url, **defaults, **options})


async def wait_until(
    condition: Callable[[], bool],
    timeout: float = 5.0,
    *,
    message: str | Callable[[], str] = "condition not met in time",
) -> None:
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds with
    ``message`` (a callable one is called then, to show the state that did not change).

    For things another party does on its own time, like a server noticing that a client
    hung up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(message if isinstance(message, str) else message())
        await asyncio.sleep(0.005)


ROUND_TRIP_PATH = "/round-trip"
"""The path of :func:`round_trip`'s own request: count the requests under test by path."""


async def round_trip(emu: ArgosEmulator) -> None:
    """Sends ``emu`` one request of its own, on a connection of its own, and returns once the
    emulator has answered it (``GET /round-trip``: a 404, after the emulator's ``latency``
    like any request).

    For a test that proves a client sent nothing more (after a cancellation, a ``break``, an
    error; while it holds a page): wait first for what had to happen (the requests in flight
    to end, the page before to be answered), then call this, then count. A request the client
    still had on its way, or would send on an answer it has just received, reaches the
    emulator while this one waits out the latency, so the count includes it: the test waits
    on the emulator instead of sleeping in the hope that nothing comes. The emulator records
    this request too: count the others by path.
    """
    async with (
        aiohttp.ClientSession() as http,
        http.get(emu.url + ROUND_TRIP_PATH, headers={"x-api-key": emu.api_key}) as response,
    ):
        await response.read()
    assert response.status == 404


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
