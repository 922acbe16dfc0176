"""``mirror``: one pipeline run of the source as a job, with what it did in numbers.

``pipeline.run(argos_source(...))`` is all a scheduler needs; ``mirror`` adds what a command
wants around it: it first loads what a killed run left behind (dlt's own ``run`` would load
that and return without extracting), runs the source as often as ``days_per_run`` needs to
reach today, and counts the table's rows at the end. With ``refresh_ids`` it runs the source
once as a refresh of those submissions (what a webhook receiver calls, see the package
documentation); that counts no table (a full count under the receiver's lock, for every batch
of webhooks, would cost more than the refresh), and reports the ids whose lookup failed
instead of failing the others with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.pipeline.pipeline import Pipeline

from ._rows import TABLE
from ._source import CAUGHT_UP, LAST_RUN, SOURCE, RefreshReport, _refresh_report, argos_source

_MAX_RUNS: Final = 100_000


@dataclass(frozen=True)
class MirrorResult:
    """What a :func:`mirror` did, and what the table holds now."""

    rows: int
    """Rows in the table now, deleted ones included. After a refresh, only those of the
    refreshed submissions (a refresh does not count the table)."""
    deleted_rows: int
    """Rows in the table marked deleted now. After a refresh, only those of the refreshed
    submissions."""
    new: int
    """Submissions written for the first time."""
    changed: int
    """Submissions written again because they had changed (or came back)."""
    deleted: int
    """Submissions newly marked deleted (the API no longer has them)."""
    listed: int
    """Items listed by day windows."""
    looked_up: int
    """Submissions looked up by id."""
    loads: int
    """Load packages loaded (one per source run, plus any a killed run had left)."""
    resumed: bool
    """True when a killed run had left a package that this one loaded first."""
    seconds: float
    """Wall time of the whole job."""
    refresh_failed: tuple[str, ...] = ()
    """The submissions of a refresh whose lookup failed (after the client's retries): not
    written, to be refreshed again (a webhook receiver retries just these). An id the API
    refuses with a 400 is not among them: no lookup of it can succeed, so it is skipped with
    a warning. Always empty after a scheduled run, which raises instead."""
    refresh_error: str | None = None
    """What the first of ``refresh_failed`` failed with (``ServerError: ...``, the refreshed
    ids masked in it); None when none failed."""


def mirror(
    pipeline: Pipeline, *, loader_file_format: Any = None, **source_arguments: Any
) -> MirrorResult:
    """Runs :func:`argos_source` (with ``source_arguments``) into ``pipeline`` until it has
    reached today, after loading whatever a killed run had left pending; returns the counts.

    With ``refresh_ids=[...]`` among them it runs one refresh of exactly those submissions
    instead (looked up, changed ones written, gone ones marked deleted, the schedule's state
    untouched); an empty list runs nothing but the pending load. One id does not fail the
    others: an id the API refuses (400) is skipped with a warning, and the ids whose lookup
    failed otherwise are returned in ``refresh_failed`` while the rows of the others are
    loaded. ``rows`` and ``deleted_rows`` then count the refreshed submissions only.

    A pipeline is not thread-safe: run one ``mirror`` at a time per pipeline (a lock around
    the refreshes and the scheduled runs of one process).

    Raises what the pipeline raises (``PipelineStepFailed``, whose ``__cause__`` is the
    client's ``ArgosError`` when the API failed); the table and the state stay as the last
    finished load left them.
    """
    started = time.perf_counter()
    loads = 0
    resumed = pipeline.has_pending_data
    if resumed:
        # The rows and the state of a run that was stopped after its extract: they go in
        # first, so that this run reads back a table that includes them.
        info = pipeline.run()
        loads += 0 if info is None else len(info.loads_ids)
    totals = dict.fromkeys(("new", "changed", "deleted", "listed", "looked_up"), 0)
    report: RefreshReport | None = None
    if source_arguments.get("refresh_ids") is not None:
        report = RefreshReport()
        loads += _refresh(pipeline, loader_file_format, source_arguments, report)
        totals.update(report.counts.as_dict())
        rows, deleted_rows = report.held, report.held_deleted
    else:
        loads += _catch_up(pipeline, loader_file_format, source_arguments, totals)
        rows, deleted_rows = table_counts(pipeline)
    return MirrorResult(
        rows=rows,
        deleted_rows=deleted_rows,
        loads=loads,
        resumed=resumed,
        seconds=time.perf_counter() - started,
        refresh_failed=() if report is None else tuple(report.failed),
        refresh_error=None if report is None else report.error,
        **totals,
    )


def _catch_up(
    pipeline: Pipeline,
    loader_file_format: Any,
    source_arguments: dict[str, Any],
    totals: dict[str, int],
) -> int:
    """Scheduled runs until one has reached today; the loads they made."""
    loads = 0
    for _ in range(_MAX_RUNS):
        info = pipeline.run(argos_source(**source_arguments), loader_file_format=loader_file_format)
        loads += len(info.loads_ids)
        state = _resource_state(pipeline)
        for name, count in state.get(LAST_RUN, {}).items():
            if name in totals:
                totals[name] += int(count)
        if state.get(CAUGHT_UP, True):
            break
    return loads


def _refresh(
    pipeline: Pipeline,
    loader_file_format: Any,
    source_arguments: dict[str, Any],
    report: RefreshReport,
) -> int:
    """One refresh run of ``source_arguments["refresh_ids"]``, reporting into ``report``;
    the loads it made."""
    ids = source_arguments["refresh_ids"]
    if isinstance(ids, Iterable) and not isinstance(ids, (str, bytes)):
        ids = source_arguments["refresh_ids"] = tuple(ids)  # read once, even a generator
    source = argos_source(**source_arguments)  # checks the ids, whatever runs
    if not ids:
        return 0
    token = _refresh_report.set(report)
    try:
        info = pipeline.run(source, loader_file_format=loader_file_format)
    finally:
        _refresh_report.reset(token)
    return len(info.loads_ids)


def _resource_state(pipeline: Pipeline) -> dict[str, Any]:
    sources = pipeline.state.get("sources", {})
    resources = sources.get(SOURCE, {}).get("resources", {})
    state: dict[str, Any] = resources.get(TABLE, {})
    return state


def table_counts(pipeline: Pipeline) -> tuple[int, int]:
    """Rows in the mirror's table, and those of them marked deleted (0, 0: no table yet)."""
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(TABLE)
        try:
            rows = client.execute_sql(
                f"SELECT count(*), sum(CASE WHEN deleted THEN 1 ELSE 0 END) FROM {name}"
            )
        except DestinationUndefinedEntity:
            return 0, 0
    assert rows is not None
    total, deleted = rows[0]
    return int(total), int(deleted or 0)
