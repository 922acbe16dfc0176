"""The mirror's pure parts, without dlt runs: what a run lists (``plan_run``), how items
become rows (``_rows``), and the raw batch lookup it refreshes with."""

from __future__ import annotations

from datetime import date, datetime, timezone

import msgspec
import pytest
from support import client_for

from argos_async import NotFoundError
from argos_async.dlt._rows import (
    ARROW_SCHEMA,
    Counts,
    Known,
    decode_rows,
    digest,
    listed_changes,
    looked_up_changes,
    timestamps,
    to_table,
)
from argos_async.dlt._schedule import DayRange, plan_run
from argos_async.testing import ArgosEmulator

D = date.fromisoformat


def _state(complete: str, start: str = "2025-01-01") -> dict[str, str]:
    return {"start_date": start, "complete_through": complete}


@pytest.mark.parametrize(
    ("state", "today", "options", "ranges", "refresh_before", "complete"),
    [
        # The first run: everything from start_date, nothing looked up, today not complete.
        ({}, "2025-03-10", {}, [("2025-01-01", "2025-03-10")], None, "2025-03-09"),
        # The next day: the new days and lag_days before them; open ones before that.
        (_state("2025-03-09"), "2025-03-11", {}, [("2025-03-07", "2025-03-11")], "2025-03-07",
         "2025-03-10"),
        # Twice the same day: today again, and the lag days.
        (_state("2025-03-10"), "2025-03-11", {}, [("2025-03-08", "2025-03-11")], "2025-03-08",
         "2025-03-10"),
        # No lag: the new days only.
        (_state("2025-03-09"), "2025-03-11", {"lag_days": 0}, [("2025-03-10", "2025-03-11")],
         "2025-03-10", "2025-03-10"),
        # The lag never reaches before the mirror's first day.
        (_state("2025-01-01"), "2025-01-03", {}, [("2025-01-01", "2025-01-03")], "2025-01-01",
         "2025-01-02"),
        # A first backfill in parts: no lag and no lookups until it reaches today.
        ({}, "2025-03-10", {"days_per_run": 30}, [("2025-01-01", "2025-01-30")], None,
         "2025-01-30"),
        (_state("2025-01-30"), "2025-03-10", {"days_per_run": 30},
         [("2025-01-31", "2025-03-01")], None, "2025-03-01"),
        (_state("2025-03-01"), "2025-03-10", {"days_per_run": 30},
         [("2025-02-27", "2025-03-10")], "2025-02-27", "2025-03-09"),
        # An earlier start_date than the mirror's: those days too.
        (_state("2025-03-09"), "2025-03-10", {"start_date": D("2024-12-30")},
         [("2024-12-30", "2024-12-31"), ("2025-03-07", "2025-03-10")], "2025-03-07",
         "2025-03-09"),
        # A later one changes nothing.
        (_state("2025-03-09"), "2025-03-10", {"start_date": D("2025-02-01")},
         [("2025-03-07", "2025-03-10")], "2025-03-07", "2025-03-09"),
    ],
)  # fmt: skip
def test_what_a_run_lists_and_looks_up(
    state: dict[str, str],
    today: str,
    options: dict[str, object],
    ranges: list[tuple[str, str]],
    refresh_before: str | None,
    complete: str,
) -> None:
    arguments: dict[str, object] = {"start_date": D("2025-01-01"), "lag_days": 3, **options}
    plan = plan_run(state, today=D(today), **arguments)  # type: ignore[arg-type]
    assert plan.ranges == tuple(DayRange(D(a), D(b)) for a, b in ranges)
    assert plan.refresh_before == (None if refresh_before is None else D(refresh_before))
    assert plan.state["complete_through"] == complete
    assert plan.caught_up is (plan.ranges[-1].end == D(today))


def test_refresh_days_bounds_the_lookups_and_bad_states_are_refused() -> None:
    plan = plan_run(
        _state("2025-03-09"), start_date=D("2025-01-01"), today=D("2025-03-10"), lag_days=3,
        refresh_days=30,
    )  # fmt: skip
    assert plan.refresh_since == D("2025-02-08")
    with pytest.raises(ValueError, match="complete_through"):
        plan_run(_state("yesterday"), start_date=D("2025-01-01"), today=D("2025-03-10"), lag_days=3)
    with pytest.raises(ValueError, match="after today"):
        plan_run({}, start_date=D("2025-03-11"), today=D("2025-03-10"), lag_days=3)
    # A first run on its first day: nothing is complete yet.
    plan = plan_run({}, start_date=D("2025-03-10"), today=D("2025-03-10"), lag_days=3)
    assert "complete_through" not in plan.state


