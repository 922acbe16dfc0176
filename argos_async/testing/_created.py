"""Submissions made after the data set, by `ArgosEmulator.create`: the new item, and where
the listing serves it.

They are newer than every generated one (created at or after the end of the data set's
window), so in the server's order (newest first) they all come before it: the listing gives
them the positions -k..-1 (the newest at -k), ahead of the data set's 0..n-1, and every
query, cursor and filter works across the two as over one sequence.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import msgspec

from ._records import draws, token
from ._wire import TIMESTAMP_RE, format_timestamp, parse_timestamp

__all__ = ["CreatedItems"]

# Keys a new submission cannot be made with: what later steps of the provider set.
_NOT_AT_CREATION = frozenset({"applicant_id", "kyc_result_at", "pending_at", "updated_at"})


class CreatedItems:
    """The submissions `create` made on one emulator, and their server positions."""

    def __init__(self, window_end: date, seed: int) -> None:
        self.window_end = format_timestamp(
            datetime(window_end.year, window_end.month, window_end.day, tzinfo=timezone.utc)
        )
        self._seed = seed
        self._items: dict[str, dict[str, Any]] = {}
        self._keys: list[tuple[str, str]] = []
        """(created_at, submission_id) of each, ascending: the oldest at position -1."""

    def __len__(self) -> int:
        return len(self._keys)

    def make(self, fields: Mapping[str, Any], taken: Mapping[str, int]) -> dict[str, Any]:
        """A new incomplete submission from `fields` (the item's own keys), not yet added;
        `taken` holds the ids already in use. ValueError for fields it cannot have."""
        refused = _NOT_AT_CREATION & set(fields)
        if refused:
            raise ValueError(f"a new submission cannot have {', '.join(sorted(refused))}")
        kyc = fields.get("kyc") or {}
        if not isinstance(kyc, dict) or kyc.get("result", "incomplete") != "incomplete":
            raise ValueError("a submission is created incomplete; update() it afterwards")
        data = fields.get("data", {})
        if not isinstance(data, dict):
            raise TypeError("data must be a dict")
        number = len(self._keys) + 1
        sid = fields.get("submission_id")
        if sid is None:
            sid = self._new_id(number, taken)
        elif not isinstance(sid, str) or not sid or sid in taken or sid in self._items:
            raise ValueError(f"submission_id {sid!r} is empty or already in use")
        created_at = self._created_at(fields.get("created_at"))
        item: dict[str, Any] = {
            "data": data,
            "email": fields.get("email") or f"created-{number}@example.com",
            "submission_id": sid,
            "created_at": created_at,
            "updated_at": created_at,
        }
        rest = {k: v for k, v in fields.items() if k not in item and k != "kyc"}
        item.update(rest)
        item.setdefault("reviewer", "system")
        item["kyc"] = {**kyc, "result": "incomplete"}
        if item.get("userid") is None:
            item.pop("userid", None)
        # As JSON has it: the item served and the item `get` returns agree.
        made: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(item))
        return made

    def add(self, item: dict[str, Any]) -> None:
        """Serves `item` (made by `make`) from now on."""
        key = (item["created_at"], item["submission_id"])
        bisect.insort(self._keys, key)
        self._items[item["submission_id"]] = item

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The item as now served, or None."""
        return self._items.get(submission_id)

    def replace(self, submission_id: str, item: dict[str, Any]) -> bool:
        """Serves `item` in place of this one; False if it is not one of these."""
        if submission_id not in self._items:
            return False
        self._items[submission_id] = item
        return True

    def at(self, pos: int) -> dict[str, Any]:
        """The item at server position `pos` (-k..-1)."""
        return self._items[self.key_at(pos)[1]]

    def key_at(self, pos: int) -> tuple[str, str]:
        """(created_at, submission_id) at server position `pos` (-k..-1)."""
        return self._keys[-pos - 1]

    def span(self, start: date | None, end: date | None) -> range:
        """Positions of those created within these inclusive days."""
        if not self._keys:
            return range(0)
        lo = 0 if start is None else bisect.bisect_left(self._keys, (start.isoformat(),))
        # Every timestamp of the day `end` sorts before "<end>U" ("T" < "U"): no day after
        # it to compute, which date.max has not.
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, (f"{end}U",))
        return range(-hi, -lo) if hi > lo else range(0)

    def position_after(self, created_at: str, submission_id: str) -> int | None:
        """The first position strictly after the key in server order, if one of these is."""
        older = bisect.bisect_left(self._keys, (created_at, submission_id))
        return None if older == 0 else -older

    def _new_id(self, number: int, taken: Mapping[str, int]) -> str:
        # A stream of this emulator's own per number, so runs stay deterministic; a clash
        # with a generated id (as unlikely as one between two days) draws the next number's.
        while True:
            sid = token(draws(f"created/{self._seed}/{number}".encode()))[:16]
            if sid not in taken and sid not in self._items:
                return sid
            number += 1_000_000

    def _created_at(self, at: Any) -> str:
        if at is None:
            newest = self._keys[-1][0] if self._keys else None
            if newest is None:
                return self.window_end
            return format_timestamp(parse_timestamp(newest) + timedelta(seconds=1))
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError("created_at must be timezone-aware")
            at = format_timestamp(at)
        if not isinstance(at, str) or not TIMESTAMP_RE.fullmatch(at):
            raise ValueError(f"created_at {at!r} is not a timestamp like 2026-01-01T12:00:00.000Z")
        if at < self.window_end:
            raise ValueError(
                f"created_at must not be before the data set's window ends ({self.window_end}):"
                " new submissions come after the generated ones"
            )
        return at
