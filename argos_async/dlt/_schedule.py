"""What one mirror run lists and looks up, from the state the last successful run left: pure
(no dlt, no client, no I/O), so every case is a table-driven test.

The state is two days. ``start_date`` is the first day the mirror holds; ``complete_through``
the last day it has listed in full, after that day had ended (UTC). A run lists

- the days after ``complete_through`` up to today (all of them, or ``days_per_run`` at most),
- and, once it reaches today, the ``lag_days`` days before them again: submissions created
  late on a day, and changes to ones that had settled, show up there;
- plus the days before ``start_date`` when a later run is given an earlier one.

A run that reaches today also looks up by id every submission created before what it lists
that the table still holds as ``pending`` or ``incomplete`` (``refresh_before``), however old,
or only those of the last ``refresh_days`` days. The first run (no state) lists from
``start_date`` and looks nothing up: it has just listed everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

START_DATE = "start_date"
COMPLETE_THROUGH = "complete_through"


@dataclass(frozen=True)
class DayRange:
    """The days ``start`` to ``end``, both included."""

    start: date
    end: date


@dataclass(frozen=True)
class RunPlan:
    """One run: what to list and look up, and the state to keep once it has been loaded."""

    ranges: tuple[DayRange, ...]
    """The day ranges to list, oldest first, never overlapping."""
    refresh_before: date | None
    """Look up the open submissions created before this day (None: look up none)."""
    refresh_since: date | None
    """... and only those created on this day or later (None: however old)."""
    caught_up: bool
    """True when this run lists up to today; False when ``days_per_run`` stopped it short,
    so that another run has more days to list."""
    state: dict[str, str]
    """What the run leaves in the resource's state when it succeeds."""


def plan_run(
    state: Mapping[str, Any],
    *,
    start_date: date,
    today: date,
    lag_days: int,
    days_per_run: int | None = None,
    refresh_days: int | None = None,
) -> RunPlan:
    """Plans the run after ``state`` (empty for the first one), on day ``today`` (UTC).

    Raises ``ValueError`` when ``start_date`` is after ``today`` or the state is damaged.
    """
    if start_date > today:
        raise ValueError(f"start_date ({start_date}) is after today ({today})")
    complete = _day(state, COMPLETE_THROUGH)
    origin = _day(state, START_DATE) if complete is not None else None
    ranges: list[DayRange] = []
    if complete is None or origin is None:
        origin, first = start_date, start_date
    else:
        if start_date < origin:
            # An earlier start than the mirror's: those days have never been listed.
            ranges.append(DayRange(start_date, origin - timedelta(days=1)))
        first = min(complete + timedelta(days=1), today)
    end = today if days_per_run is None else min(today, first + timedelta(days=days_per_run - 1))
    caught_up = end == today
    refresh_before = refresh_since = None
    if complete is not None and caught_up:
        first = max(origin, first - timedelta(days=lag_days))
        refresh_before = first
        if refresh_days is not None:
            refresh_since = today - timedelta(days=refresh_days)
    ranges.append(DayRange(first, end))
    # Today is not over: submissions created later today come with the next run.
    done = today - timedelta(days=1) if caught_up else end
    new_state = {START_DATE: min(start_date, origin).isoformat()}
    if done >= min(start_date, origin):
        new_state[COMPLETE_THROUGH] = done.isoformat()
    return RunPlan(tuple(ranges), refresh_before, refresh_since, caught_up, new_state)


def _day(state: Mapping[str, Any], key: str) -> date | None:
    value = state.get(key)
    if value is None:
        return None
    try:
        return date.fromisoformat(value) if isinstance(value, str) else _bad(key, value)
    except ValueError:
        return _bad(key, value)


def _bad(key: str, value: object) -> date:
    raise ValueError(f"the mirror's state is damaged: {key} is {value!r}, not a day")
