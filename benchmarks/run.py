"""Every benchmark scenario, side by side with the peers, medians and ratios in markdown.

Scenarios (the page server of ``pageserver.py`` runs in its own process throughout):

a. stream 200,000 items at page_size 2000: items per second, each peer, ratio to the floor;
b. peak RSS streaming 10,000 and 1,000,000 items, each peer in a fresh process;
c. read-ahead: 20 ms server latency and 20 ms of (awaited) consumer work per page,
   argos_async with prefetch on and off;
d. fan-out: 5,000 lookups at concurrency 64 with 20 ms latency, floor and argos_async;
e. backfill: 60 day windows at 50 ms page latency, 1 shard and 8 shards;
f. fan-out where the client's CPU is the limit: 20,000 lookups at concurrency 256 with 5 ms
   latency, floor and argos_async, each run in a fresh process of its own that reports its
   wall time, its own CPU time (user + system, the page server's excluded) and its garbage
   collector's runs: requests per second and CPU per lookup.
g. the export, as whole processes: ``python -m argos_async export`` of 100,000 submissions
   against the export floor (``export_floor.py``: aiohttp page by page, ``msgspec.Raw`` split,
   one write + flush + fsync per page, no library logic), interleaved; then the export's own
   work (``run_export`` in this process: no interpreter start-up, which would otherwise be
   most of the 8-shard run) of 60 day windows at 50 ms page latency, 8 shards against 1.

Runs alternate between peers so that the machine's noise hits them alike. Run:
``python benchmarks/run.py [--runs 3] [--only a,b,...]`` (or ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import peers
from _harness import Stopwatch, median, table
from pageserver import POOL, SEED

from argos_async import ArgosClient
from argos_async._export import ExportRequest, run_export
from argos_async._plan import plan_backfill
from argos_async.testing import Dataset

HERE = os.path.dirname(os.path.abspath(__file__))


@contextmanager
def page_server(*args: str) -> Iterator[str]:
    """The page server in its own process; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "pageserver.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the page server did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def timed(expected: int, run: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> float:
    """Seconds that ``asyncio.run(run(*args))`` took; it must have seen ``expected`` items."""
    with Stopwatch() as watch:
        seen = asyncio.run(run(*args))
    if seen != expected:
        raise RuntimeError(f"expected {expected} items, saw {seen}")
    return watch.seconds


# --- scenarios ----------------------------------------------------------------------------


def scenario_a(runs: int) -> tuple[str, dict[str, float]]:
    items, page_size = 200_000, 2000
    seconds: dict[str, list[float]] = {name: [] for name in peers.STREAMS}
    with page_server("--items", str(items)) as url:
        # Unmeasured: the server keeps each response once it has assembled it.
        timed(items, peers.raw, url, items, page_size)
        for _ in range(runs):
            for name, stream in peers.STREAMS.items():
                seconds[name].append(timed(items, stream, url, items, page_size))
    rate = {name: items / median(s) for name, s in seconds.items()}
    rows = [[name, f"{rate[name]:,.0f}", f"{rate[name] / rate['floor']:.2f}x"] for name in rate]
    text = table(["client", "items/s", "vs floor"], rows)
    return text, {
        "a_vs_floor": rate["argos_async"] / rate["floor"],
        "a_vs_httpx_pydantic": rate["argos_async"] / rate["httpx-pydantic"],
        "a_raw_vs_fastest_client": rate["raw"] / max(r for n, r in rate.items() if n != "raw"),
    }


def _rss(peer: str, url: str, items: int) -> int:
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "peers.py"), "rss", peer, url, str(items)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    measured = json.loads(result.stdout)
    if measured["items"] != items:
        raise RuntimeError(f"{peer} saw {measured['items']} of {items} items")
    return int(measured["max_rss_kb"])


def scenario_b(runs: int) -> tuple[str, dict[str, float]]:
    small, large = 10_000, 1_000_000
    names = ["idle"] + [name for name in peers.STREAMS if name != "raw"]
    rss: dict[tuple[str, int], int] = {}
    for items in (small, large):
        with page_server("--items", str(items)) as url:
            for name in names:
                # Peak memory barely varies from run to run: one run each.
                rss[(name, items)] = _rss(name, url, items)
    idle = rss[("idle", small)]
    rows = [
        [
            name,
            f"{rss[(name, small)] / 1024:.1f}",
            f"{rss[(name, large)] / 1024:.1f}",
            f"{(rss[(name, small)] - idle) / 1024:+.1f}",
            f"{(rss[(name, large)] - idle) / 1024:+.1f}",
            f"{rss[(name, large)] / rss[(name, small)]:.2f}",
        ]
        for name in names
    ]
    text = table(
        [
            "client (idle: imports only)",
            "MiB, 10k items",
            "MiB, 1M items",
            "over idle, 10k",
            "over idle, 1M",
            "ratio 1M / 10k",
        ],
        rows,
    )
    return text, {"b_rss_ratio": rss[("argos_async", large)] / rss[("argos_async", small)]}


