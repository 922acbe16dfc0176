"""`Dataset`: a deterministic synthetic set of Argos KYC submissions in the API's wire shape,
with the indexes the emulator serves it by.

It holds little that can be made again cheaply, so that a large data set starts at once and
stays small: until something asks, it is its `Plan` (a few numbers per day). A day's records
are drawn when first needed (`_records.build_day`) and kept in a bounded cache; an item is
built from its record on every access (`_items`); the indexes by id, email, user id and
applicant id are built on first use.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar, overload

from ._items import ItemBuilder
from ._records import EMPTY_DAY, Day, Plan, Record, build_day
from ._wire import parse_query_date

__all__ = ["Dataset"]

T = TypeVar("T")

# Days kept once built, counted in records (about half a kilobyte each): every day of the data
# sets tests use, and the latest third of the demo's.
_CACHED_RECORDS = 32_000


class Dataset:
    """A deterministic synthetic submission set, in server order (newest first).

    Build it with `Dataset.generate`. Everything is made on demand: treat what it returns as
    read-only (items are built afresh on each access).

    Attributes (a "position" is an index into `items`, i.e. the server order):

    - `seed`, `start`, `days`: the arguments it was generated with.
    - `items`: every submission as a single lookup returns it (a JSON-like dict).
    - `ids`, `created_ats`, `emails`, `userids`: per position, the item's `submission_id`,
      `created_at` string, `email` and `userid` (None when it has none), without building it.
    - `position`: submission id to position.
    - `email_positions`, `userid_positions`, `applicant_positions`: email, userid or
      applicant id to the ascending positions of its items.
    - `heavy_email`: the address of a QA account with many submissions, for filter tests:
      `heavy` of them (with `heavy=0`, that of a person who came back the most times).

    The sequences are views (a slice is a list); the mappings are built on first use.
    """

    def __init__(self, n: int, seed: int, *, start: date, days: int, heavy: int) -> None:
        self.seed = seed
        self.start = start
        self.days = days
        self._n = n
        self._plan = Plan(n, seed, start, days, heavy)
        self._builder = ItemBuilder(self._plan.key, self._plan.clock)
        # Server order is newest first: day d holds positions [after[d + 1], after[d]).
        self._after = [0] * (days + 1)
        for day in reversed(range(days)):
            self._after[day] = self._after[day + 1] + self._plan.counts[day]
        self._day_starts = self._after[:0:-1]  # the days' first positions, the last day first
        self._day_names = self._plan.clock.days[: days + 1]
        self._cache: OrderedDict[int, Day] = OrderedDict()
        self._cached_records = 0
        self._last_day: tuple[int, int, Day] = (0, 0, EMPTY_DAY)
        self.items: Sequence[dict[str, Any]] = _Items(self)
        self.ids: Sequence[str] = _Column(self, operator.attrgetter("sid"))
        self.created_ats: Sequence[str] = _Column(self, operator.attrgetter("created_at"))
        self.emails: Sequence[str] = _Column(self, operator.attrgetter("email"))
        self.userids: Sequence[str | None] = _Column(self, operator.attrgetter("userid"))
        self.position: Mapping[str, int] = _Index(self._id_positions)
        self.email_positions: Mapping[str, list[int]] = _Index(lambda: _positions(self.emails))
        self.userid_positions: Mapping[str, list[int]] = _Index(lambda: _positions(self.userids))
        self.applicant_positions: Mapping[str, list[int]] = _Index(
            lambda: _positions(_Column(self, operator.attrgetter("applicant_id")))
        )
        self.heavy_email = self._plan.busiest_email()

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
        return self._n

    def __repr__(self) -> str:
        return f"Dataset(n={self._n}, seed={self.seed}, start={self.start}, days={self.days})"

    # -- the indexes, built on first use --------------------------------------------------

    def _id_positions(self) -> dict[str, int]:
        index = {sid: i for i, sid in enumerate(self.ids)}
        if len(index) != self._n:
            # Ids are distinct within a day, across days only by chance (see _records).
            raise RuntimeError(f"two submissions of {self!r} drew the same id")
        return index

    # -- records and items ----------------------------------------------------------------

    def record(self, pos: int) -> Record:
        """The record at this position (negative ones count from the end)."""
        day, j = self._locate(pos)
        return day.record(j)

    def records(self, first: int = 0, last: int | None = None) -> Iterator[Record]:
        """The records of positions [first, last), in server order."""
        for day, start, stop in self._spans(first, last):
            for j in range(start, stop):
                yield day.record(j)

    def item(self, pos: int) -> dict[str, Any]:
        """The item at this position as a single lookup returns it (built afresh)."""
        return self._builder.full(*self._locate(pos))

    def list_item(self, pos: int) -> dict[str, Any]:
        """The item at this position as a list page carries it (built afresh, without the
        fields only a single lookup has)."""
        return self._builder.listed(*self._locate(pos))

    def _locate(self, pos: int) -> tuple[Day, int]:
        if pos < 0:
            pos += self._n
        first, stop, day = self._last_day
        if first <= pos < stop:
            # Most lookups follow one another through a day: the day found last serves.
            return day, pos - first
        if not 0 <= pos < self._n:
            raise IndexError("position out of range")
        i = bisect.bisect_right(self._day_starts, pos) - 1
        first = self._day_starts[i]
        day = self._day(self.days - 1 - i)
        self._last_day = (first, first + len(day.sid), day)
        return day, pos - first

    def _spans(self, first: int = 0, last: int | None = None) -> Iterator[tuple[Day, int, int]]:
        """Positions [first, last) as (day, start, stop) of each day they cross."""
        last = self._n if last is None else min(last, self._n)
        pos = max(first, 0)
        while pos < last:
            i = bisect.bisect_right(self._day_starts, pos) - 1
            day = self._day(self.days - 1 - i)
            start = pos - self._day_starts[i]
            stop = min(len(day.sid), start + last - pos)
            yield day, start, stop
            pos += stop - start

    def _day(self, day: int) -> Day:
        built = self._cache.get(day)
        if built is not None:
            self._cache.move_to_end(day)
            return built
        built = build_day(self._plan, day)
        self._cache[day] = built
        self._cached_records += len(built.sid)
        while self._cached_records > _CACHED_RECORDS and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_records -= len(dropped.sid)
        return built

    # -- queries --------------------------------------------------------------------------

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """Returns the full item with this id, or None."""
        pos = self.position.get(submission_id)
        return None if pos is None else self.item(pos)

    def for_email(self, email: str) -> list[dict[str, Any]]:
        """Items with this email, in server order."""
        return [self.item(i) for i in self.email_positions.get(email, ())]

    def for_userid(self, userid: str) -> list[dict[str, Any]]:
        """Items with this userid, in server order."""
        return [self.item(i) for i in self.userid_positions.get(userid, ())]

    def for_applicant(self, applicant_id: str) -> list[dict[str, Any]]:
        """Approved items carrying this applicant_id, in server order."""
        return [self.item(i) for i in self.applicant_positions.get(applicant_id, ())]

    @property
    def shared_applicant_ids(self) -> list[str]:
        """Applicant ids carried by two or more submissions, sorted."""
        return sorted(a for a, p in self.applicant_positions.items() if len(p) > 1)

    def date_range(self, start_date: date | None, end_date: date | None) -> tuple[int, int]:
        """Server positions [first, last) of the items created within these inclusive days."""
        lo = 0 if start_date is None else self._day_index(start_date)
        hi = self.days if end_date is None else self._day_index(end_date) + 1
        lo, hi = (min(max(d, 0), self.days) for d in (lo, hi))
        first = self._after[hi]
        return first, max(first, self._after[lo])

    def _day_index(self, day: date) -> int:
        return (day - self.start).days

    def position_after(self, created_at: str, submission_id: str) -> int:
        """First server position strictly after the key (created_at, id) in server order."""
        # The day whose timestamps sort with this one (it may name no real day at all).
        day = bisect.bisect_right(self._day_names, created_at) - 1
        if day < 0:
            return self._n
        if day >= self.days:
            return 0
        built = self._day(day)
        ascending = list(zip(reversed(built.created_at), reversed(built.sid), strict=True))
        below = bisect.bisect_left(ascending, (created_at, submission_id))
        return self._after[day + 1] + len(ascending) - below

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
            rec.sid
            for rec in self.records(first, last)
            if (email is None or rec.email == email) and (userid is None or rec.userid == userid)
        ]


class _Index(Mapping[str, T]):
    """A mapping built on first use (a pass over every record)."""

    def __init__(self, build: Callable[[], dict[str, T]]) -> None:
        self._build = build
        self._built: dict[str, T] | None = None

    def _mapping(self) -> dict[str, T]:
        if self._built is None:
            self._built = self._build()
        return self._built

    def __getitem__(self, key: str) -> T:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return "<an index not built yet>" if self._built is None else repr(self._built)


class _Column(Sequence[T]):
    """One field of every record, by position, without building items."""

    def __init__(self, dataset: Dataset, field: Callable[[Day], tuple[T, ...]]) -> None:
        self._dataset = dataset
        self._field = field

    def __len__(self) -> int:
        return len(self._dataset)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            spans = self._dataset._spans(start, stop)
            return [value for day, a, b in spans for value in self._field(day)[a:b]]
        day, j = self._dataset._locate(index)
        return self._field(day)[j]

    def __iter__(self) -> Iterator[T]:
        for day, start, stop in self._dataset._spans():
            yield from self._field(day)[start:stop]

    def __eq__(self, other: object) -> bool:
        # Like the tuples these once were: equal to any sequence of the same values.
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} values of {self._dataset!r}>"


class _Items(Sequence[dict[str, Any]]):
    """The items in server order, each built on access."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._dataset.item(i) for i in range(*index.indices(len(self)))]
        return self._dataset.item(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        full = self._dataset._builder.full
        for day, start, stop in self._dataset._spans():
            for j in range(start, stop):
                yield full(day, j)

    def __repr__(self) -> str:
        return f"<{len(self)} items of {self._dataset!r}>"


def _positions(values: Iterable[str | None]) -> dict[str, list[int]]:
    """Each value (but None) to the ascending positions it is found at."""
    out: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        if value is None:
            continue
        positions = out.get(value)
        if positions is None:
            out[value] = [i]
        else:
            positions.append(i)
    return out


def _build(n: int, seed: int, start: date, days: int, heavy: int | None = None) -> Dataset:
    return Dataset(n, seed, start=start, days=days, heavy=n // 50 if heavy is None else heavy)


# Positional arguments only, so equivalent calls share one entry.
_cached_build = functools.lru_cache(maxsize=16)(_build)
