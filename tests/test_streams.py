"""Every stream object closes the same way: leaving ``async with`` releases its requests at once,
even while a name still refers to the stream (a bare loop would leave that to the garbage
collector, or to the end of the scope)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from support import wait_until

from argos_async import ArgosClient, Stream
from argos_async.testing import ArgosEmulator, Delay, FaultPlan

pytestmark = pytest.mark.anyio

HOLD = 5.0
"""How long the server holds the requests that only a cancellation can end in time."""

OPEN: dict[str, Callable[[ArgosClient, list[str]], Stream[Any]]] = {
    "iter_submissions": lambda argos, ids: argos.iter_submissions(page_size=500),
    "iter_pages": lambda argos, ids: argos.iter_pages(page_size=500),
    "batch_get_submissions": lambda argos, ids: argos.batch_get_submissions(ids, concurrency=4),
    "backfill": lambda argos, ids: argos.backfill("2025-01-01", "2025-12-31", shards=4),
    "backfill.pages": lambda argos, ids: argos.backfill(
        "2025-01-01", "2025-12-31", shards=4
    ).pages(),
}


# The first request is answered; every one after it is held.
@pytest.mark.parametrize("name", list(OPEN))
@pytest.mark.argos_emulator(
    submissions=3_000,
    seed=8,
    faults=FaultPlan([Delay(HOLD, at=range(2, 10_000), path="/v3/submission")]),
)
async def test_leaving_async_with_releases_every_request_while_the_stream_is_still_named(
    name: str, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    stream = OPEN[name](argos_client, list(argos_emulator.dataset.ids[:50]))
    async with stream:
        async for _ in stream:
            # Something is held at the server for the stream: read-ahead, the other
            # lookups or shards.
            await wait_until(lambda: argos_emulator.in_flight >= 1)
            break
    left = asyncio.get_running_loop().time()
    await wait_until(lambda: argos_emulator.in_flight == 0, timeout=1.0)
    assert asyncio.get_running_loop().time() - left < 1.0
    assert isinstance(stream, Stream)  # still named: only the block's exit released it
    assert all(r.fault is None for r in argos_emulator.responses)  # no held request was answered


@pytest.mark.argos_emulator(submissions=30, seed=8)
async def test_a_stream_can_be_closed_twice_and_then_yields_nothing(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    stream = argos_client.iter_submissions(page_size=10)
    first = await anext(stream)
    assert first.submission_id == argos_emulator.dataset.expected_ids()[0]
    await stream.aclose()
    await stream.aclose()
    assert [s async for s in stream] == []
