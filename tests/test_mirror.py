"""The mirror (``argos_async.dlt``) against the emulator over loopback, into DuckDB and into a
real PostgreSQL server, with the same assertions on both."""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
import pyarrow.parquet as pq
import pytest
from mirror_support import (
    DATASET,
    START,
    TODAY,
    Target,
    assert_mirrors,
    emulator,
    make_target,
    run_mirror,
    source_arguments,
)
from pg import PostgresServer

import argos_async.dlt
from argos_async import ArgosClient
from argos_async.dlt import argos_source
from argos_async.testing import ArgosEmulator, FaultPlan, Status

pytestmark = pytest.mark.anyio

LAG = 3
WINDOW_START = TODAY - timedelta(days=LAG)
"""A run after the first one (on the same day) lists WINDOW_START..TODAY again."""


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    postgres: PostgresServer | None = None
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
    return make_target(request.param, tmp_path, postgres)


@pytest.fixture
def duckdb_target(tmp_path: Path) -> Target:
    return make_target("duckdb", tmp_path, None)


def _created(item: dict[str, Any]) -> date:
    return date.fromisoformat(item["created_at"][:10])


def _pick(emu: ArgosEmulator, *, results: tuple[str | None, ...], before: bool) -> list[str]:
    """Ids of submissions with a kyc.result among ``results``, created before the window a
    later run lists again (``before``) or within it."""
    return [
        item["submission_id"]
        for item in emu.dataset.items
        if (item.get("kyc") or {}).get("result") in results
        and (_created(item) < WINDOW_START) is before
    ]


def _listed_days(emu: ArgosEmulator) -> list[str]:
    return sorted(
        r.query["start_date"]
        for r in emu.requests
        if "start_date" in r.query and "nextpage_id" not in r.query
    )


def _lookups(emu: ArgosEmulator) -> int:
    return sum("submission_id" in r.query for r in emu.requests)


def _days(first: date, last: date) -> list[str]:
    return [date.fromordinal(d).isoformat() for d in range(first.toordinal(), last.toordinal() + 1)]


async def test_the_first_run_backfills_every_submission_once_as_sent(target: Target) -> None:
    async with emulator() as emu:
        result = await run_mirror(target, emu)
        async with ArgosClient(api_key=emu.api_key, base_url=emu.url) as argos:
            sent = {
                msgspec.json.decode(raw)["submission_id"]: bytes(raw)
                async for page in argos.iter_raw_pages()
                for raw in page.items
            }
        table = assert_mirrors(target, emu)
        # Day windows, each listed once by the sharded backfill.
        assert _listed_days(emu) == _days(START, TODAY)
        assert _lookups(emu) == 0
    n = len(sent)
    assert (result.rows, result.new, result.changed, result.deleted) == (n, n, 0, 0)
    assert (result.listed, result.looked_up, result.deleted_rows) == (n, 0, 0)
    # raw is the item byte for byte, and the database's md5 of it is the bytes' MD5.
    assert {sid: row["raw"].encode() for sid, row in table.items()} == sent
    digests = dict(target.query(f"SELECT submission_id, md5(raw) FROM {DATASET}.submissions"))
    assert digests == {sid: hashlib.md5(body).hexdigest() for sid, body in sent.items()}
    types = dict(
        target.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'submissions'",
            DATASET,
        )
    )
    assert {name: types[name].lower() for name in ("created_at", "updated_at", "deleted_at")} == (
        dict.fromkeys(("created_at", "updated_at", "deleted_at"), "timestamp with time zone")
    )
    assert types["deleted"].lower() == "boolean"
    assert {types[name].lower() for name in ("submission_id", "kyc_result", "raw")} <= {
        "text",
        "varchar",
        "character varying",
    }


