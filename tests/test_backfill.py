"""Sharded backfills: exactly once across windows, bounded memory, checkpoints and resume."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import wait_until

from argos_async import ArgosClient, CheckpointError, Page, ServerError, Stream
from argos_async._backfill import Backfill
from argos_async._checkpoint import Checkpoint
from argos_async._plan import Window, windows_between
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = pytest.mark.anyio

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


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


@pytest.mark.argos_emulator(submissions=20_000, seed=7)
async def test_four_shards_over_a_year_yield_every_submission_exactly_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    ids = [s.submission_id async for s in argos_client.backfill(*YEAR, shards=4, page_size=500)]
    list_requests = [r for r in argos_emulator.requests if "submission_id" not in r.query]
    assert len(ids) == 20_000
    assert set(ids) == set(argos_emulator.dataset.ids)
    # One window a day, each asked for its own day only.
    days = {(r.query["start_date"], r.query["end_date"]) for r in list_requests}
    assert len(days) == 365
    assert all(start == end for start, end in days)


@pytest.mark.argos_emulator(submissions=20_000, seed=7)
async def test_items_at_the_edges_of_days_come_exactly_once(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    edges = {
        item["submission_id"]
        for item in argos_emulator.dataset.items
        if item["created_at"].endswith(("T00:00:00.000Z", "T23:59:59.999Z"))
    }
    counts = Counter([s.submission_id async for s in argos_client.backfill(*YEAR, shards=8)])
    assert len(edges) >= 10
    assert all(counts[i] == 1 for i in edges)
    assert set(counts.values()) == {1}


@pytest.mark.argos_emulator(submissions=8_000, seed=3)
async def test_a_range_and_filters_match_the_plain_listing(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    email = argos_emulator.dataset.heavy_email
    got = [
        s.submission_id
        async for s in argos_client.backfill(
            "2025-03-01", "2025-06-30", shards=3, page_size=20, email=email
        )
    ]
    expected = argos_emulator.dataset.expected_ids(
        email=email, start_date=date(2025, 3, 1), end_date=date(2025, 6, 30)
    )
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))


@pytest.mark.argos_emulator(submissions=2_000, seed=3, latency=0.03)
async def test_shards_work_in_parallel(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    got = [s async for s in argos_client.backfill("2025-01-01", "2025-01-31", shards=4)]
    expected = argos_emulator.dataset.expected_ids(start_date="2025-01-01", end_date="2025-01-31")
    assert len(got) == len(expected)
    assert argos_emulator.max_in_flight >= 4


@pytest.mark.argos_emulator(submissions=4_000, seed=5)
async def test_buffered_pages_never_exceed_shards_times_read_ahead(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    shards, prefetch = 4, 1
    consumed = 0
    most_ahead = 0
    async with aclosing(
        argos_client.with_options(prefetch=prefetch)
        .backfill(*YEAR, shards=shards, page_size=8)
        .pages()
    ) as pages:
        async for _page in pages:
            consumed += 1
            await asyncio.sleep(0.002)  # a slow consumer: the shards run ahead if they can
            fetched = sum(1 for r in argos_emulator.responses if r.status == 200)
            most_ahead = max(most_ahead, fetched - consumed)
    assert consumed > 365
    # Each shard holds the page it is handing over plus the one it reads ahead.
    assert most_ahead <= shards * (1 + prefetch)


@pytest.mark.argos_emulator(submissions=5_000, seed=11)
async def test_a_checkpoint_resumes_every_window_and_skips_finished_ones(
    tmp_path: Path, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    first: list[str] = []
    backfill = argos_client.backfill(*YEAR, shards=4, page_size=100, checkpoint=checkpoint)
    async with aclosing(backfill.pages()) as pages:
        async for page in pages:
            if backfill.stats.pages == 60:
                break  # page 61 is received but left unconsumed: it must come again
            first.extend(s.submission_id for s in page.items)
    saved = json.loads(checkpoint.read_bytes())
    assert len(saved["done"]) + len(saved["cursors"]) > 0
    assert os.listdir(tmp_path) == [checkpoint.name]  # no temporary file left behind

    argos_emulator.reset_stats()
    again = argos_client.backfill(*YEAR, shards=4, page_size=100, checkpoint=checkpoint)
    assert again.stats.windows_done == len(saved["done"])
    rest = [s.submission_id async for s in again]
    asked = {r.query["start_date"] for r in argos_emulator.requests}
    assert not asked & set(saved["done"])  # finished windows are not asked for again
    resumed = [r for r in argos_emulator.requests if "nextpage_id" in r.query]
    assert len(resumed) >= len(saved["cursors"])

    argos_emulator.reset_stats()
    assert [s async for s in argos_client.backfill(*YEAR, checkpoint=checkpoint)] == []
    assert argos_emulator.requests == []  # everything was done
    assert len(first) + len(rest) == 5_000
    assert set(first) | set(rest) == set(argos_emulator.dataset.ids)


@pytest.mark.argos_emulator(submissions=500, seed=11)
async def test_a_checkpoint_made_for_other_arguments_is_refused(
    tmp_path: Path, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    checkpoint = tmp_path / "backfill.ckpt"
    async for _ in argos_client.backfill("2025-01-01", "2025-01-10", checkpoint=checkpoint):
        pass
    argos_emulator.reset_stats()
    with pytest.raises(CheckpointError, match="end_date"):
        argos_client.backfill("2025-01-01", "2025-01-11", checkpoint=checkpoint)
    with pytest.raises(CheckpointError, match="filters"):
        argos_client.backfill(
            "2025-01-01", "2025-01-10", email="a@example.com", checkpoint=checkpoint
        )
    with pytest.raises(ValueError, match="window_days"):
        argos_client.backfill("2025-01-01", "2025-01-10", window_days=2, checkpoint=checkpoint)
    assert argos_emulator.requests == []
    assert "a@example.com" not in checkpoint.read_text()  # filters are kept as a digest
    checkpoint.write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        ArgosClient(api_key="k").backfill("2025-01-01", "2025-01-10", checkpoint=checkpoint)


# Four failures in a row, two shards without read-ahead: one shard's retry fails as well,
# and the resumed run meets at most the two that are left, each retried once.
@pytest.mark.argos_emulator(
    submissions=3_000, seed=12, faults=FaultPlan([Status(500, at=range(40, 44))])
)
@pytest.mark.argos_client(max_retries=1, prefetch=0)
async def test_after_a_failure_the_same_checkpoint_finishes_the_job_exactly_once(
    tmp_path: Path, argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    options: dict[str, Any] = {
        "shards": 2,
        "page_size": 40,
        "checkpoint": tmp_path / "backfill.ckpt",
    }
    seen: list[str] = []
    with pytest.raises(ServerError):
        async for sub in argos_client.backfill(*YEAR, **options):
            seen.append(sub.submission_id)
    async for sub in argos_client.backfill(*YEAR, **options):
        seen.append(sub.submission_id)
    assert sorted(seen) == sorted(argos_emulator.dataset.ids)


@pytest.mark.argos_emulator(submissions=3_000, seed=12, latency=0.001)
async def test_cancelling_through_an_anyio_scope_leaves_nothing_behind(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    # The consumer is cancelled by anyio (as Starlette cancels a streaming response) while
    # shards wait to hand over pages; the autouse fixtures fail the test on any leaked task
    # or unretrieved exception.
    for attempt in range(15):
        with anyio.move_on_after(0.02 + attempt * 0.003):
            async with aclosing(
                argos_client.backfill("2025-12-01", "2025-12-31", shards=2, page_size=5).pages()
            ) as pages:
                async for _ in pages:
                    await asyncio.sleep(0)
    # The requests the cancelled shards had in flight ended at the server too; then the
    # client and the emulator close, and the autouse fixtures look for what was left.
    await wait_until(lambda: argos_emulator.in_flight == 0)


@pytest.mark.argos_emulator(submissions=10, seed=1)
async def test_bad_backfill_arguments_fail_before_any_request(
    argos_emulator: ArgosEmulator, argos_client: ArgosClient
) -> None:
    with pytest.raises(ValueError, match="shards"):
        argos_client.backfill("2025-01-01", "2025-01-02", shards=0)
    with pytest.raises(ValueError, match="end_date"):
        argos_client.backfill("2025-01-02", "2025-01-01")
    with pytest.raises(ValueError, match="end_date"):
        argos_client.backfill(None, "2025-01-01")
    with pytest.raises(ValueError, match="page_size"):
        argos_client.backfill("2025-01-01", page_size=0)
    with pytest.raises(TypeError, match="checkpoint"):
        argos_client.backfill("2025-01-01", checkpoint=3)  # type: ignore[arg-type]
    assert argos_emulator.requests == []


async def test_a_busy_window_never_leaves_the_other_shard_idle() -> None:
    latency, heavy_pages, light_windows = 0.02, 20, 15
    windows = windows_between(date(2025, 1, 1), date(2025, 1, 1 + light_windows), 1)
    heavy = windows[0].name  # taken first, by one shard, for the whole run
    finished: dict[str, float] = {}

    async def list_window(window: Window, cursor: str | None) -> AsyncGenerator[Page, None]:
        pages = heavy_pages if window.name == heavy else 1
        for n in range(pages):
            await asyncio.sleep(latency)
            yield Page(items=[], next_key=None, cursor=None if n == pages - 1 else str(n))
        finished[window.name] = time.monotonic()

    backfill = Backfill(
        windows,
        lambda w, c: Stream(list_window(w, c)),
        lambda w, c: pytest.fail("pages() lists decoded pages"),
        shards=2,
        checkpoint=None,
    )
    started = time.monotonic()
    async with aclosing(backfill.pages()) as pages:
        count = sum([1 async for _ in pages])
    elapsed = time.monotonic() - started
    assert count == heavy_pages + light_windows
    assert backfill.stats.windows_done == len(windows)
    lights = [at for name, at in finished.items() if name != heavy]
    assert len(lights) == light_windows
    assert max(lights) < finished[heavy]  # the other shard took every light window meanwhile
    # Within 50 % of the heavy window's own time: the windows in turn would take 1.75 times it.
    alone = heavy_pages * latency
    assert elapsed < 1.5 * alone


def new_checkpoint(path: Path) -> Checkpoint:
    checkpoint = Checkpoint(path, {"start_date": "2025-01-01"})
    checkpoint.record("2025-01-01", "cursor-1")
    checkpoint.save()
    return checkpoint


def test_a_checkpoint_is_written_to_a_temporary_file_synced_then_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "job.ckpt"
    checkpoint = new_checkpoint(path)
    before = path.read_bytes()
    events: list[tuple[str, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            events.append(("fsync directory", path.read_bytes() != before))
        else:
            events.append(("fsync file", path.read_bytes() == before))
        real_fsync(descriptor)

    def replace(source: str, target: Path) -> None:
        # The new content is complete in a file beside the old one, which is still whole.
        complete = json.loads(Path(source).read_bytes())["done"] == ["2025-01-01"]
        beside = Path(source).parent == path.parent and Path(source) != path
        events.append(("replace", complete and beside and path.read_bytes() == before))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    checkpoint.record("2025-01-01", None)
    checkpoint.save()
    assert events == [("fsync file", True), ("replace", True), ("fsync directory", True)]
    assert Checkpoint.load_or_new(path, checkpoint.arguments).done == {"2025-01-01"}


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_checkpoint_save_leaves_the_previous_one_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "job.ckpt"
    checkpoint = new_checkpoint(path)

    def fail(*args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, fail)
    checkpoint.record("2025-01-01", None)
    with pytest.raises(OSError, match="Input/output"):
        checkpoint.save()
    monkeypatch.undo()
    previous = Checkpoint.load_or_new(path, checkpoint.arguments)
    assert previous.from_file
    assert previous.cursors == {"2025-01-01": "cursor-1"}
    assert previous.done == set()
    assert sorted(tmp_path.iterdir()) == [path]  # and no half-written file beside it


def test_two_writers_of_one_checkpoint_never_write_into_each_others_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "job.ckpt"
    real_fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        time.sleep(0.0005)  # widens the moment between writing and renaming
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        checkpoint = Checkpoint(path, {"start_date": "2025-01-01"})
        try:
            for n in range(60):
                checkpoint.record(name, f"{name}-{n}" * 50)
                checkpoint.save()
                Checkpoint.load_or_new(path, checkpoint.arguments)  # whole, whoever wrote it
        except BaseException as error:  # reported below, with the other writer's
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not failures
    assert sorted(tmp_path.iterdir()) == [path]


async def test_an_unreadable_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    directory = tmp_path / "backfill.ckpt"
    directory.mkdir()
    with pytest.raises(CheckpointError, match="cannot be read"):
        ArgosClient(api_key="k").backfill("2025-01-01", "2025-01-10", checkpoint=directory)
