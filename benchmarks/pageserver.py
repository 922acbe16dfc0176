"""A loopback server of pre-rendered API pages, in its own process, built not to be the
bottleneck: a bare asyncio protocol that answers each request with a whole response it
assembles once and then keeps (up to ``CACHE_BYTES``).

It speaks just enough of the API for the benchmarks:

- ``GET /v3/submission?count=C[&nextpage_id=pK&nextpage_date=...]``: page K of a listing of
  ``--items`` submissions (``count`` items a page, the last page without ``nextpageKey``);
- the same with ``start_date``: one page of ``--window-items`` submissions (a day window);
  with ``--unique-windows`` each window's items carry ids of their own (the day and the
  item's place in it), so that a range of windows holds that many distinct submissions;
- ``GET /v3/submission?submission_id=ID``: a single lookup (the ids are those of
  ``Dataset.generate(LOOKUPS, SEED)``, ``LOOKUPS`` being ``--lookups``, by default ``POOL``).

Items are real list-form submissions from the emulator's data set, rendered once and reused
round-robin, so a listing of a million items costs the server no memory. ``--latency`` delays
every answer without blocking others.

Run: ``python benchmarks/pageserver.py --items 200000 [--latency 0.02]``; it prints
``listening on http://127.0.0.1:PORT`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from urllib.parse import parse_qs, urlsplit

import msgspec

from argos_async import ArgosClient
from argos_async.testing import ArgosEmulator, Dataset

POOL = 5_000  # distinct items rendered; pages cycle through them, lookups find them all
SEED = 7
PAGE_DATE = "2025-06-30T12:00:00.000Z"


class Pages:
    """Every response body the server can send, prepared up front or cheap to assemble."""

    def __init__(
        self, items: int, window_items: int, lookups: int = POOL, unique_windows: bool = False
    ) -> None:
        self.items = items
        self.window_items = window_items
        self.lookups = lookups
        self.unique_windows = unique_windows
        self._pool: list[bytes] = []
        self._singles: dict[str, bytes] = {}
        self._blobs: dict[int, bytes] = {}

    async def load(self) -> None:
        self._singles = {
            item["submission_id"]: b'{"Items":[' + msgspec.json.encode(item) + b"]}"
            for item in Dataset.generate(self.lookups, SEED).items
        }
        # The list form (fewer fields), exactly as the emulator sends it.
        async with (
            ArgosEmulator(submissions=POOL, seed=SEED) as emu,
            ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos,
        ):
            async for page in argos.iter_pages():
                self._pool.extend(bytes(raw) for raw in page.raw_items)

    def _window_items(self, day: str) -> bytes:
        """The window's items, each with an id of its own: 8 digits of the day, 8 of its place."""
        stem = day.replace("-", "")[:8].encode()
        pieces = []
        for i, item in enumerate(itertools.islice(itertools.cycle(self._pool), self.window_items)):
            head, _, rest = item.partition(b'"submission_id":"')
            _, _, tail = rest.partition(b'"')
            pieces.append(head + b'"submission_id":"' + stem + b"%08d" % i + b'"' + tail)
        return b",".join(pieces)

    def _items(self, count: int) -> bytes:
        blob = self._blobs.get(count)
        if blob is None:
            blob = b",".join(itertools.islice(itertools.cycle(self._pool), count))
            self._blobs[count] = blob
        return blob

    def body(self, query: dict[str, str]) -> bytes:
        if "submission_id" in query:
            return self._singles.get(query["submission_id"], b'{"Items":[]}')
        count = int(query.get("count", "50"))
        if "start_date" in query:
            if self.unique_windows:
                return b'{"Items":[' + self._window_items(query["start_date"]) + b"]}"
            return b'{"Items":[' + self._items(self.window_items) + b"]}"
        page = int(query.get("nextpage_id", "p0")[1:])
        first = page * count
        size = max(0, min(count, self.items - first))
        body = b'{"Items":[' + self._items(size) + b"]"
        if first + size < self.items:
            key = msgspec.json.encode({"id": f"p{page + 1}", "created_at": PAGE_DATE})
            body += b',"nextpageKey":' + key
        return body + b"}"


CACHE_BYTES = 512 * 1024 * 1024
"""How much of whole responses the server keeps, ready to send (200,000 items take ~160 MB)."""


class Responses:
    """Whole responses (head and body) by request target, kept while they fit in
    ``CACHE_BYTES``: assembling a 1.5 MB page costs fresh memory and copies every time, which
    made the server, not the client, the bottleneck of the fastest reader."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self._kept: dict[str, bytes] = {}
        self._size = 0

    def get(self, target: str) -> bytes:
        response = self._kept.get(target)
        if response is None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
            body = self.pages.body(query)
            response = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            if self._size + len(response) <= CACHE_BYTES:
                self._kept[target] = response
                self._size += len(response)
        return response


class Http(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests without bodies, one at a time per connection."""

    def __init__(self, responses: Responses, latency: float) -> None:
        self.responses = responses
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            response = self.responses.get(target)
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self._send, response)
            else:
                self._send(response)

    def _send(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(
    items: int,
    window_items: int,
    latency: float,
    port: int,
    lookups: int = POOL,
    unique_windows: bool = False,
) -> None:
    pages = Pages(items, window_items, lookups, unique_windows)
    await pages.load()
    loop = asyncio.get_running_loop()
    responses = Responses(pages)
    server = await loop.create_server(lambda: Http(responses, latency), "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--window-items", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--lookups",
        type=int,
        default=POOL,
        help="how many distinct ids single lookups find: those of Dataset.generate(N, SEED)",
    )
    parser.add_argument(
        "--unique-windows",
        action="store_true",
        help="give each day window's items ids of their own (distinct submissions per day)",
    )
    args = parser.parse_args()
    asyncio.run(
        serve(
            args.items,
            args.window_items,
            args.latency,
            args.port,
            args.lookups,
            args.unique_windows,
        )
    )


if __name__ == "__main__":
    main()