async def test_a_late_decision_reaches_the_table_however_old(target: Target) -> None:
    async with emulator() as emu:
        await run_mirror(target, emu)
        old_pending = _pick(emu, results=("pending",), before=True)[0]
        old_incomplete = _pick(emu, results=("incomplete",), before=True)[0]
        recent = _pick(emu, results=("approved",), before=False)[0]
        emu.update(old_pending, kyc={"result": "approved"})
        emu.update(old_incomplete, kyc={"result": "rejected"})
        emu.update(recent, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        # As the table holds them (emu.dataset is the data as generated).
        open_before = len(_pick(emu, results=("pending", "incomplete"), before=True))
        emu.reset_stats()

        result = await run_mirror(target, emu)
        table = assert_mirrors(target, emu)
        # The window again, and a lookup of every open one before it (however old).
        assert _listed_days(emu) == _days(WINDOW_START, TODAY)
        assert _lookups(emu) == result.looked_up == open_before
    assert (result.new, result.changed, result.deleted) == (0, 3, 0)
    assert table[old_pending]["kyc_result"] == "approved"
    assert table[old_incomplete]["kyc_result"] == "rejected"
    assert table[recent]["aml_status"] == "Red Flag"


async def test_a_run_with_nothing_changed_writes_no_row(duckdb_target: Target) -> None:
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        before = duckdb_target.rows()
        result = await run_mirror(duckdb_target, emu)
    assert (result.new, result.changed, result.deleted) == (0, 0, 0)
    assert result.looked_up > 0
    assert result.listed > 0
    trace = duckdb_target.pipeline().last_trace
    assert trace is not None
    assert trace.last_normalize_info is not None
    assert trace.last_normalize_info.row_counts.get("submissions", 0) == 0
    assert duckdb_target.rows() == before


async def test_a_submission_the_api_no_longer_has_is_marked_deleted(target: Target) -> None:
    async with emulator() as emu:
        await run_mirror(target, emu)
        old_open = _pick(emu, results=("pending",), before=True)[0]
        recent = _pick(emu, results=("approved", "rejected"), before=False)[0]
        last_seen = {sid: emu.get(sid) for sid in (old_open, recent)}
        emu.delete(old_open)  # found gone when looked up as an open one
        emu.delete(recent)  # found gone when the window is listed again
        result = await run_mirror(target, emu)
        assert_mirrors(target, emu, deleted=last_seen)  # type: ignore[arg-type]
        assert (result.deleted, result.changed, result.deleted_rows) == (2, 0, 2)
        assert result.rows == len(emu.dataset)

        again = await run_mirror(target, emu)
        assert_mirrors(target, emu, deleted=last_seen)  # type: ignore[arg-type]
    assert (again.deleted, again.changed, again.new, again.deleted_rows) == (0, 0, 0, 2)


async def test_each_run_lists_the_days_since_the_last_complete_one_and_the_lag_days_again(
    duckdb_target: Target,
) -> None:
    earlier = TODAY - timedelta(days=10)
    async with emulator() as emu:
        first = await run_mirror(duckdb_target, emu, today=earlier)
        assert _listed_days(emu) == _days(START, earlier)
        emu.reset_stats()
        second = await run_mirror(duckdb_target, emu)
        # Complete through earlier - 1: from earlier on, and LAG days before it again.
        assert _listed_days(emu) == _days(earlier - timedelta(days=LAG), TODAY)
        assert_mirrors(duckdb_target, emu)
    assert first.rows + second.new == len(emu.dataset)


async def test_the_state_lives_in_the_pipeline_state_and_comes_back_from_the_destination(
    target: Target,
) -> None:
    async with emulator() as emu:
        await run_mirror(target, emu)
        state = target.pipeline().state["sources"]["argos"]["resources"]["submissions"]
        assert state["complete_through"] == (TODAY - timedelta(days=1)).isoformat()
        assert state["start_date"] == START.isoformat()
        # A new machine: no working directory, the state comes back from the destination.
        shutil.rmtree(target.pipelines_dir)
        emu.reset_stats()
        result = await run_mirror(target, emu)
        assert _listed_days(emu) == _days(WINDOW_START, TODAY)
    assert (result.new, result.changed) == (0, 0)


async def test_a_first_backfill_in_several_loads(duckdb_target: Target) -> None:
    async with emulator() as emu:
        result = await run_mirror(duckdb_target, emu, days_per_run=7)
        assert_mirrors(duckdb_target, emu)
        # Every day once; the run that reaches today lists the LAG days before it again.
        last = START + timedelta(days=28)
        again = _days(last - timedelta(days=LAG), last - timedelta(days=1))
        assert _listed_days(emu) == sorted(_days(START, TODAY) + again)
    assert result.loads == 5  # 30 days, 7 at a time
    assert result.new == result.rows == len(emu.dataset)


async def test_a_run_that_fails_leaves_the_table_and_the_state_as_they_were(
    duckdb_target: Target,
) -> None:
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        before = duckdb_target.rows()
        state = dict(duckdb_target.pipeline().state["sources"]["argos"]["resources"]["submissions"])
        changed = _pick(emu, results=("pending",), before=True)[0]
        emu.update(changed, kyc={"result": "approved"})
        # The same data behind a gateway that refuses the third list request of the run.
        async with ArgosEmulator(
            len(emu.dataset),
            emu.dataset.seed,
            start=START,
            days=emu.dataset.days,
            api_key=emu.api_key,
            faults=FaultPlan([Status(400, at=3)]),
        ) as failing:
            failing.update(changed, kyc={"result": "approved"})
            with pytest.raises(Exception, match="Invalid Query String") as failure:
                await run_mirror(duckdb_target, failing)
        assert duckdb_target.rows() == before
        pipeline = duckdb_target.pipeline()
        assert not pipeline.has_pending_data
        assert pipeline.state["sources"]["argos"]["resources"]["submissions"] == state
        result = await run_mirror(duckdb_target, emu)
        assert_mirrors(duckdb_target, emu)
    assert "PipelineStepFailed" in type(failure.value).__name__
    assert result.changed == 1


async def test_the_key_never_reaches_a_file_the_database_or_a_log_line(
    duckdb_target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        emu.update(_pick(emu, results=("pending",), before=True)[0], kyc={"result": "approved"})
        await run_mirror(duckdb_target, emu)
        key = emu.api_key.encode()
        personal = [i["email"] for i in emu.dataset.items] + [
            i["userid"] for i in emu.dataset.items if i.get("userid")
        ]
    files = [p for p in duckdb_target.pipelines_dir.rglob("*") if p.is_file()]
    files.append(Path(duckdb_target.location))
    assert files
    assert [p for p in files if key in p.read_bytes()] == []
    text = caplog.text
    assert emu.api_key not in text
    assert [value for value in personal if value in text] == []
    assert "mirror run" in text  # the log was captured: the check above saw something


def test_arguments_are_checked_when_the_source_is_made() -> None:
    with pytest.raises(ValueError, match="start_date"):
        argos_source(start_date="2025-02-30")
    with pytest.raises(ValueError, match="lag_days"):
        argos_source(start_date=START, lag_days=-1)
    with pytest.raises(ValueError, match="shards"):
        argos_source(start_date=START, shards=0)
    with pytest.raises(ValueError, match="page_size"):
        argos_source(start_date=START, page_size=2001)
    with pytest.raises(ValueError, match="client_options"):
        argos_source(start_date=START, client_options={"api_key": "x"})
    with pytest.raises(ValueError, match="base_url"):
        argos_source(start_date=START, base_url="http://example.com")
    source = argos_source(start_date=START, api_key="k")
    resource = source.resources["submissions"]
    assert resource.write_disposition == "merge"
    assert resource.compute_table_schema()["columns"]["submission_id"]["primary_key"] is True
    assert list(resource.compute_table_schema()["columns"]) == list(argos_async.dlt.COLUMNS)


async def test_pages_reach_dlt_as_arrow_tables(duckdb_target: Target) -> None:
    """dlt's extract writes the pages as Parquet files (Arrow tables), not as JSON rows it
    would normalise one by one; normalising keeps them Parquet for DuckDB."""
    pipeline = duckdb_target.pipeline()
    async with emulator(50) as emu:
        source = argos_source(**source_arguments(emu))
        await anyio.to_thread.run_sync(pipeline.extract, source)
    (load_id,) = pipeline.list_extracted_load_packages()
    extracted = pipeline.get_load_package_info(load_id).jobs["new_jobs"]
    files = {job.job_file_info.table_name: job.file_path for job in extracted}
    assert files["submissions"].endswith(".parquet")
    assert pq.read_schema(files["submissions"]).names == list(argos_async.dlt.COLUMNS)
    await anyio.to_thread.run_sync(pipeline.normalize)
    assert pipeline.last_trace is not None
    info = pipeline.last_trace.last_normalize_info
    assert info is not None
    assert info.row_counts["submissions"] == 50
    (load_id,) = pipeline.list_normalized_load_packages()
    normalized = pipeline.get_load_package_info(load_id).jobs["new_jobs"]
    paths = {job.job_file_info.table_name: job.file_path for job in normalized}
    assert paths["submissions"].endswith(".parquet")
