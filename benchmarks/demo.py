"""The demo's figures: ``python -m argos_async export --demo`` as a user starts it.

Each run is a fresh process (interpreter start-up, imports, the emulator's data set, the
export, the shutdown), measured from outside:

- first byte: seconds from starting the process until OUT has any bytes (its size is polled
  every 5 ms);
- exit: seconds from the summary line ("Exported ...") appearing on stderr until the process
  has exited;
- peak RSS: the child's own ``ru_maxrss``, from the ``wait4`` that reaps it (the parent's
  ``RUSAGE_CHILDREN`` is a maximum over all its children, not a figure per run).

On a shared machine wall-clock times move with the load, so the table also gives the CPU
seconds the child had used by then (from ``/proc``, where there is one): what the process
itself costs.

One unmeasured run comes first, with the children allowed to write bytecode (even where
``PYTHONDONTWRITEBYTECODE`` is set), so that the runs measured import compiled modules, as an
installed package does.

Usage: ``python benchmarks/demo.py [--runs 5] [--submissions N] [--tree DIR]``; prints a
markdown table of the medians beside the targets. ``--tree`` runs another checkout of the
package (say, ``git archive HEAD`` unpacked somewhere) with this interpreter, for
before/after figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.005
SUMMARY_PREFIX = "Exported"
# Linux reports ru_maxrss in kilobytes, macOS in bytes.
RSS_UNIT = 2**20 if sys.platform == "darwin" else 2**10


@dataclass(frozen=True)
class Run:
    """What one demo process measured (CPU figures are None without /proc)."""

    first_byte: float
    after_summary: float
    peak_rss_mb: float
    cpu_first_byte: float | None
    cpu_after_summary: float | None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far, or None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, fields 14 and 15 of stat(5), counted after the command's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Stderr(threading.Thread):
    """Reads the child's stderr as it comes, noting when the summary line arrived."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.summary_at: float | None = None
        self.summary_cpu: float | None = None
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            if self.summary_at is None and line.startswith(SUMMARY_PREFIX):
                self.summary_at = time.perf_counter()
                self.summary_cpu = cpu_seconds(self.process.pid)
            self.lines.append(line)


def one_run(submissions: int | None, tree: Path = REPO) -> Run:
    """Runs the demo once from the source tree `tree`, writing into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="argos-demo-") as tmp:
        out = Path(tmp) / "demo.jsonl"
        command = [sys.executable, "-m", "argos_async", "export", "--demo", "--out", str(out)]
        command.append("--no-progress")
        if submissions is not None:
            command += ["--demo-submissions", str(submissions)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        reader = _Stderr(process)
        reader.start()
        first_byte, first_byte_cpu = _wait_for_bytes(out, process.pid)
        # Reaping it ourselves is what gives this child's own rusage.
        _, status, usage = os.wait4(process.pid, 0)
        exited = time.perf_counter()
        process.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        if process.returncode != 0 or first_byte is None or reader.summary_at is None:
            shown = "".join(reader.lines[-20:])
            raise RuntimeError(f"the demo failed (exit {process.returncode}):\n{shown}")
        total_cpu = usage.ru_utime + usage.ru_stime
        return Run(
            first_byte=first_byte - started,
            after_summary=exited - reader.summary_at,
            peak_rss_mb=usage.ru_maxrss / RSS_UNIT,
            cpu_first_byte=first_byte_cpu,
            cpu_after_summary=(
                None if reader.summary_cpu is None else total_cpu - reader.summary_cpu
            ),
        )


def _wait_for_bytes(out: Path, pid: int) -> tuple[float | None, float | None]:
    """When OUT first had bytes and the CPU time used by then; None if the process ended
    before it did."""
    while True:
        try:
            if out.stat().st_size > 0:
                return time.perf_counter(), cpu_seconds(pid)
        except FileNotFoundError:
            pass
        # WNOWAIT leaves the child to be reaped by wait4, rusage and all.
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return None, None
        time.sleep(POLL_SECONDS)


def report(runs: list[Run]) -> str:
    """The medians, beside the targets, as a markdown table."""
    rows: list[tuple[str, str, list[float], float | None]] = [
        ("first byte of OUT after process start", "s", [r.first_byte for r in runs], 0.5),
        ("exit after the summary line", "s", [r.after_summary for r in runs], 0.5),
        ("peak RSS", "MB", [r.peak_rss_mb for r in runs], 200),
    ]
    for name, optional in (
        ("CPU used until the first byte", [r.cpu_first_byte for r in runs]),
        ("CPU used after the summary line", [r.cpu_after_summary for r in runs]),
    ):
        known = [v for v in optional if v is not None]
        if known:
            rows.append((name, "s", known, None))
    lines = [
        f"| measure (median of {len(runs)}) | figure | range | target | met |",
        "|---|---|---|---|---|",
    ]
    for name, unit, values, target in rows:
        median = statistics.median(values)
        digits = 0 if unit == "MB" else 2
        spread = f"{min(values):.{digits}f}..{max(values):.{digits}f}"
        goal, met = ("", "") if target is None else (f"< {target} {unit}", _met(median, target))
        lines.append(f"| {name} | {median:.{digits}f} {unit} | {spread} | {goal} | {met} |")
    return "\n".join(lines)


def _met(value: float, target: float) -> str:
    return "yes" if value < target else "no"


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    parser.add_argument(
        "--submissions", type=int, default=None, help="--demo-submissions (default: the demo's)"
    )
    parser.add_argument(
        "--tree", type=Path, default=REPO, help="the source tree to run (default: this one)"
    )
    args = parser.parse_args()
    tree = args.tree.resolve()
    one_run(args.submissions, tree)  # compiles the modules; not measured
    runs = []
    for i in range(args.runs):
        run = one_run(args.submissions, tree)
        print(
            f"run {i + 1}: first byte {run.first_byte:.3f} s, exit {run.after_summary:.3f} s"
            f" after the summary, peak RSS {run.peak_rss_mb:.0f} MB",
            file=sys.stderr,
        )
        runs.append(run)
    print(report(runs))


if __name__ == "__main__":
    main()