async def _consume(url: str, prefetch: int, work: float) -> int:
    seen = 0
    async with ArgosClient(api_key=peers.API_KEY, base_url=url, prefetch=prefetch) as client:
        async for page in client.iter_pages(page_size=2000):
            seen += len(page.items)
            await asyncio.sleep(work)  # the caller's own awaited work: a database write, say
    return seen


def scenario_c(runs: int) -> tuple[str, dict[str, float]]:
    pages, latency = 25, 0.020
    seconds: dict[int, list[float]] = {1: [], 0: []}
    with page_server("--items", str(pages * 2000), "--latency", str(latency)) as url:
        for _ in range(runs):
            for prefetch in seconds:
                seconds[prefetch].append(timed(pages * 2000, _consume, url, prefetch, 0.020))
    off = median(seconds[0])
    rows = [
        [f"prefetch={p}", f"{median(s):.2f}", f"{off / median(s):.2f}x"] for p, s in seconds.items()
    ]
    text = table(["argos_async", "seconds", "speed-up"], rows)
    return text, {"c_speedup": off / median(seconds[1])}


def scenario_d(runs: int) -> tuple[str, dict[str, float]]:
    lookups, concurrency, latency = 5_000, 64, 0.020
    ids = list(Dataset.generate(POOL, SEED).ids)[:lookups]
    runners = {"floor": peers.floor_lookups, "argos_async": peers.argos_lookups}
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    with page_server("--items", "1000", "--latency", str(latency)) as url:
        for _ in range(runs):
            for name, run in runners.items():
                seconds[name].append(timed(lookups, run, url, ids, concurrency))
    bound = concurrency / latency
    rate = {name: lookups / median(s) for name, s in seconds.items()}
    rows = [
        [name, f"{r:,.0f}", f"{r / bound:.2f}", f"{r / rate['floor']:.2f}x"]
        for name, r in rate.items()
    ]
    text = table(["client", "requests/s", f"of the {bound:,.0f}/s bound", "vs floor"], rows)
    return text, {"d_vs_floor": rate["argos_async"] / rate["floor"]}


async def _backfill(url: str, days: int, shards: int) -> int:
    start = date(2025, 1, 1)
    end = start + timedelta(days=days - 1)
    seen = 0
    async with ArgosClient(api_key=peers.API_KEY, base_url=url) as client:
        async for page in client.backfill(start, end, shards=shards).pages():
            seen += len(page.items)
    return seen


def scenario_e(runs: int) -> tuple[str, dict[str, float]]:
    days, per_day, latency = 60, 300, 0.050
    seconds: dict[int, list[float]] = {1: [], 8: []}
    with page_server("--window-items", str(per_day), "--latency", str(latency)) as url:
        for _ in range(runs):
            for shards in seconds:
                seconds[shards].append(timed(days * per_day, _backfill, url, days, shards))
    one = median(seconds[1])
    rows = [
        [f"{n} shard(s)", f"{median(s):.2f}", f"{one / median(s):.1f}x"] for n, s in seconds.items()
    ]
    text = table(["backfill", "seconds", "speed-up"], rows)
    return text, {"e_speedup": one / median(seconds[8])}


class _Measured(NamedTuple):
    wall: float
    cpu: float
    """user + system seconds of the client's process alone, during the lookups"""
    collections: tuple[int, int, int]
    """runs of the cyclic garbage collector, by generation"""


def _lookups(peer: str, url: str, ids: list[str], concurrency: int) -> _Measured:
    """One peer's lookups in a fresh process of its own, which reports its own times."""
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "peers.py"), "lookups", peer, url, str(concurrency)],
        input="\n".join(ids) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{peer}'s lookups failed:\n{result.stderr}")
    measured = json.loads(result.stdout)
    if measured["lookups"] != len(ids) or measured["found"] != len(ids):
        raise RuntimeError(f"{peer} found {measured['found']} of {len(ids)} submissions")
    g0, g1, g2 = (int(n) for n in measured["gc_collections"])
    cpu = float(measured["user_s"]) + float(measured["sys_s"])
    return _Measured(float(measured["wall_s"]), cpu, (g0, g1, g2))