ITEM = (
    b'{"submission_id":"s1","created_at":"2025-03-01T10:00:00.123Z",'
    b'"updated_at":"2025-03-02T10:00:00.000Z","email":"a@example.com","userid":"u1",'
    b'"kyc":{"result":"pending","attempts":[]},"aml":{"currentstatus":"Red Flag"},"x":[1, 2]}'
)


def test_an_item_becomes_a_row_of_typed_columns_and_its_bytes() -> None:
    body = b'{"Items":[' + ITEM + b"]}"
    items = msgspec.json.decode(body, type=dict[str, list[msgspec.Raw]])["Items"]
    table = to_table(decode_rows(items, body), items)
    assert table.schema == ARROW_SCHEMA
    (row,) = table.to_pylist()
    assert row["submission_id"] == "s1"
    assert row["created_at"] == datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert (row["kyc_result"], row["aml_status"], row["email"]) == (
        "pending",
        "Red Flag",
        "a@example.com",
    )
    assert row["applicant_id"] is None
    assert row["deleted"] is False
    assert row["raw"].encode() == ITEM


def test_odd_fields_are_read_leniently_never_failing_the_page() -> None:
    odd = (
        b'{"submission_id":"s2","created_at":"YYYY-MM-DD-HH-MM-SS-ZZZ","updated_at":'
        b'"2025-03-02-10-00-00-000","email":7,"kyc":"approved","aml":null}'
    )
    body = b'{"Items":[' + ITEM + b"," + odd + b"]}"
    items = msgspec.json.decode(body, type=dict[str, list[msgspec.Raw]])["Items"]
    rows = decode_rows(items, body)
    assert [r.submission_id for r in rows] == ["s1", "s2"]
    table = to_table(rows, items).to_pylist()
    assert table[1]["email"] is None
    assert table[1]["kyc_result"] is None
    assert table[1]["created_at"] is None
    assert table[1]["updated_at"] == datetime(2025, 3, 2, 10, tzinfo=timezone.utc)
    assert timestamps(["2025-03-01T10:00:00Z", "nonsense"]).to_pylist() == [
        datetime(2025, 3, 1, 10, tzinfo=timezone.utc),
        None,
    ]


def test_only_rows_that_differ_from_the_table_are_written() -> None:
    body = b'{"Items":[' + ITEM + b"]}"
    items = msgspec.json.decode(body, type=dict[str, list[msgspec.Raw]])["Items"]
    rows = decode_rows(items, body)
    updated = datetime(2025, 3, 2, 10, tzinfo=timezone.utc)
    same = Known(digest(items[0]), False, updated, "pending", "Red Flag")
    counts = Counts()
    assert listed_changes(rows, items, {"s1": same}, counts) is None
    assert listed_changes(rows, items, {"s1": same._replace(digest="0")}, counts) is not None
    assert listed_changes(rows, items, {"s1": same._replace(deleted=True)}, counts) is not None
    assert listed_changes(rows, items, {"other": same}, counts) is not None
    assert (counts.listed, counts.new, counts.changed) == (4, 1, 2)
    # A lookup answers with more fields: only a moved state counts.
    counts = Counts()
    assert looked_up_changes(rows, items, {"s1": same._replace(digest="0")}, counts) is None
    moved = same._replace(kyc_result="incomplete")
    assert looked_up_changes(rows, items, {"s1": moved}, counts) is not None
    assert counts.changed == 1


@pytest.mark.anyio
async def test_batch_get_raw_submissions_gives_each_lookup_as_sent() -> None:
    async with ArgosEmulator(30, seed=5) as emu, client_for(emu) as argos:
        ids = [*emu.dataset.ids[:5], "missing-id"]
        async with argos.batch_get_raw_submissions(ids, concurrency=3) as results:
            found = {r.key: r async for r in results}
        singles = {sid: bytes(await argos.get_raw_submission(sid)) for sid in ids[:5]}
    assert {k: bytes(r.unwrap()) for k, r in found.items() if r.ok} == singles
    assert isinstance(found["missing-id"].error, NotFoundError)
