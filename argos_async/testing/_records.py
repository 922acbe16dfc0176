"""The skeleton of the synthetic data set: who submitted, when, with which outcome.

Version 2 of the data, made a day at a time so that the emulator can serve its first page
before it has drawn the rest. Two levels:

- `Plan`, drawn up front from the seed in a few milliseconds: who came back and on which days
  (returning people), how many submissions each day holds, and how many of each day's go to
  the heavy QA address or are the boundary cases (a day's first and last millisecond, ties).
- `build_day`: one day's records, from a stream of that day's own, so any day can be built in
  any order and always comes out the same.

A returning person's details come from a stream of that person's own (`draws`), and each
record's full item is built later (`_items`) from streams keyed by its submission id.

Each step draws from its stream in a fixed order; changing that order, or drawing once more or
less, changes every seed's data (tests/test_dataset.py pins it).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import operator
import random
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import NamedTuple

from ._clock import DAY_MS, Clock
from ._tables import (
    COUNTRIES,
    DOMAINS,
    HEAVY_EMAIL,
    HEAVY_USERIDS,
    NATIONALITIES,
    RESULTS,
)

__all__ = [
    "EMPTY_DAY",
    "ID_ALPHABET",
    "VERSION",
    "Day",
    "Draw",
    "Plan",
    "Record",
    "build_day",
    "draws",
    "token",
]

VERSION = 2
"""The generator's version: part of every stream's key, so versions never share data."""

Draw = Callable[[], float]
"""A seeded stream's `random()`: a float in [0, 1)."""

ITEM_DRAWS = 20
"""Draws a day sets aside for each of its items (nine in ten need no more); the others go on
with a stream of their own."""

# As many submissions as in version 1, where one person in twenty came back two to four times.
_RETURNING_SHARE = 0.15 / 1.1
_BLOCK = struct.Struct("<8Q")
_SCALE = 2.0**-53
ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
"""The 32 characters of ids: lower-case letters and digits but l, o, 0 and 1."""
_ID_TABLE = bytes(ord(ID_ALPHABET[b % 32]) for b in range(256))
_DOB_FIRST = date(1950, 1, 1).toordinal()
# The 4 exponent bits of 1.0 in the second byte of a double (0xF), its 4 fraction bits kept.
_EXPONENT_LOW = bytes(0xF0 | (b & 0x0F) for b in range(256))
_ONES = itertools.repeat(1.0)


def draws(key: bytes) -> Draw:
    """A stream determined by `key` alone, cheap to start (a Mersenne Twister costs more to
    seed than a whole item takes to build): 8 draws of 53 bits, like `random()`'s, per
    BLAKE2b digest, as many as asked."""
    return itertools.chain(_block(key, 0), _more_blocks(key)).__next__


def _block(key: bytes, index: int) -> list[float]:
    salt = index.to_bytes(16, "little")
    digest = hashlib.blake2b(key, digest_size=64, salt=salt).digest()
    return [(u >> 11) * _SCALE for u in _BLOCK.unpack(digest)]


def _more_blocks(key: bytes) -> Iterator[float]:
    for index in itertools.count(1):
        yield from _block(key, index)


def token(r: Draw) -> str:
    """20 random characters of `ID_ALPHABET`, from three draws (of 53 bits, of which the
    characters take the low 5 of each byte)."""
    bits = int(r() * 2**53) << 106 | int(r() * 2**53) << 53 | int(r() * 2**53)
    return _spell(bits.to_bytes(20, "little"))


def _tokens(raw: bytes) -> list[str]:
    """Ids of 16 characters, one from each byte of `raw`: made in one go (a day needs
    hundreds; base64's base 32 loops in Python, five bytes at a time)."""
    text = _spell(raw)
    return [text[i : i + 16] for i in range(0, len(text), 16)]


def _spell(raw: bytes) -> str:
    """One character of `ID_ALPHABET` per byte, from its low 5 bits: each as likely."""
    return raw.translate(_ID_TABLE).decode("ascii")


Person = tuple[str, str, str, str, date, str, str | None]
"""Someone who submitted: first and last name, gender, nationality, date of birth, email,
user id. A returning person's submissions share these."""


