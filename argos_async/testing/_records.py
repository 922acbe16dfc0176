"""The skeleton of the synthetic data set: who submitted, when, with which outcome.

One seeded stream decides, in this order: the people (and how often each came back), the
creation times, each submission's result, ids and item seed, then which submissions belong
to the heavy QA address. The full item is built later from its record (`_items`), from a
stream of its own, so it can be built on demand.

Each step draws from the shared stream in a fixed order; changing that order, or drawing
once more or less, changes every seed's data (tests/test_dataset.py pins it).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import date, timedelta

from ._clock import DAY_MS, Clock
from ._tables import (
    ALNUM,
    COUNTRIES,
    DOMAINS,
    HEAVY_EMAIL,
    HEAVY_USERIDS,
    NATIONALITIES,
    RESULTS,
)

__all__ = ["Draw", "Person", "Record", "generate_records"]

Draw = Callable[[], float]
"""A seeded stream's `random()`: a float in [0, 1)."""


class Person:
    """Someone who submitted once or more; repeated submissions share these."""

    __slots__ = (
        "applicant_id", "dob", "email", "first", "gender", "last", "nat", "userid",
    )  # fmt: skip

    def __init__(
        self,
        first: str,
        last: str,
        gender: str,
        nat: str,
        dob: date,
        email: str,
        userid: str | None,
    ) -> None:
        self.first = first
        self.last = last
        self.gender = gender
        self.nat = nat
        self.dob = dob
        self.email = email
        self.userid = userid
        # Drawn when the person's first approved submission is made: only those carry one.
        self.applicant_id: str | None = None


class Record:
    """What the server needs to index a submission; the full item is built from it on demand."""

    __slots__ = (
        "applicant_id", "created_at", "created_ms", "email", "item_seed", "person", "repeated",
        "result", "sid", "userid",
    )  # fmt: skip

    def __init__(
        self,
        created_ms: int,
        created_at: str,
        sid: str,
        person: Person,
        repeated: bool,
        result: str,
        item_seed: float,
        applicant_id: str | None,
    ) -> None:
        self.created_ms = created_ms
        self.created_at = created_at
        self.sid = sid
        self.person = person
        self.repeated = repeated
        self.result = result
        # The person's, unless the submission is moved to the heavy address.
        self.email = person.email
        self.userid = person.userid
        self.applicant_id = applicant_id
        self.item_seed = item_seed


def generate_records(n: int, seed: int, start: date, days: int, heavy: int) -> list[Record]:
    """`n` records in creation order (not yet in server order), `heavy` of them on the heavy
    address."""
    rng = random.Random(seed)
    r = rng.random
    tokens = _Tokens(r)
    people = _draw_people(r, n)
    created = _draw_creation_times(r, n, days)
    records = _draw_submissions(r, people, created, tokens, Clock(start, days))
    _move_to_heavy_address(rng, records, heavy)
    return records


@functools.cache
def _triples() -> tuple[str, ...]:
    # Ids are five of these and one more character: one draw per three characters.
    return tuple(a + b + c for a in ALNUM for b in ALNUM for c in ALNUM)


class _Tokens:
    """Submission and applicant ids: 16 random lower-case alphanumerics."""

    def __init__(self, r: Draw) -> None:
        self._r = r
        self._triples = _triples()
        self._used: set[str] = set()

    def token(self) -> str:
        """A fresh random token (applicant ids: not checked for repeats)."""
        r, triples = self._r, self._triples
        return (
            triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + ALNUM[int(r() * 36)]
        )

    def new_id(self) -> str:
        """A token no submission has yet."""
        while True:
            sid = self.token()
            if sid not in self._used:
                self._used.add(sid)
                return sid


def _draw_people(r: Draw, n: int) -> list[tuple[Person, int]]:
    """People and how many submissions each made, `n` in all; one in twenty came back."""
    people: list[tuple[Person, int]] = []
    total = 0
    seq = 0
    while total < n:
        seq += 1
        repeats = 1 if r() >= 0.05 else 2 + int(r() * 3)
        repeats = min(repeats, n - total)
        people.append((_draw_person(r, seq), repeats))
        total += repeats
    return people


def _draw_person(r: Draw, email_seq: int) -> Person:
    nat = NATIONALITIES[int(r() * len(NATIONALITIES))]
    _, males, females, lasts = COUNTRIES[nat]
    gender = "male" if r() < 0.5 else "female"
    firsts = males if gender == "male" else females
    first = firsts[int(r() * len(firsts))]
    last = lasts[int(r() * len(lasts))]
    dob = date(1950, 1, 1) + timedelta(days=int(r() * 20_000))
    domain = DOMAINS[int(r() * len(DOMAINS))]
    local = _email_local_part(r(), first, last, dob, email_seq)
    userid = f"user_{email_seq + 10_000}" if r() < 0.85 else None
    return Person(first, last, gender, nat, dob, f"{local}@{domain}", userid)


def _email_local_part(style: float, first: str, last: str, dob: date, email_seq: int) -> str:
    """The part before the @, in one of the shapes real addresses take (plus tags included)."""
    f, la = first.lower(), last.lower().replace(" ", "")
    if style < 0.45:
        return f"{f}.{la}{email_seq % 1000}"
    if style < 0.75:
        return f"{f[0]}{la}{dob.year % 100:02d}{email_seq % 97}"
    if style < 0.9:
        return f"{f}.{la}+kyc{email_seq % 1000}"
    return f"{f}{la}+{('test', 'argos', 'id')[email_seq % 3]}{email_seq % 1000}"


def _draw_creation_times(r: Draw, n: int, days: int) -> list[int]:
    """`n` creation times, in milliseconds from the window's start."""
    span = days * DAY_MS
    created = [int(r() * span) for _ in range(n)]
    # The boundary cases the date filter and the cursor must get right, built in: the first
    # and last millisecond of a day, and ties on created_at.
    if n >= 4:
        for i in range(max(2, n // 500)):
            day = int(r() * days) * DAY_MS
            created[int(r() * n)] = day if i % 2 == 0 else day + DAY_MS - 1
        for _ in range(max(2, n // 1000)):
            # Python draws the right-hand index first: the copied time, then the place.
            created[int(r() * n)] = created[int(r() * n)]
    return created


def _draw_submissions(
    r: Draw,
    people: list[tuple[Person, int]],
    created: list[int],
    tokens: _Tokens,
    clock: Clock,
) -> list[Record]:
    """One record per submission, person by person, taking creation times in turn."""
    records: list[Record] = []
    for person, repeats in people:
        for _ in range(repeats):
            result = _draw_result(r(), repeats > 1)
            applicant_id = None
            if result == "approved":
                if person.applicant_id is None:
                    person.applicant_id = tokens.token()
                applicant_id = person.applicant_id
            ms = created[len(records)]
            sid = tokens.new_id()
            records.append(
                Record(ms, clock(ms), sid, person, repeats > 1, result, r(), applicant_id)
            )
    return records


def _draw_result(u: float, repeated: bool) -> str:
    if repeated:
        # People who come back are usually approved again: that is what makes applicant
        # ids shared.
        return "approved" if u < 0.85 else "rejected"
    return RESULTS[int(u * 10)]


def _move_to_heavy_address(rng: random.Random, records: list[Record], heavy: int) -> None:
    """The heavy address: a QA account that ran many test submissions under different names
    (single submissions only, so no person's history is split)."""
    singles = [rec for rec in records if not rec.repeated]
    for rec in rng.sample(singles, min(len(singles), heavy)):
        rec.email = HEAVY_EMAIL
        rec.userid = HEAVY_USERIDS[int(rng.random() * 3)]
