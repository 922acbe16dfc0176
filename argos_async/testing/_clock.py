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
def _time_tables() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Formatting timestamps dominates generation time; table lookups make it cheap.
    hms = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
    millis = tuple(f".{m:03d}Z" for m in range(1000))
    return hms, millis


class Clock:
    """Formats millisecond offsets from the window start as the API's timestamps."""

    def __init__(self, start: date, days: int) -> None:
        self.days = [(start + timedelta(days=d)).isoformat() for d in range(days + _TAIL_DAYS)]
        self.prefixes = [f"{d}T" for d in self.days]
        self.hms, self.millis = _time_tables()
        self.start = start

    def __call__(self, ms: int) -> str:
        d, rem = divmod(ms, DAY_MS)
        if d >= len(self.days):
            origin = datetime(
                self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc
            )
            return format_timestamp(origin + timedelta(milliseconds=ms))
        s, milli = divmod(rem, 1000)
        return self.prefixes[d] + self.hms[s] + self.millis[milli]
