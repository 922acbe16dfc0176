"""What observability costs: the client with nothing listening, with a no-op event hook on
every kind, and with ``argos_async.otel.instrument()`` on SDK providers (a batch span
processor whose exporter drops the spans, and a meter provider with an in-memory reader).

Two workloads, as in ``run.py``: (a) streaming 200,000 items at page_size 2000, and (f) a
fan-out of 20,000 lookups at concurrency 256 with 5 ms latency, where the client's CPU is the
limit. Runs alternate between the variants (each in turn first); medians, and each variant's
ratio to the one with nothing listening. Run: ``python benchmarks/otel_cost.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timezone
from typing import Any

import peers
from _harness import Stopwatch, table
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pageserver import SEED
from run import page_server

from argos_async import ArgosClient
from argos_async.otel import instrument
from argos_async.testing import Dataset


class _Dropped(SpanExporter):
    """An exporter that sends nothing anywhere: the SDK's work without a network's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _noop(event: object) -> None:
    pass


Setup = Callable[[ArgosClient], Callable[[], None]]
"""Switches a variant on for a client; returns what switches it off."""


def _nothing(client: ArgosClient) -> Callable[[], None]:
    return lambda: None


def _otel(client: ArgosClient) -> Callable[[], None]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(client, tracer_provider=tracer_provider, meter_provider=meter_provider)

    def off() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return off


VARIANTS: dict[str, tuple[dict[str, Any], Setup]] = {
    "nothing listening": ({}, _nothing),
    "no-op hooks": (
        {"event_hooks": {k: [_noop] for k in ("request", "response", "retry")}},
        _nothing,
    ),
    "otel instrument()": ({}, _otel),
}


async def _stream(url: str, variant: str) -> int:
    options, setup = VARIANTS[variant]
    seen = 0
    async with ArgosClient(api_key=peers.API_KEY, base_url=url, **options) as client:
        off = setup(client)
        async for _sub in client.iter_submissions(page_size=2000):
            seen += 1
    off()
    return seen


async def _fanout(url: str, variant: str, ids: list[str]) -> int:
    options, setup = VARIANTS[variant]
    found = 0
    async with ArgosClient(api_key=peers.API_KEY, base_url=url, **options) as client:
        off = setup(client)
        async for result in client.batch_get_submissions(ids, concurrency=256):
            found += result.ok
    off()
    return found


def _measured(expected: int, run: Coroutine[Any, Any, int]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    with Stopwatch() as watch:
        seen = asyncio.run(run)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if seen != expected:
        raise RuntimeError(f"expected {expected}, saw {seen}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return watch.seconds, cpu


def _order(run: int) -> list[str]:
    names = list(VARIANTS)
    shift = run % len(names)
    return names[shift:] + names[:shift]


def stream(runs: int) -> str:
    items = 200_000
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with page_server("--items", str(items)) as url:
        _measured(items, _stream(url, "nothing listening"))  # unmeasured: the server warms up
        for run in range(runs):
            for name in _order(run):
                seconds[name].append(_measured(items, _stream(url, name))[0])
    rate = {name: items / statistics.median(s) for name, s in seconds.items()}
    base = rate["nothing listening"]
    rows = [[name, f"{r:,.0f}", f"{r / base:.3f}"] for name, r in rate.items()]
    return table(["(a) stream 200,000 items", "items/s", "vs nothing listening"], rows)


def fanout(runs: int) -> str:
    lookups = 20_000
    ids = list(Dataset.generate(lookups, SEED).ids)[:lookups]
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    server = ("--items", "1000", "--latency", "0.005", "--lookups", str(lookups))
    with page_server(*server) as url:
        _measured(lookups, _fanout(url, "nothing listening", ids))  # unmeasured warm-up
        for run in range(runs):
            for name in _order(run):
                seconds, used = _measured(lookups, _fanout(url, name, ids))
                wall[name].append(seconds)
                cpu[name].append(used)
    rate = {name: lookups / statistics.median(s) for name, s in wall.items()}
    per = {name: statistics.median(c) / lookups * 1e6 for name, c in cpu.items()}
    base, base_cpu = rate["nothing listening"], per["nothing listening"]
    rows = [
        [
            name,
            f"{rate[name]:,.0f}",
            f"{rate[name] / base:.3f}",
            f"{per[name]:.0f}",
            f"{per[name] / base_cpu:.3f}",
        ]
        for name in VARIANTS
    ]
    headers = [
        "(f) 20,000 lookups, concurrency 256, 5 ms",
        "requests/s",
        "rate vs nothing",
        "CPU µs/lookup",
        "CPU vs nothing",
    ]
    return table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"argos_async observability cost, {stamp}; {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; median of {args.runs} runs\n"
    )
    print(stream(args.runs) + "\n", flush=True)
    print(fanout(args.runs))


if __name__ == "__main__":
    main()
