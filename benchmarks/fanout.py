"""Fan-out: 5,000 lookups by submission_id at concurrency 64, server latency 20 ms.

The bound is concurrency / latency = 3,200 requests per second. Two clients are run side by
side, alternating, against one emulator process:

- floor: aiohttp with an asyncio.Semaphore and asyncio.as_completed over every id, decoding
  each body with a msgspec Struct; no library logic at all (and, unlike the library, it
  creates every task up front);
- argos_async: ``ArgosClient.batch_get_submissions(ids, concurrency=64)`` with defaults.

Run: ``python benchmarks/fanout.py [--runs 3] [--lookups 5000]``.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import msgspec
from _harness import Stopwatch, emulator_process, median, table

from argos_async import ArgosClient

CONCURRENCY = 64
LATENCY = 0.020


class _Item(msgspec.Struct):
    submission_id: str


class _Envelope(msgspec.Struct):
    Items: list[_Item]


async def floor(url: str, api_key: str, ids: list[str]) -> int:
    decoder = msgspec.json.Decoder(_Envelope)
    gate = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def one(submission_id: str) -> int:
            async with (
                gate,
                session.get(
                    "/v3/submission",
                    params={"submission_id": submission_id},
                    headers={"x-api-key": api_key},
                ) as response,
            ):
                return len(decoder.decode(await response.read()).Items)

        found = 0
        for done in asyncio.as_completed([one(i) for i in ids]):
            found += await done
        return found


async def library(url: str, api_key: str, ids: list[str]) -> int:
    async with ArgosClient(api_key=api_key, base_url=url) as argos:
        found = 0
        async for result in argos.batch_get_submissions(ids, concurrency=CONCURRENCY):
            found += result.ok
        return found


async def lookup_ids(url: str, api_key: str, count: int) -> list[str]:
    async with ArgosClient(api_key=api_key, base_url=url) as argos:
        return [s.submission_id async for s in argos.iter_submissions(max_items=count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=5_000)
    args = parser.parse_args()

    peers = {"floor (aiohttp + msgspec)": floor, "argos_async": library}
    rates: dict[str, list[float]] = {name: [] for name in peers}
    with emulator_process("--submissions", str(args.lookups), "--latency", str(LATENCY)) as srv:
        ids = asyncio.run(lookup_ids(srv.url, srv.api_key, args.lookups))
        for _ in range(args.runs):
            for name, run in peers.items():  # alternate, so that noise hits both alike
                with Stopwatch() as watch:
                    found = asyncio.run(run(srv.url, srv.api_key, ids))
                assert found == len(ids), (name, found)
                rates[name].append(len(ids) / watch.seconds)

    bound = CONCURRENCY / LATENCY
    floor_rate = median(rates["floor (aiohttp + msgspec)"])
    rows = [
        [
            name,
            f"{median(r):,.0f}",
            f"{median(r) / bound:.2f}",
            f"{median(r) / floor_rate:.2f}x",
        ]
        for name, r in rates.items()
    ]
    print(
        f"Fan-out: {args.lookups:,} lookups, concurrency {CONCURRENCY}, server latency "
        f"{LATENCY * 1000:.0f} ms, median of {args.runs} runs\n"
    )
    print(table(["client", "requests/s", "of the 3,200/s bound", "vs floor"], rows))


if __name__ == "__main__":
    main()