def scenario_f(runs: int) -> tuple[str, dict[str, float]]:
    lookups, concurrency, latency = 20_000, 256, 0.005
    ids = list(Dataset.generate(lookups, SEED).ids)[:lookups]
    names = list(peers.LOOKUPS)
    measured: dict[str, list[_Measured]] = {name: [] for name in names}
    server = ("--items", "1000", "--latency", str(latency), "--lookups", str(lookups))
    with page_server(*server) as url:
        # Unmeasured: the server keeps each response once it has assembled it.
        _lookups("floor", url, ids, concurrency)
        for run in range(runs):
            # Alternating, and in turn first, so that neither always follows the other.
            for name in names if run % 2 == 0 else names[::-1]:
                measured[name].append(_lookups(name, url, ids, concurrency))
    seconds = {name: [m.wall for m in taken] for name, taken in measured.items()}
    cpu = {name: [m.cpu for m in taken] for name, taken in measured.items()}
    collections = {
        name: "/".join(f"{median([m.collections[g] for m in taken]):.0f}" for g in range(3))
        for name, taken in measured.items()
    }
    rate = {name: lookups / median(s) for name, s in seconds.items()}
    per_lookup = {name: median(c) / lookups * 1e6 for name, c in cpu.items()}
    rows = [
        [
            name,
            f"{rate[name]:,.0f}",
            f"{median(cpu[name]):.2f}",
            f"{per_lookup[name]:.0f}",
            f"{median(cpu[name]) / median(seconds[name]):.2f}",
            f"{rate[name] / rate['floor']:.2f}x",
            f"{per_lookup[name] / per_lookup['floor']:.2f}x",
            collections[name],
        ]
        for name in names
    ]
    text = table(
        [
            "client",
            "requests/s",
            "client CPU s/run",
            "CPU µs/lookup",
            "CPU s per wall s",
            "rate vs floor",
            "CPU vs floor",
            "GC runs, gen 0/1/2",
        ],
        rows,
    )
    return text, {
        "f_vs_floor": rate["argos_async"] / rate["floor"],
        "f_cpu_ratio": per_lookup["argos_async"] / per_lookup["floor"],
    }


def _process(command: list[str], out: str, expected: int, **env: str) -> float:
    """Seconds a whole process took (start-up, imports and exit included); it must have
    written ``expected`` lines to ``out``."""
    with Stopwatch() as watch:
        done = subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command[1:3]} failed ({done.returncode}):\n{done.stderr}")
    with open(out, "rb") as file:
        lines = file.read().count(b"\n")
    if lines != expected:
        raise RuntimeError(f"{command[1:3]} wrote {lines} lines, not {expected}")
    return watch.seconds


def _export_command(out: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "argos_async", "export", "--out", out, "--overwrite",
            "--quiet", "--no-progress", *args]  # fmt: skip


async def _export(url: str, out: str, days: int, shards: int) -> int:
    """The export's own work (no interpreter start-up): ``run_export`` of ``days`` windows."""
    start = date(2025, 1, 1)
    plan = plan_backfill(start, start + timedelta(days=days - 1), shards=shards)
    async with ArgosClient(api_key=peers.API_KEY, base_url=url) as client:
        result = await run_export(client, plan, ExportRequest(Path(out), overwrite=True))
    return result.items


