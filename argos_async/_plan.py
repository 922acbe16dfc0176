"""The backfill planner: a backfill's arguments checked and cut into day windows, with no
client, no file and no I/O, so that the CLI can refuse bad arguments before it starts anything
and the client builds its backfill from the very same plan."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import msgspec

from ._protocol import checks
from ._protocol.query import ListQuery
from ._protocol.wire import MAX_PAGE_SIZE, DateFormat

MAX_SHARDS = 256


class Window(msgspec.Struct, frozen=True):
    """A slice of the listing: the days ``start`` to ``end`` (``None``: unbounded)."""

    name: str
    start: date | None
    end: date | None


class BackfillPlan(msgspec.Struct, frozen=True):
    """A checked backfill: the windows to list (oldest first), the query each one narrows,
    and how many shards pull them."""

    windows: list[Window]
    query: ListQuery
    shards: int
    window_days: int

    def checkpoint_arguments(self) -> dict[str, Any]:
        """What a checkpoint must have been made for to resume this plan. The filters go in
        as a digest, not as values: the file should hold no personal data."""
        first, last = self.windows[0], self.windows[-1]
        return {
            "start_date": first.start.isoformat() if first.start else None,
            "end_date": last.end.isoformat() if last.end else None,
            "window_days": self.window_days,
            "filters": self.query.fingerprint,
        }


def plan_backfill(
    start_date: object,
    end_date: object = None,
    *,
    shards: object = 8,
    page_size: object = MAX_PAGE_SIZE,
    email: object = None,
    userid: object = None,
    request_type: object = None,
    window_days: object = 1,
    date_format: DateFormat = "YYYY-MM-DD",
    today: date | None = None,
) -> BackfillPlan:
    """Checks a backfill's arguments (``TypeError``/``ValueError`` naming the bad one) and
    plans it. ``end_date`` defaults to ``today`` (default: today in UTC). ``start_date=None``
    plans everything as a single window."""
    # Checked even where unused (no start_date): a bad argument is an error wherever.
    days = checks.check_int("window_days", window_days, minimum=1)
    if start_date is None:
        if end_date is not None:
            raise ValueError("end_date needs a start_date")
        windows = [Window("all", None, None)]
    else:
        first = checks.to_date("start_date", start_date)
        assert first is not None
        last = checks.to_date("end_date", end_date)
        if last is None:
            last = today or datetime.now(timezone.utc).date()
        if last < first:
            raise ValueError(f"end_date ({last}) is before start_date ({first})")
        windows = windows_between(first, last, days)
    query = ListQuery.build(
        email=email,
        userid=userid,
        request_type=request_type,
        page_size=page_size,
        date_format=date_format,
    )
    count = checks.check_int("shards", shards, minimum=1, maximum=MAX_SHARDS)
    return BackfillPlan(windows=windows, query=query, shards=count, window_days=days)


def windows_between(start: date, end: date, days: int) -> list[Window]:
    """``start`` to ``end`` (inclusive) cut into windows of ``days`` days, oldest first."""
    # On day numbers: date arithmetic would overflow past 9999-12-31 (a window reaching
    # beyond the calendar, or the day after the last one).
    windows = []
    first, final = start.toordinal(), end.toordinal()
    while first <= final:
        last = min(first + days - 1, final)
        window_start, window_end = date.fromordinal(first), date.fromordinal(last)
        windows.append(Window(window_start.isoformat(), window_start, window_end))
        first = last + 1
    return windows
