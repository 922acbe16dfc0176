"""`Dataset`: a deterministic synthetic set of Argos KYC submissions in the API's wire shape,
with the indexes the emulator serves it by.

Generation is split in two: `_records` draws every submission's skeleton (who, when, which
outcome) up front, `_items` builds each full item from its record on first access.
"""

from __future__ import annotations

import bisect
import functools
import gc
import operator
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ._clock import Clock
from ._items import Items
from ._records import Record, generate_records
from ._tables import HEAVY_EMAIL
from ._wire import day_bounds, parse_query_date

__all__ = ["Dataset", "day_bounds", "parse_query_date"]


class Dataset:
    """A deterministic synthetic submission set; `items` are in server order (newest first).

    Build it with `Dataset.generate`. Items are built lazily and shared: treat them as read-only.

    Attributes (a "position" is an index into `items`, i.e. the server order):

    - `seed`, `start`, `days`: the arguments it was generated with.
    - `items`: every submission as a single lookup returns it (a JSON-like dict).
    - `ids`, `created_ats`, `emails`, `userids`: per position, the item's `submission_id`,
      `created_at` string, `email` and `userid` (None when it has none), without building it.
    - `position`: submission id to position.
    - `email_positions`, `userid_positions`, `applicant_positions`: email, userid or
      applicant id to the ascending positions of its items.
    - `heavy_email`: the address with the most submissions (a QA account's), for filter tests.
    """

    def __init__(self, records: list[Record], *, seed: int, start: date, days: int) -> None:
        self.seed = seed
        self.start = start
        self.days = days
        records.sort(key=operator.attrgetter("created_at", "sid"), reverse=True)
        self._records = records
        self.items: Sequence[dict[str, Any]] = Items(records, Clock(start, days))
        self.ids: tuple[str, ...] = tuple(rec.sid for rec in records)
        self.created_ats: tuple[str, ...] = tuple(rec.created_at for rec in records)
        self.emails: tuple[str, ...] = tuple(rec.email for rec in records)
        self.userids: tuple[str | None, ...] = tuple(rec.userid for rec in records)
        # Ascending (created_at, id) keys for bisect; server position = n - 1 - index.
        ascending = zip(reversed(self.created_ats), reversed(self.ids), strict=True)
        self._keys_ascending = list(ascending)
        self.position: Mapping[str, int] = {sid: i for i, sid in enumerate(self.ids)}
        by_email: dict[str, list[int]] = {}
        by_userid: dict[str, list[int]] = {}
        by_applicant: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            by_email.setdefault(rec.email, []).append(i)
            if rec.userid is not None:
                by_userid.setdefault(rec.userid, []).append(i)
            if rec.applicant_id is not None:
                by_applicant.setdefault(rec.applicant_id, []).append(i)
        # Ascending server positions per key: the list endpoint bisects these.
        self.email_positions: Mapping[str, list[int]] = by_email
        self.userid_positions: Mapping[str, list[int]] = by_userid
        self.applicant_positions: Mapping[str, list[int]] = by_applicant
        self.heavy_email = (
            max(by_email, key=lambda e: len(by_email[e])) if by_email else HEAVY_EMAIL
        )

    @staticmethod
    def generate(
        n: int,
        seed: int,
        *,
        start: date = date(2025, 1, 1),
        days: int = 365,
        heavy: int | None = None,
    ) -> Dataset:
        """Builds (or returns the cached) data set of `n` submissions for these arguments.

        `heavy` is how many of them belong to `heavy_email` (default `n // 50`), so that a
        test can have an address with many pages of submissions without a huge data set.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if days < 1:
            raise ValueError("days must be >= 1")
        if heavy is not None and not 0 <= heavy <= n:
            raise ValueError("heavy must be within 0..n")
        return _cached_build(n, seed, start, days, n // 50 if heavy is None else heavy)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Dataset(n={len(self.ids)}, seed={self.seed}, start={self.start}, days={self.days})"

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """Returns the full item with this id, or None."""
        pos = self.position.get(submission_id)
        return None if pos is None else self.items[pos]

    def for_email(self, email: str) -> list[dict[str, Any]]:
        """Items with this email, in server order."""
        return [self.items[i] for i in self.email_positions.get(email, ())]

    def for_userid(self, userid: str) -> list[dict[str, Any]]:
        """Items with this userid, in server order."""
        return [self.items[i] for i in self.userid_positions.get(userid, ())]

    def for_applicant(self, applicant_id: str) -> list[dict[str, Any]]:
        """Approved items carrying this applicant_id, in server order."""
        return [self.items[i] for i in self.applicant_positions.get(applicant_id, ())]

    @property
    def shared_applicant_ids(self) -> list[str]:
        """Applicant ids carried by two or more submissions, sorted."""
        return sorted(a for a, p in self.applicant_positions.items() if len(p) > 1)

    def date_range(self, start_date: date | None, end_date: date | None) -> tuple[int, int]:
        """Server positions [first, last) of the items created within these inclusive days."""
        lo_key, hi_key = day_bounds(start_date, end_date)
        n = len(self.ids)
        keys = self._keys_ascending
        first = 0 if hi_key is None else n - bisect.bisect_left(keys, (hi_key, ""))
        last = n if lo_key is None else n - bisect.bisect_left(keys, (lo_key, ""))
        return first, max(first, last)

    def position_after(self, created_at: str, submission_id: str) -> int:
        """First server position strictly after the key (created_at, id) in server order."""
        return len(self.ids) - bisect.bisect_left(self._keys_ascending, (created_at, submission_id))

    def expected_ids(
        self,
        *,
        email: str | None = None,
        userid: str | None = None,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
    ) -> list[str]:
        """The ids a full listing with these filters returns, in server order (a test oracle)."""
        first, last = self.date_range(
            None if start_date is None else parse_query_date(start_date),
            None if end_date is None else parse_query_date(end_date),
        )
        return [
            self.ids[i]
            for i in range(first, last)
            if (email is None or self.emails[i] == email)
            and (userid is None or self.userids[i] == userid)
        ]


def _build(n: int, seed: int, start: date, days: int, heavy: int | None = None) -> Dataset:
    # The cyclic GC rescans the growing heap again and again while it fills with fresh
    # objects (none of them cyclic): pausing it keeps generation linear in n.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        records = generate_records(n, seed, start, days, n // 50 if heavy is None else heavy)
        return Dataset(records, seed=seed, start=start, days=days)
    finally:
        if was_enabled:
            gc.enable()


# Positional arguments only, so equivalent calls share one entry.
_cached_build = functools.lru_cache(maxsize=16)(_build)
