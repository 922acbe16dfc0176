"""Backfill: the same range pulled with 1 shard and with 8, server page latency 50 ms.

One cursor pulls one page at a time, so a long range at API latency is slow; day windows
pulled in parallel are what ``ArgosClient.backfill`` is for. Both runs use the library with
defaults (read-ahead on) against one emulator process, alternating; the table reports the
median time of each and the speed-up of 8 shards over 1.

Run: ``python benchmarks/backfill.py [--runs 3] [--days 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, timedelta

from _harness import Stopwatch, emulator_process, median, table

from argos_async import ArgosClient

LATENCY = 0.050
START = date(2025, 1, 1)


async def pull(url: str, api_key: str, days: int, shards: int) -> int:
    end = START + timedelta(days=days - 1)
    async with ArgosClient(api_key=api_key, base_url=url) as argos:
        count = 0
        async for page in argos.backfill(START, end, shards=shards).pages():
            count += len(page.items)
        return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()

    seconds: dict[int, list[float]] = {1: [], 8: []}
    counts: set[int] = set()
    with emulator_process("--submissions", "20000", "--latency", str(LATENCY)) as srv:
        for _ in range(args.runs):
            for shards in seconds:
                with Stopwatch() as watch:
                    counts.add(asyncio.run(pull(srv.url, srv.api_key, args.days, shards)))
                seconds[shards].append(watch.seconds)
    assert len(counts) == 1, counts  # every run saw the same submissions

    one = median(seconds[1])
    rows = [
        [
            f"{shards} shard{'s' if shards > 1 else ''}",
            f"{median(s):.2f}",
            f"{one / median(s):.1f}x",
        ]
        for shards, s in seconds.items()
    ]
    print(
        f"Backfill: {args.days} days ({counts.pop():,} submissions), page latency "
        f"{LATENCY * 1000:.0f} ms, median of {args.runs} runs\n"
    )
    print(table(["backfill", "seconds", "speed-up"], rows))


if __name__ == "__main__":
    main()