class Record(NamedTuple):
    """One submission as the server indexes it; the full item is built from it on demand."""

    sid: str
    created_ms: int
    """Milliseconds from the window's start; `created_at` is the same, formatted."""
    created_at: str
    email: str
    """The person's, unless the submission was moved to the heavy address (so is `userid`)."""
    userid: str | None
    applicant_id: str | None
    result: str
    repeated: bool
    """Whether the person came more than once."""
    first: str
    last: str
    gender: str
    nat: str
    dob: date


class Day(NamedTuple):
    """One day's records in server order, as columns: a few tuples of strings and numbers
    hold a day with next to no objects for the garbage collector to walk (it walked the
    million small objects of version 1 over and over, and again when the process ended)."""

    sid: tuple[str, ...]
    created_ms: tuple[int, ...]
    created_at: tuple[str, ...]
    email: tuple[str, ...]
    userid: tuple[str | None, ...]
    applicant_id: tuple[str | None, ...]
    result: tuple[str, ...]
    repeated: tuple[bool, ...]
    first: tuple[str, ...]
    last: tuple[str, ...]
    gender: tuple[str, ...]
    nat: tuple[str, ...]
    dob: tuple[date, ...]
    slot: tuple[int, ...]
    """Where each record's share of `item_draws` begins."""
    item_draws: array[float]
    """`ITEM_DRAWS` draws per record, for its item, each plus one (see `_floats_1_2`)."""

    def record(self, j: int) -> Record:
        """The record at index `j` of the day."""
        return Record(
            self.sid[j], self.created_ms[j], self.created_at[j], self.email[j],
            self.userid[j], self.applicant_id[j], self.result[j], self.repeated[j],
            self.first[j], self.last[j], self.gender[j], self.nat[j], self.dob[j],
        )  # fmt: skip

    def item_draws_of(self, j: int, overflow: bytes) -> Draw:
        """The stream of record `j`'s item: its share of the day's draws, then the stream
        keyed by `overflow`."""
        start = self.slot[j]
        share = map(operator.sub, self.item_draws[start : start + ITEM_DRAWS], _ONES)
        return itertools.chain(share, _Overflow(overflow)).__next__


EMPTY_DAY = Day((), (), (), (), (), (), (), (), (), (), (), (), (), (), array("d"))
"""A day without submissions."""


