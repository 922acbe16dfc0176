"""A mirror run in a process of its own, for ``test_mirror_crash``: into a DuckDB file, from
an emulator served by another process, killed by SIGKILL at a chosen point when asked.

``python tests/mirror_child.py URL KEY_FILE DATABASE PIPELINES_DIR [--kill-at STEP:N]
[--refresh ID,ID,...]``

With ``--refresh`` the run is a refresh of those submissions (``refresh_ids``).

The kill points are dlt's progress hooks, so they fall between dlt's own steps: ``Extract:N``
when the Nth table has been handed to dlt (mid-extract), ``Normalize:0`` and ``Load:0`` as
those steps begin, ``Load:N`` once N load jobs have finished, ``Done:0`` once the load step
has ended. It prints ``KILL STEP:N`` on stderr just before, and on stdout the
``MirrorResult`` as JSON when it was not killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from datetime import date
from pathlib import Path

import dlt
from dlt.common.runtime.collector import NullCollector
from dlt.common.runtime.collector_base import Collector

from argos_async.dlt import mirror

START = date(2025, 1, 1)
TODAY = date(2025, 12, 31)
"""The emulator's default data set spans 2025."""


class KillAt(Collector):
    """SIGKILLs this process at ``step`` (Extract, Normalize, Load, Done) after ``count``
    events of it (tables extracted, jobs loaded)."""

    def __init__(self, step: str, count: int) -> None:
        self.step_name, self.count = step, count
        self.current: str | None = None
        self.seen = 0

    def _kill(self) -> None:
        print(f"KILL {self.step_name}:{self.count}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    def _start(self, step: str) -> None:
        self.current = step.split()[0]
        if self.current == self.step_name and self.count == 0:
            self._kill()

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        counted = (self.current == "Extract" and name == "submissions") or (
            self.current == "Load" and name == "Jobs" and total is None and not label
        )
        if self.current == self.step_name and counted and inc > 0:
            self.seen += 1
            if self.seen >= self.count:
                self._kill()

    def _stop(self) -> None:
        if self.current == "Load" and self.step_name == "Done":
            self._kill()
        self.current = None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key_file", type=Path)
    parser.add_argument("database")
    parser.add_argument("pipelines_dir")
    parser.add_argument("--kill-at")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--refresh", type=lambda ids: ids.split(","), default=None)
    args = parser.parse_args()
    progress: Collector = NullCollector()
    if args.kill_at:
        step, count = args.kill_at.split(":")
        progress = KillAt(step, int(count))
    pipeline = dlt.pipeline(
        "argos_mirror",
        destination=dlt.destinations.duckdb(args.database),
        dataset_name="kyc",
        pipelines_dir=args.pipelines_dir,
        progress=progress,
    )
    result = mirror(
        pipeline,
        api_key=args.key_file.read_text().strip(),
        base_url=args.url,
        start_date=START,
        today=TODAY,
        page_size=args.page_size,
        client_options={"backoff_base": 0.01},
        refresh_ids=args.refresh,
    )
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
