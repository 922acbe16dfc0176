"""Timestamps of the synthetic data set: millisecond offsets from the window's start, formatted
the way the API writes them (`_wire.format_timestamp`), fast."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone

from ._wire import format_timestamp

__all__ = ["DAY_MS", "Clock"]

DAY_MS = 86_400_000
# Later timestamps (decisions, memos) may fall this many days after the window's end.
_TAIL_DAYS = 120


@functools.cache
def _time_tables() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    # Formatting dominates building an item; lookups make it cheap. Three small tables rather
    # than one per second of the day: those 86,400 strings took longer to make than the
    # emulator has to serve its first page.
    hours_minutes = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
    seconds = tuple(f"{s:02d}" for s in range(60))
    millis = tuple(f".{m:03d}Z" for m in range(1000))
    return hours_minutes, seconds, millis


class Clock:
    """Formats millisecond offsets from the window start as the API's timestamps."""

    def __init__(self, start: date, days: int) -> None:
        self.days = [(start + timedelta(days=d)).isoformat() for d in range(days + _TAIL_DAYS)]
        self.prefixes = [f"{d}T" for d in self.days]
        self.hours_minutes, self.seconds, self.millis = _time_tables()
        self.start = start

    def __call__(self, ms: int) -> str:
        d, rem = divmod(ms, DAY_MS)
        if d >= len(self.days):
            origin = datetime(
                self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc
            )
            return format_timestamp(origin + timedelta(milliseconds=ms))
        minute, rem = divmod(rem, 60_000)
        second, milli = divmod(rem, 1000)
        hm, ss, ms_z = self.hours_minutes[minute], self.seconds[second], self.millis[milli]
        return self.prefixes[d] + hm + ss + ms_z
