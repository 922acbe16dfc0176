"""What every scenario shares: an emulator in its own process, repeated runs, a table.

The server runs in a separate process so that the client under test has the event loop (and
a core) to itself; on a shared, noisy machine only medians over several runs and ratios
measured side by side in one run are worth reporting.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str


@contextmanager
def emulator_process(*args: str) -> Iterator[Server]:
    """``python -m argos_async.testing serve --port 0 ARGS...`` until the block ends."""
    command = [sys.executable, "-m", "argos_async.testing", "serve", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+) .*api key: ([^,)\s]+)", line)
        if match is None:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield Server(url=match.group(1), api_key=match.group(2))
    finally:
        process.terminate()
        process.wait(timeout=10)


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