class _Overflow:
    """An iterable whose stream is only keyed and hashed when it is iterated: few items get
    to it."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key

    def __iter__(self) -> Iterator[float]:
        return _more_blocks(self.key)


class Plan:
    """What spans days, drawn up front: per day, its submissions and what is special about
    them; and the returning people, each with the days of their visits.

    People are numbered from 1, returning people first, then everyone who came once, day by
    day: the number is part of their user id and email address.
    """

    def __init__(self, n: int, seed: int, start: date, days: int, heavy: int) -> None:
        self.key = f"argos-emulator/{VERSION}/{seed}/{n}/{start.isoformat()}/{days}/{heavy}"
        self.clock = Clock(start, days)
        rng = random.Random(self.key)
        r = rng.random
        self._visit_counts, self._visits = _draw_returning_visits(r, n, days)
        returning = self._people = len(self._visit_counts)
        repeated = len(self._visits)
        visits_per_day = [self._visit_span(day) for day in range(days)]
        # Per day, the submissions of people who came once, and how many of those go to the
        # heavy address: drawn at random among them (apportioned, a few would all fall on the
        # busiest days).
        singles = _apportion(n - repeated, [0.5 + r() for _ in range(days)])
        self.heavy = _spread(rng, min(heavy, n - repeated), singles)
        self._heavy = heavy
        self.counts = [s + hi - lo for s, (lo, hi) in zip(singles, visits_per_day, strict=True)]
        """Per day, its submissions."""
        self.first_person = list(itertools.accumulate(singles[:-1], initial=returning + 1))
        """Per day, the number of its first single person."""
        # The cases the date filter and the cursor must get right, built in: the first and
        # last millisecond of a day, and ties on created_at; spread like the submissions.
        self.edges = _spread(rng, max(2, n // 500) if n >= 4 else 0, self.counts, repeat=True)
        self.ties = _spread(rng, max(2, n // 1000) if n >= 4 else 0, self.counts, repeat=True)
        self._person_key = f"{self.key}/person/".encode()

    def visits(self, day: int) -> list[int]:
        """The returning people (by number, from 0) who came on this day."""
        lo, hi = self._visit_span(day)
        return [visit - day * self._people for visit in self._visits[lo:hi]]

    def _visit_span(self, day: int) -> tuple[int, int]:
        visits, people = self._visits, self._people
        lo = bisect.bisect_left(visits, day * people)
        return lo, bisect.bisect_left(visits, (day + 1) * people, lo)

    def busiest_email(self) -> str:
        """The heavy address; without one, the address of the first person who came back the
        most times."""
        if self._heavy or not self._visit_counts:
            return HEAVY_EMAIL
        most = max(self._visit_counts)
        return self.returning_person(self._visit_counts.index(most))[0][5]

    def returning_person(self, number: int) -> tuple[Person, str]:
        """Returning person `number` (from 0) and the applicant id their approved submissions
        carry; the same whichever day asks."""
        key = self._person_key + str(number).encode()
        (applicant_id,) = _tokens(hashlib.blake2b(key, digest_size=16).digest())
        return _draw_person(draws(key), number + 1), applicant_id


def _draw_returning_visits(r: Draw, n: int, days: int) -> tuple[list[int], list[int]]:
    """How many times each returning person came (as many visits in all as version 1 had
    repeated submissions), and their visits, in order, each as `day * people + person`
    (whole numbers sort several times quicker than pairs)."""
    counts = [2 + int(r() * 3) for _ in range(round(n * _RETURNING_SHARE / 3))]
    people = len(counts)
    visits = [
        int(r() * days) * people + person
        for person, count in enumerate(counts)
        for _ in range(count)
    ]
    visits.sort()
    return counts, visits


def _spread(rng: random.Random, many: int, counts: list[int], *, repeat: bool = False) -> list[int]:
    """Per day, how many of `many` things drawn among all the days' `counts` of submissions
    (each a different one, unless `repeat`) fall on it."""
    cumulative = list(itertools.accumulate(counts, initial=0))
    total = cumulative[-1]
    r = rng.random
    drawn: Iterable[int]
    if repeat:
        drawn = [int(r() * total) for _ in range(many)]
    else:
        # random.sample would do, but draws its numbers slowly, one Python call each.
        distinct: set[int] = set()
        while len(distinct) < min(many, total):
            distinct.update([int(r() * total) for _ in range(many - len(distinct))])
        drawn = distinct
    out = [0] * len(counts)
    for position in drawn:
        out[bisect.bisect_right(cumulative, position) - 1] += 1
    return out


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders round up; of equal
    remainders the earlier), never more than a whole-number weight."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w / whole for w in weights]
    out = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: out[i] - shares[i])
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def build_day(plan: Plan, day: int) -> Day:
    """Day `day`'s records (from 0), in server order: newest first, ties by id descending."""
    k = plan.counts[day]
    if k == 0:
        return EMPTY_DAY
    rng = random.Random(f"{plan.key}/day/{day}")
    r = rng.random
    created = _draw_creation_times(r, k, day, plan.edges[day], plan.ties[day])
    ids = _draw_ids(rng, k)
    # One for each, though only approved singles carry theirs.
    applicant_ids = _tokens(rng.randbytes(16 * k))
    visits = plan.visits(day)
    first_single = plan.first_person[day] - len(visits)
    people: list[tuple[Person, str, str | None, bool]] = []
    for i in range(k):
        if i < len(visits):
            person, applicant_id = plan.returning_person(visits[i])
            # People who come back are usually approved again: that is what makes applicant
            # ids shared.
            result = "approved" if r() < 0.85 else "rejected"
        else:
            person, applicant_id = _draw_person(r, first_single + i), applicant_ids[i]
            result = RESULTS[int(r() * 10)]
        carried = applicant_id if result == "approved" else None
        people.append((person, result, carried, i < len(visits)))
    # The heavy address: a QA account that ran many test submissions under different names
    # (single submissions only, so no person's history is split).
    chosen = rng.sample(range(len(visits), k), plan.heavy[day])
    heavy = {i: HEAVY_USERIDS[int(r() * 3)] for i in chosen}
    item_draws = _floats_1_2(rng.randbytes(8 * ITEM_DRAWS * k))

    clock = plan.clock
    order = [i for _, _, i in sorted(zip(created, ids, range(k), strict=True), reverse=True)]
    records = []
    for i in order:
        (first, last, gender, nat, dob, email, userid), result, carried, repeated = people[i]
        if i in heavy:
            email, userid = HEAVY_EMAIL, heavy[i]
        ms = created[i]
        records.append(
            (ids[i], ms, clock(ms), email, userid, carried, result, repeated,
             first, last, gender, nat, dob)
        )  # fmt: skip
    columns = list(zip(*records, strict=True))
    return Day._make([*columns, tuple(i * ITEM_DRAWS for i in order), item_draws])