def scenario_g(runs: int) -> tuple[str, dict[str, float]]:
    items = 100_000
    floor_script = os.path.join(HERE, "export_floor.py")
    seconds: dict[str, list[float]] = {"floor": [], "argos_async export": []}
    days, per_day, latency = 60, 300, 0.050
    sharded: dict[int, list[float]] = {1: [], 8: []}
    # On the disk the repository is on, like a user's export: fsync has its real cost.
    with tempfile.TemporaryDirectory(dir=HERE) as scratch:
        out = os.path.join(scratch, "out.jsonl")
        with page_server("--items", str(items)) as url:
            env = {"ARGOS_API_KEY": peers.API_KEY, "ARGOS_BASE_URL": url}
            runners: dict[str, Callable[[], float]] = {
                "floor": lambda: _process([sys.executable, floor_script, url, out], out, items),
                "argos_async export": lambda: _process(_export_command(out), out, items, **env),
            }
            runners["floor"]()  # unmeasured: the server keeps each response it assembled
            for run in range(runs):
                order = list(runners) if run % 2 == 0 else list(reversed(runners))
                for name in order:
                    seconds[name].append(runners[name]())
        with page_server("--window-items", str(per_day), "--latency", str(latency)) as url:
            for _ in range(runs):
                for shards in sharded:
                    sharded[shards].append(timed(days * per_day, _export, url, out, days, shards))
    floor = median(seconds["floor"])
    rows = [
        [name, f"{median(s):.2f}", f"{items / median(s):,.0f}", f"{floor / median(s):.2f}x"]
        for name, s in seconds.items()
    ]
    text = table(["100,000 submissions", "seconds", "items/s", "vs floor"], rows)
    one = median(sharded[1])
    rows = [
        [f"{n} shard(s)", f"{median(s):.2f}", f"{one / median(s):.1f}x"] for n, s in sharded.items()
    ]
    text += "\n\n" + table(["run_export, 60 days at 50 ms", "seconds", "speed-up"], rows)
    numbers = {
        "g_vs_floor": floor / median(seconds["argos_async export"]),
        "g_shard_speedup": one / median(sharded[8]),
    }
    return text, numbers


SCENARIOS = {
    "a": ("(a) stream 200,000 items, page_size 2000", scenario_a),
    "b": ("(b) peak RSS, streaming 10,000 and 1,000,000 items", scenario_b),
    "c": ("(c) read-ahead: 20 ms latency, 20 ms work per page, 25 pages", scenario_c),
    "d": ("(d) fan-out: 5,000 lookups, concurrency 64, 20 ms latency", scenario_d),
    "e": ("(e) backfill: 60 days at 50 ms page latency", scenario_e),
    "f": ("(f) fan-out, CPU-bound: 20,000 lookups, concurrency 256, 5 ms latency", scenario_f),
    "g": (
        "(g) the export as whole processes: 100,000 submissions; 60 days, 8 shards vs 1",
        scenario_g,
    ),
}

TARGETS = [
    ("a_vs_floor", "(a) argos_async vs floor", ">=", 1.0),
    ("a_vs_httpx_pydantic", "(a) argos_async vs httpx + pydantic", ">=", 4.0),
    ("a_raw_vs_fastest_client", "(a) raw socket vs the fastest client", ">=", 2.0),
    ("b_rss_ratio", "(b) argos_async RSS, 1M / 10k items", "<=", 1.25),
    ("c_speedup", "(c) prefetch on vs off", ">=", 1.6),
    ("d_vs_floor", "(d) argos_async fan-out vs floor", ">=", 0.95),
    ("e_speedup", "(e) 8 shards vs 1", ">=", 6.0),
    ("f_vs_floor", "(f) argos_async CPU-bound fan-out vs floor", ">=", 0.95),
    ("f_cpu_ratio", "(f) argos_async CPU per lookup / floor's", "<=", 1.1),
    ("g_vs_floor", "(g) export vs export floor, whole processes", ">=", 0.9),
    ("g_shard_speedup", "(g) export, 8 shards vs 1 at 50 ms", ">=", 6.0),
]


def compile_package() -> None:
    """Writes the package's bytecode, as installing a wheel does. Processes started by the
    scenarios then import it as users' processes do, rather than compiling every module from
    source again where ``PYTHONDONTWRITEBYTECODE`` is set (it is, on this machine), a cost
    the peers' installed libraries never pay."""
    import argos_async

    compileall.compile_dir(os.path.dirname(argos_async.__file__), quiet=1)


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="abcdefg", help="scenario letters, e.g. ad")
    args = parser.parse_args()

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"argos_async benchmarks, {stamp}; {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}; "
        f"median of {args.runs} runs\n"
    )
    measured: dict[str, float] = {}
    for letter in args.only.replace(",", ""):
        title, scenario = SCENARIOS[letter]
        text, numbers = scenario(args.runs)
        measured.update(numbers)
        print(f"### {title}\n\n{text}\n", flush=True)

    rows = []
    for key, name, sense, goal in TARGETS:
        if key in measured:
            value = measured[key]
            met = value >= goal if sense == ">=" else value <= goal
            rows.append([name, f"{sense} {goal}", f"{value:.2f}", "yes" if met else "**no**"])
    print("### Targets\n\n" + table(["ratio", "target", "measured", "met"], rows))


if __name__ == "__main__":
    main()
