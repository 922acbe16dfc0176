"""The export floor: what an archive of a listing costs with no library logic at all.

aiohttp GETs page by page (following ``nextpageKey``), msgspec splits each page into its items
as ``msgspec.Raw`` (no Structs), and each page is one write of its lines, a flush and an fsync.
No checkpoint, no retries, no resume: the least any durable export can do. It imports only
aiohttp and msgspec, so timing it as a whole process (``run.py``, scenario g) compares it
fairly with ``python -m argos_async export``.

Run: ``python benchmarks/export_floor.py URL OUT [PAGE_SIZE]``; prints the items written.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import msgspec

API_KEY = "benchmark-key"
PATH = "/v3/submission"


class _Key(msgspec.Struct):
    id: str
    created_at: str


class _Page(msgspec.Struct):
    Items: list[msgspec.Raw]
    nextpageKey: _Key | None = None


async def export(url: str, out: str, page_size: int) -> int:
    decoder = msgspec.json.Decoder(_Page)
    written = 0
    params = {"count": str(page_size)}
    # Blocking writes and fsyncs on the loop, as the plainest loop does them.
    with open(out, "wb") as file:  # noqa: ASYNC230
        async with aiohttp.ClientSession(url, headers={"x-api-key": API_KEY}) as session:
            while True:
                async with session.get(PATH, params=params) as response:
                    page = decoder.decode(await response.read())
                if page.Items:
                    file.write(b"\n".join(page.Items) + b"\n")
                file.flush()
                os.fsync(file.fileno())
                written += len(page.Items)
                if page.nextpageKey is None:
                    return written
                params = {
                    "count": str(page_size),
                    "nextpage_id": page.nextpageKey.id,
                    "nextpage_date": page.nextpageKey.created_at,
                }


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit("usage: export_floor.py URL OUT [PAGE_SIZE]")
    page_size = int(argv[2]) if len(argv) == 3 else 2000
    print(asyncio.run(export(argv[0], argv[1], page_size)))


if __name__ == "__main__":
    main(sys.argv[1:])