def _floats_1_2(raw: bytes) -> array[float]:
    """Uniform floats in [1, 2), one from each 8 random bytes, made without a Python step
    per float (drawing them one by one took longer than building the day's records): the
    bytes become the 52 fraction bits of IEEE 754 doubles whose sign and exponent are set
    to those of 1.0. Subtracting 1 gives what `random()` would."""
    doubles = bytearray(raw)
    # Little-endian: the top byte holds the sign and exponent, the next its last 4 bits.
    doubles[7::8] = b"\x3f" * (len(raw) // 8)
    doubles[6::8] = doubles[6::8].translate(_EXPONENT_LOW)
    out = array("d", doubles)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def _draw_creation_times(r: Draw, k: int, day: int, edges: int, ties: int) -> list[int]:
    """`k` creation times within the day, in milliseconds from the window's start."""
    base = day * DAY_MS
    created = [base + int(r() * DAY_MS) for _ in range(k)]
    for i in range(edges):
        created[int(r() * k)] = base if i % 2 == 0 else base + DAY_MS - 1
    for _ in range(ties):
        source = int(r() * k)
        created[int(r() * k)] = created[source]
    return created


def _draw_ids(rng: random.Random, k: int) -> list[str]:
    """`k` submission ids, distinct within the day. Across days they are left to chance:
    two of a million ids agree once in 10^12 data sets, and `Dataset.position` would say so."""
    ids = _tokens(rng.randbytes(16 * k))
    while len(set(ids)) < k:
        ids = list(dict.fromkeys(ids))
        ids += _tokens(rng.randbytes(16 * (k - len(ids))))
    return ids


def _draw_person(r: Draw, number: int) -> Person:
    nat = NATIONALITIES[int(r() * len(NATIONALITIES))]
    names = _names(nat)
    first, last, gender, f, la = names[int(r() * len(names))]
    dob = date.fromordinal(_DOB_FIRST + int(r() * 20_000))
    domain = DOMAINS[int(r() * len(DOMAINS))]
    # The part before the @, in one of the shapes real addresses take (plus tags included).
    style = r()
    if style < 0.45:
        local = f"{f}.{la}{number % 1000}"
    elif style < 0.75:
        local = f"{f[0]}{la}{dob.year % 100:02d}{number % 97}"
    elif style < 0.9:
        local = f"{f}.{la}+kyc{number % 1000}"
    else:
        local = f"{f}{la}+{('test', 'argos', 'id')[number % 3]}{number % 1000}"
    userid = f"user_{number + 10_000}" if r() < 0.85 else None
    return first, last, gender, nat, dob, f"{local}@{domain}", userid


@functools.cache
def _names(nat: str) -> tuple[tuple[str, str, str, str, str], ...]:
    """Each (first name, last name, gender) of a country, with the two names as addresses
    spell them: one draw picks all three, each combination as likely (the tables have as
    many male as female names)."""
    _, males, females, lasts = COUNTRIES[nat]
    return tuple(
        (first, last, gender, first.lower(), last.lower().replace(" ", ""))
        for gender, firsts in (("male", males), ("female", females))
        for first in firsts
        for last in lasts
    )
