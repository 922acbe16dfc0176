"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
