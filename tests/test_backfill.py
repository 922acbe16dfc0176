"""Sharded backfills: exactly once across windows, bounded memory, checkpoints and resume."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import aclosing
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest

from argos_async import ArgosClient, CheckpointError, ServerError
from argos_async._backfill import windows_between
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = pytest.mark.anyio

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def client_for(emu: ArgosEmulator, **options: object) -> ArgosClient:
    return ArgosClient(api_key=emu.api_key, base_url=emu.url, backoff_base=0.001, **options)  # type: ignore[arg-type]


def test_windows_cover_the_range_without_gaps_or_overlaps() -> None:
    days = windows_between(date(2024, 2, 27), date(2024, 3, 2), 1)
    assert [(w.start, w.end) for w in days] == [
        (date(2024, 2, d), date(2024, 2, d)) for d in (27, 28, 29)
    ] + [(date(2024, 3, 1), date(2024, 3, 1)), (date(2024, 3, 2), date(2024, 3, 2))]
    weeks = windows_between(date(2024, 1, 1), date(2024, 1, 17), 7)
    assert [(w.start.day, w.end.day) for w in weeks if w.start and w.end] == [
        (1, 7),
        (8, 14),
        (15, 17),
    ]


async def test_four_shards_over_a_year_yield_every_submission_exactly_once() -> None:
    async with ArgosEmulator(submissions=20_000, seed=7) as emu, client_for(emu) as argos:
        ids = [s.submission_id async for s in argos.backfill(*YEAR, shards=4, page_size=500)]
        list_requests = [r for r in emu.requests if "submission_id" not in r.query]
    assert len(ids) == 20_000
    assert set(ids) == set(emu.dataset.ids)
    # One window a day, each asked for its own day only.
    days = {(r.query["start_date"], r.query["end_date"]) for r in list_requests}
    assert len(days) == 365
    assert all(start == end for start, end in days)


async def test_items_at_the_edges_of_days_come_exactly_once() -> None:
    async with ArgosEmulator(submissions=20_000, seed=7) as emu, client_for(emu) as argos:
        edges = {
            item["submission_id"]
            for item in emu.dataset.items
            if item["created_at"].endswith(("T00:00:00.000Z", "T23:59:59.999Z"))
        }
        counts = Counter([s.submission_id async for s in argos.backfill(*YEAR, shards=8)])
    assert len(edges) >= 10
    assert all(counts[i] == 1 for i in edges)
    assert set(counts.values()) == {1}


async def test_a_range_and_filters_match_the_plain_listing() -> None:
    async with ArgosEmulator(submissions=8_000, seed=3) as emu, client_for(emu) as argos:
        email = emu.dataset.heavy_email
        got = [
            s.submission_id
            async for s in argos.backfill(
                "2025-03-01", "2025-06-30", shards=3, page_size=20, email=email
            )
        ]
        expected = emu.dataset.expected_ids(
            email=email, start_date=date(2025, 3, 1), end_date=date(2025, 6, 30)
        )
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))


async def test_shards_work_in_parallel() -> None:
    async with (
        ArgosEmulator(submissions=2_000, seed=3, latency=0.03) as emu,
        client_for(emu) as argos,
    ):
        got = [s async for s in argos.backfill("2025-01-01", "2025-01-31", shards=4)]
    assert len(got) == len(emu.dataset.expected_ids(start_date="2025-01-01", end_date="2025-01-31"))
    assert emu.max_in_flight >= 4


async def test_buffered_pages_never_exceed_shards_times_read_ahead() -> None:
    shards, prefetch = 4, 1
    async with ArgosEmulator(submissions=4_000, seed=5) as emu, client_for(emu) as argos:
        consumed = 0
        most_ahead = 0
        async with aclosing(
            argos.backfill(*YEAR, shards=shards, page_size=8, prefetch=prefetch).pages()
        ) as pages:
            async for _page in pages:
                consumed += 1
                await asyncio.sleep(0.002)  # a slow consumer: the shards run ahead if they can
                fetched = sum(1 for r in emu.responses if r.status == 200)
                most_ahead = max(most_ahead, fetched - consumed)
        assert consumed > 365
    # Each shard holds the page it is handing over plus the one it reads ahead.
    assert most_ahead <= shards * (1 + prefetch)


async def test_a_checkpoint_resumes_every_window_and_skips_finished_ones(tmp_path: Path) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    async with ArgosEmulator(submissions=5_000, seed=11) as emu, client_for(emu) as argos:
        first: list[str] = []
        backfill = argos.backfill(*YEAR, shards=4, page_size=100, checkpoint=checkpoint)
        async with aclosing(backfill.pages()) as pages:
            async for page in pages:
                if backfill.stats.pages == 60:
                    break  # page 61 is received but left unconsumed: it must come again
                first.extend(s.submission_id for s in page.items)
        saved = json.loads(checkpoint.read_bytes())
        assert len(saved["done"]) + len(saved["cursors"]) > 0
        assert not (tmp_path / "backfill.ckpt.tmp").exists()

        emu.reset_stats()
        again = argos.backfill(*YEAR, shards=4, page_size=100, checkpoint=checkpoint)
        assert again.stats.windows_done == len(saved["done"])
        rest = [s.submission_id async for s in again]
        asked = {r.query["start_date"] for r in emu.requests}
        assert not asked & set(saved["done"])  # finished windows are not asked for again
        resumed = [r for r in emu.requests if "nextpage_id" in r.query]
        assert len(resumed) >= len(saved["cursors"])

        emu.reset_stats()
        assert [s async for s in argos.backfill(*YEAR, checkpoint=checkpoint)] == []
        assert emu.requests == []  # everything was done
    assert len(first) + len(rest) == 5_000
    assert set(first) | set(rest) == set(emu.dataset.ids)


async def test_a_checkpoint_made_for_other_arguments_is_refused(tmp_path: Path) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    async with ArgosEmulator(submissions=500, seed=11) as emu, client_for(emu) as argos:
        async for _ in argos.backfill("2025-01-01", "2025-01-10", checkpoint=checkpoint):
            pass
        emu.reset_stats()
        with pytest.raises(CheckpointError, match="end_date"):
            argos.backfill("2025-01-01", "2025-01-11", checkpoint=checkpoint)
        with pytest.raises(CheckpointError, match="filters"):
            argos.backfill("2025-01-01", "2025-01-10", email="a@example.com", checkpoint=checkpoint)
        with pytest.raises(ValueError, match="window_days"):
            argos.backfill("2025-01-01", "2025-01-10", window_days=2, checkpoint=checkpoint)
        assert emu.requests == []
    assert "a@example.com" not in checkpoint.read_text()  # filters are kept as a digest
    checkpoint.write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        ArgosClient(api_key="k").backfill("2025-01-01", "2025-01-10", checkpoint=checkpoint)


async def test_after_a_failure_the_same_checkpoint_finishes_the_job_exactly_once(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    # Four failures in a row, two shards without read-ahead: one shard's retry fails as well,
    # and the resumed run meets at most the two that are left, each retried once.
    plan = FaultPlan([Status(500, at=range(40, 44))])
    options: dict[str, Any] = {
        "shards": 2,
        "page_size": 40,
        "prefetch": 0,
        "checkpoint": checkpoint,
    }
    async with ArgosEmulator(submissions=3_000, seed=12, faults=plan) as emu:
        seen: list[str] = []
        async with client_for(emu, max_retries=1) as argos:
            with pytest.raises(ServerError):
                async for sub in argos.backfill(*YEAR, **options):
                    seen.append(sub.submission_id)
            async for sub in argos.backfill(*YEAR, **options):
                seen.append(sub.submission_id)
    assert sorted(seen) == sorted(emu.dataset.ids)


async def test_cancelling_through_an_anyio_scope_leaves_nothing_behind() -> None:
    # The consumer is cancelled by anyio (as Starlette cancels a streaming response) while
    # shards wait to hand over pages; the autouse fixtures fail the test on any leaked task
    # or unretrieved exception.
    async with (
        ArgosEmulator(submissions=3_000, seed=12, latency=0.001) as emu,
        client_for(emu) as argos,
    ):
        for attempt in range(15):
            with anyio.move_on_after(0.02 + attempt * 0.003):
                async with aclosing(
                    argos.backfill("2025-12-01", "2025-12-31", shards=2, page_size=5).pages()
                ) as pages:
                    async for _ in pages:
                        await asyncio.sleep(0)
        await asyncio.sleep(0.1)


async def test_bad_backfill_arguments_fail_before_any_request(tmp_path: Path) -> None:
    async with ArgosEmulator(submissions=10, seed=1) as emu, client_for(emu) as argos:
        with pytest.raises(ValueError, match="shards"):
            argos.backfill("2025-01-01", "2025-01-02", shards=0)
        with pytest.raises(ValueError, match="end_date"):
            argos.backfill("2025-01-02", "2025-01-01")
        with pytest.raises(ValueError, match="end_date"):
            argos.backfill(None, "2025-01-01")
        with pytest.raises(ValueError, match="page_size"):
            argos.backfill("2025-01-01", page_size=0)
        with pytest.raises(TypeError, match="checkpoint"):
            argos.backfill("2025-01-01", checkpoint=3)  # type: ignore[arg-type]
        assert emu.requests == []
