"""``mirror(pipeline, refresh_ids=[...])``: a run that looks up exactly those submissions (what
a webhook receiver runs), writes only what changed, marks deleted what the API no longer has,
and leaves the schedule's state as it was; into DuckDB, and once into PostgreSQL. Its ids come
from unsigned webhooks: one the API refuses, or one whose lookup fails, costs the others
nothing."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from aiohttp import web
from mirror_support import (
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
from support import FAST

from argos_async.dlt import argos_source
from argos_async.testing import ArgosEmulator, Fault, FaultContext, FaultPlan, Status

pytestmark = pytest.mark.anyio

PATH = "/v3/submission"

LAG = 3
EARLIER = TODAY - timedelta(days=6)
"""The first mirror takes this as today: the submissions of the days after it are not held."""


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    postgres: PostgresServer | None = None
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
    return make_target(request.param, tmp_path, postgres)


@pytest.fixture
def duckdb_target(tmp_path: Path) -> Target:
    return make_target("duckdb", tmp_path, None)


@dataclass(frozen=True, repr=False)
class ForId(Fault):
    """Answers every lookup of ``submission_id`` as ``answer`` does; ``hits`` counts them."""

    submission_id: str = ""
    answer: Fault = field(default_factory=lambda: Status(500))
    hits: list[str] = field(default_factory=list)

    async def respond(self, request: web.Request, ctx: FaultContext) -> web.StreamResponse | None:
        if ctx.query.get("submission_id") != self.submission_id:
            return None
        self.hits.append(self.submission_id)
        return await self.answer.respond(request, ctx)


def _created(item: dict[str, Any]) -> date:
    return date.fromisoformat(item["created_at"][:10])


def _ids(emu: ArgosEmulator, result: str, first: date, last: date) -> list[str]:
    """Submissions with this kyc.result, created from ``first`` to ``last``."""
    return [
        item["submission_id"]
        for item in emu.dataset.items
        if (item.get("kyc") or {}).get("result") == result and first <= _created(item) <= last
    ]


def _state(target: Target) -> dict[str, Any] | None:
    sources = target.pipeline().state.get("sources", {})
    state: dict[str, Any] | None = sources.get("argos", {}).get("resources", {}).get("submissions")
    return state


def _requests(emu: ArgosEmulator) -> tuple[list[str], list[str]]:
    """The days listed (first pages) and the ids looked up, each sorted."""
    days = sorted(
        r.query["start_date"]
        for r in emu.requests
        if "start_date" in r.query and "nextpage_id" not in r.query
    )
    return days, sorted(
        r.query["submission_id"] for r in emu.requests if "submission_id" in r.query
    )


def _rows_written(target: Target) -> int:
    trace = target.pipeline().last_trace
    assert trace is not None
    assert trace.last_normalize_info is not None
    return int(trace.last_normalize_info.row_counts.get("submissions", 0))


async def test_a_refresh_writes_exactly_the_submissions_that_changed(target: Target) -> None:
    async with emulator() as emu:
        await run_mirror(target, emu, today=EARLIER)
        before, state = target.rows(), _state(target)
        # Changes that no scheduled run would look at before their days are listed again.
        old = _ids(emu, "approved", START, EARLIER - timedelta(days=LAG + 2))
        decided = _ids(emu, "rejected", START, EARLIER - timedelta(days=LAG + 2))
        changed, gone, same = old[0], decided[0], old[1]
        emu.update(changed, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        last_seen = emu.get(gone)
        emu.delete(gone)
        unheld = _ids(emu, "approved", EARLIER + timedelta(days=2), TODAY)[0]
        assert unheld not in before
        emu.reset_stats()

        ids = [changed, gone, same, unheld, "nosuchsubmission"]
        result = await run_mirror(target, emu, today=EARLIER, refresh_ids=ids)
        listed, looked_up = _requests(emu)
        after = target.rows()
        served = {sid: emu.get(sid) for sid in (changed, unheld)}
    # Exactly those ids, looked up once each; nothing listed.
    assert (listed, looked_up) == ([], sorted(ids))
    assert (result.new, result.changed, result.deleted) == (1, 1, 1)
    assert (result.looked_up, result.listed, result.loads) == (5, 0, 1)
    assert _rows_written(target) == 3
    # The rows that changed, as the API serves them now; every other row as it was.
    for sid, item in served.items():
        assert item is not None
        assert after[sid]["aml_status"] == (item.get("aml") or {}).get("currentstatus")
        assert after[sid]["updated_at"] is not None
    assert after[changed]["aml_status"] == "Red Flag"
    assert after[unheld]["kyc_result"] == "approved"
    assert after[gone]["deleted"] is True
    assert after[gone]["deleted_at"] is not None
    assert {k: v for k, v in after[gone].items() if k not in ("deleted", "deleted_at")} == {
        k: v for k, v in before[gone].items() if k not in ("deleted", "deleted_at")
    }
    assert last_seen is not None
    untouched = set(before) - {changed, gone}
    assert {sid: after[sid] for sid in untouched} == {sid: before[sid] for sid in untouched}
    assert set(after) == set(before) | {unheld}
    assert "nosuchsubmission" not in after
    # The table was not counted: the rows are those of the refreshed submissions it holds
    # (not "nosuchsubmission"), one of them marked deleted.
    assert len(after) == len(before) + 1 > 4
    assert (result.rows, result.deleted_rows) == (4, 1)
    assert (result.refresh_failed, result.refresh_error) == ((), None)
    # The schedule's state, byte for byte.
    assert state is not None
    assert _state(target) == state


async def test_the_next_scheduled_run_asks_what_it_would_have_asked(tmp_path: Path) -> None:
    refreshed = make_target("duckdb", tmp_path / "refreshed", None)
    control = make_target("duckdb", tmp_path / "control", None)
    async with emulator() as emu:
        for target in (refreshed, control):
            await run_mirror(target, emu, today=EARLIER)
        old = _ids(emu, "approved", START, EARLIER - timedelta(days=LAG + 2))
        emu.update(old[0], aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        unheld = _ids(emu, "rejected", EARLIER + timedelta(days=1), TODAY)[0]
        await run_mirror(refreshed, emu, today=EARLIER, refresh_ids=[old[0], unheld])
        asked = []
        for target in (refreshed, control):
            emu.reset_stats()
            await run_mirror(target, emu)
            asked.append(_requests(emu))
        # The refreshed row is one the schedule never looks at again: it stays current.
        assert refreshed.rows()[old[0]]["aml_status"] == "Red Flag"
        assert control.rows()[old[0]]["aml_status"] != "Red Flag"
        schedules = [_state(t) or {} for t in (refreshed, control)]
    assert asked[0] == asked[1]
    # The same schedule; only the counts differ (the refreshed one held `unheld` already).
    assert [{k: v for k, v in s.items() if k != "last_run"} for s in schedules] == [
        {k: v for k, v in schedules[1].items() if k != "last_run"}
    ] * 2
    assert (schedules[0]["last_run"]["new"], schedules[1]["last_run"]["new"]) == (
        schedules[1]["last_run"]["new"] - 1,
        schedules[1]["last_run"]["new"],
    )
    assert asked[0][0]  # the scheduled run listed days


async def test_a_refresh_before_the_first_run_inserts_and_leaves_no_state(
    duckdb_target: Target,
) -> None:
    async with emulator() as emu:
        ids = emu.dataset.ids[:3]
        result = await run_mirror(duckdb_target, emu, refresh_ids=ids)
        assert set(duckdb_target.rows()) == set(ids)
        assert (result.new, result.rows) == (3, 3)
        assert _state(duckdb_target) is None
        emu.reset_stats()
        # The first scheduled run backfills everything, from start_date.
        first = await run_mirror(duckdb_target, emu)
        listed, looked_up = _requests(emu)
        assert_mirrors(duckdb_target, emu)
    assert listed[0] == START.isoformat()
    assert listed[-1] == TODAY.isoformat()
    assert looked_up == []
    assert first.rows == len(emu.dataset)


async def test_a_refresh_changes_nothing_the_table_already_says(duckdb_target: Target) -> None:
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        gone = emu.dataset.ids[5]
        emu.delete(gone)
        await run_mirror(duckdb_target, emu, refresh_ids=[gone])
        before = duckdb_target.rows()
        assert before[gone]["deleted"] is True
        # Again: deleted already, and the others unchanged: no row written.
        again = await run_mirror(duckdb_target, emu, refresh_ids=[gone, *emu.dataset.ids[6:9]])
        assert (again.new, again.changed, again.deleted, again.looked_up) == (0, 0, 0, 4)
        assert _rows_written(duckdb_target) == 0
        assert duckdb_target.rows() == before


async def test_an_id_the_api_refuses_is_skipped_and_the_others_are_written(
    duckdb_target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="argos_async.dlt")
    forged = "forged-submission-id"
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        before, state = duckdb_target.rows(), _state(duckdb_target)
        changed = emu.dataset.ids[-1]
        emu.update(changed, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        refuse = ForId(path=PATH, submission_id=forged, answer=Status(400))
        emu.faults = FaultPlan([refuse])
        result = await run_mirror(duckdb_target, emu, refresh_ids=[changed, forged])
        after = duckdb_target.rows()
    assert after[changed]["aml_status"] == "Red Flag"
    assert forged not in after
    assert {s: r for s, r in after.items() if s != changed} == {
        s: r for s, r in before.items() if s != changed
    }
    # Dropped, not reported for another try: no lookup of it can succeed.
    assert (result.changed, result.new, result.looked_up) == (1, 0, 2)
    assert (result.refresh_failed, result.refresh_error) == ((), None)
    assert refuse.hits == [forged]  # asked once: a 400 is not retried either
    assert "mirror refresh: submission f*** skipped: the API refuses it" in caplog.text
    assert forged not in caplog.text
    assert _state(duckdb_target) == state


async def test_an_id_failing_past_the_retries_is_reported_and_the_others_are_written(
    duckdb_target: Target,
) -> None:
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        before, state = duckdb_target.rows(), _state(duckdb_target)
        changed, failing, gone = emu.dataset.ids[-3:]
        for sid in (changed, failing):
            emu.update(sid, aml={"currentstatus": "Red Flag", "risk_level_summary": "High"})
        emu.delete(gone)
        failure = ForId(path=PATH, submission_id=failing, answer=Status(500))
        emu.faults = FaultPlan([failure])
        options = {**FAST, "max_retries": 1}
        result = await run_mirror(
            duckdb_target, emu, refresh_ids=[changed, failing, gone], client_options=options
        )
        after = duckdb_target.rows()
        assert failure.hits == [failing] * 2  # the client's retry was spent on it
        assert not duckdb_target.pipeline().has_pending_data
        # Tried again on its own once the API answers, it is written too.
        emu.faults = FaultPlan([])
        again = await run_mirror(duckdb_target, emu, refresh_ids=list(result.refresh_failed))
        last = duckdb_target.rows()
    assert result.refresh_failed == (failing,)
    assert result.refresh_error is not None
    assert result.refresh_error.startswith("ServerError: ")
    assert "500" in result.refresh_error
    assert failing not in result.refresh_error
    # The others were loaded; the failing one is as it was.
    assert (result.changed, result.deleted, result.looked_up, result.loads) == (1, 1, 3, 1)
    assert after[changed]["aml_status"] == "Red Flag"
    assert after[gone]["deleted"] is True
    assert after[failing] == before[failing]
    assert (result.rows, result.deleted_rows) == (3, 1)
    assert _state(duckdb_target) == state
    assert (again.changed, again.refresh_failed) == (1, ())
    assert last[failing]["aml_status"] == "Red Flag"


async def test_a_refresh_whose_lookups_all_fail_writes_nothing_and_the_source_alone_raises(
    duckdb_target: Target,
) -> None:
    async with emulator() as emu:
        await run_mirror(duckdb_target, emu)
        before, state = duckdb_target.rows(), _state(duckdb_target)
        sid = emu.dataset.ids[0]
        emu.update(sid, kyc={"result": "rejected"})
        emu.faults = FaultPlan([Status(500, path=PATH)])
        no_retries = {**FAST, "max_retries": 0}
        result = await run_mirror(duckdb_target, emu, refresh_ids=[sid], client_options=no_retries)
        assert (result.refresh_failed, result.changed, result.rows) == ((sid,), 0, 1)
        assert duckdb_target.rows() == before
        assert _state(duckdb_target) == state
        assert not duckdb_target.pipeline().has_pending_data
        # The source run on its own has nobody to report to: it fails, and loads nothing.
        arguments = source_arguments(emu, refresh_ids=[sid], client_options=no_retries)
        job = functools.partial(duckdb_target.pipeline().run, argos_source(**arguments))
        with pytest.raises(Exception, match="500 Internal server error") as failure:
            await anyio.to_thread.run_sync(job)
        assert "PipelineStepFailed" in type(failure.value).__name__
        assert duckdb_target.rows() == before
        assert _state(duckdb_target) == state
        assert not duckdb_target.pipeline().has_pending_data
        emu.faults = FaultPlan([])
        result = await run_mirror(duckdb_target, emu, refresh_ids=[sid])
    assert result.changed == 1
    assert duckdb_target.rows()[sid]["kyc_result"] == "rejected"


async def test_refresh_ids_are_checked_and_an_empty_list_runs_nothing(
    duckdb_target: Target,
) -> None:
    async with emulator(20) as emu:
        with pytest.raises(TypeError, match="refresh_ids"):
            await run_mirror(duckdb_target, emu, refresh_ids="abc")
        with pytest.raises(ValueError, match=r"refresh_ids\[1\]"):
            await run_mirror(duckdb_target, emu, refresh_ids=["a", " "])
        result = await run_mirror(duckdb_target, emu, refresh_ids=[])
        assert emu.requests == []
    assert (result.loads, result.rows, result.looked_up) == (0, 0, 0)
