"""A deterministic synthetic set of Argos KYC submissions in the API's wire shape."""

from __future__ import annotations

import bisect
import functools
import gc
import hashlib
import operator
import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, overload

__all__ = ["Dataset", "day_bounds", "parse_query_date"]

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_DAY_MS = 86_400_000
# Later timestamps (decisions, memos) may fall this many days after the window's end.
_TAIL_DAYS = 120


# name tables: (country name, male first names, female first names, last names)
_COUNTRIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "USA": (
        "United States",
        ("James", "Michael", "Robert", "David", "William", "Daniel", "Matthew", "Joshua"),
        ("Mary", "Jennifer", "Jessica", "Sarah", "Emily", "Ashley", "Olivia", "Madison"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson"),
    ),
    "GBR": (
        "United Kingdom",
        ("Oliver", "George", "Harry", "Jack", "Thomas", "Oscar", "Charlie", "Alfie"),
        ("Amelia", "Isla", "Ava", "Poppy", "Sophie", "Grace", "Lily", "Freya"),
        ("Taylor", "Evans", "Walker", "Wright", "Roberts", "Hughes", "Clarke", "Turner"),
    ),
    "CAN": (
        "Canada",
        ("Liam", "Noah", "Logan", "Ethan", "Lucas", "Owen", "Nathan", "Samuel"),
        ("Emma", "Charlotte", "Chloe", "Zoe", "Hannah", "Abigail", "Maya", "Leah"),
        ("Tremblay", "Gagnon", "Roy", "Campbell", "MacDonald", "Bouchard", "Martin", "Lee"),
    ),
    "KOR": (
        "South Korea",
        ("Minjun", "Seojun", "Doyun", "Jiho", "Hyunwoo", "Junseo", "Taeyang", "Jaewon"),
        ("Seoyeon", "Jiwoo", "Haeun", "Minseo", "Yuna", "Soyeon", "Jiyoung", "Eunji"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon"),
    ),
    "JPN": (
        "Japan",
        ("Haruto", "Sota", "Yuto", "Hiroshi", "Takumi", "Ren", "Kaito", "Daiki"),
        ("Yui", "Hina", "Aoi", "Sakura", "Yuki", "Mio", "Rin", "Akari"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
    ),
    "BRA": (
        "Brazil",
        ("Joao", "Pedro", "Lucas", "Gabriel", "Rafael", "Mateus", "Gustavo", "Felipe"),
        ("Ana", "Maria", "Juliana", "Beatriz", "Larissa", "Camila", "Fernanda", "Leticia"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida"),
    ),
    "PRT": (
        "Portugal",
        ("Tiago", "Duarte", "Goncalo", "Rodrigo", "Francisco", "Martim", "Diogo", "Tomas"),
        ("Ines", "Mariana", "Catarina", "Leonor", "Matilde", "Rita", "Sofia", "Carolina"),
        ("Silva", "Ferreira", "Martins", "Sousa", "Goncalves", "Ribeiro", "Lopes", "Marques"),
    ),
    "ESP": (
        "Spain",
        ("Alejandro", "Pablo", "Javier", "Sergio", "Alvaro", "Adrian", "Hugo", "Manuel"),
        ("Lucia", "Paula", "Laura", "Marta", "Elena", "Carmen", "Alba", "Irene"),
        ("Garcia", "Fernandez", "Gonzalez", "Lopez", "Martinez", "Sanchez", "Perez", "Gomez"),
    ),
    "MEX": (
        "Mexico",
        ("Santiago", "Diego", "Emiliano", "Jose", "Luis", "Carlos", "Miguel", "Jorge"),
        ("Ximena", "Valentina", "Regina", "Daniela", "Guadalupe", "Andrea", "Fernanda", "Sofia"),
        ("Hernandez", "Garcia", "Martinez", "Lopez", "Gonzalez", "Ramirez", "Flores", "Cruz"),
    ),
    "DEU": (
        "Germany",
        ("Lukas", "Leon", "Finn", "Jonas", "Felix", "Maximilian", "Paul", "Moritz"),
        ("Mia", "Hannah", "Lea", "Lena", "Anna", "Laura", "Johanna", "Clara"),
        ("Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"),
    ),
    "FRA": (
        "France",
        ("Gabriel", "Louis", "Arthur", "Jules", "Hugo", "Theo", "Nathan", "Antoine"),
        ("Louise", "Jade", "Camille", "Manon", "Chloe", "Ines", "Lea", "Julie"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"),
    ),
    "IND": (
        "India",
        ("Aarav", "Vihaan", "Arjun", "Rohan", "Rahul", "Aditya", "Karan", "Vikram"),
        ("Priya", "Ananya", "Diya", "Isha", "Kavya", "Neha", "Pooja", "Sneha"),
        ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair"),
    ),
    "VNM": (
        "Vietnam",
        ("Minh", "Huy", "Khang", "Bao", "Phuc", "Quang", "Tuan", "Long"),
        ("Linh", "Trang", "Huong", "Mai", "Ngoc", "Thao", "Lan", "Vy"),
        ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui"),
    ),
    "PHL": (
        "Philippines",
        ("Jose", "Mark", "John", "Carlo", "Miguel", "Paolo", "Rafael", "Angelo"),
        ("Maria", "Angel", "Princess", "Kristine", "Joy", "Camille", "Nicole", "Andrea"),
        ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Dela Cruz", "Ramos"),
    ),
    "NGA": (
        "Nigeria",
        ("Chinedu", "Emeka", "Oluwaseun", "Tunde", "Ibrahim", "Chukwudi", "Femi", "Musa"),
        ("Ngozi", "Chioma", "Aisha", "Funmilayo", "Adaeze", "Blessing", "Amaka", "Zainab"),
        ("Okafor", "Adeyemi", "Okonkwo", "Bello", "Eze", "Olawale", "Nwosu", "Abubakar"),
    ),
}
# Weighted so the customer base looks like a real (Korea-based) provider's.
_NATIONALITY_WEIGHTS = {
    "KOR": 18, "USA": 14, "GBR": 6, "CAN": 4, "JPN": 7, "BRA": 7, "PRT": 3, "ESP": 4,
    "MEX": 5, "DEU": 5, "FRA": 5, "IND": 8, "VNM": 6, "PHL": 5, "NGA": 3,
}  # fmt: skip
_NATIONALITIES = tuple(c for c, w in _NATIONALITY_WEIGHTS.items() for _ in range(w))

_ADDRESSES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    # (city, state, street, zipcode, plus code)
    "USA": (
        ("Washington", "DC", "1600 Pennsylvania Ave NW", "20500", "87C4VXX7+39"),
        ("Austin", "TX", "500 E Cesar Chavez St", "78701", "8625662F+X4"),
    ),
    "KOR": (
        ("Seoul", "Seoul", "110 Sejong-daero, Jung-gu", "04524", "8Q98HXPG+MP"),
        ("Busan", "Busan", "55 Jungang-daero, Dong-gu", "48731", "8Q7XJFRF+7C"),
    ),
    "GBR": (("London", "England", "10 Downing St", "SW1A 2AA", "9C3XGV4C+GH"),),
    "BRA": (("Sao Paulo", "SP", "Av. Paulista, 1578", "01310-200", "588MC974+FC"),),
    "JPN": (("Tokyo", "Tokyo", "1-1 Chiyoda, Chiyoda-ku", "100-8111", "8Q7XMPHQ+4J"),),
    "IND": (("Mumbai", "Maharashtra", "Marine Drive, Churchgate", "400020", "7JFJ3RXC+9V"),),
    "DEU": (("Berlin", "Berlin", "Platz der Republik 1", "11011", "9F4MGC82+Q5"),),
    "MEX": (("Ciudad de Mexico", "CDMX", "Av. Juarez 2, Centro", "06050", "76F2CRJF+25"),),
}

_ID_TYPES: dict[str, tuple[str, ...]] = {
    "USA": ("drivers_license", "drivers_license", "passport", "government_id"),
    "CAN": ("drivers_license", "passport", "government_id"),
    "MEX": ("government_id", "passport", "drivers_license"),
    "KOR": ("government_id", "government_id", "drivers_license", "passport"),
    "IND": ("aadhaar", "aadhaar", "pancard", "passport"),
}
_ID_TYPES_OTHER = (
    "passport", "passport", "government_id", "drivers_license", "residence_permit", "visa",
    "government_id", "vehicle_registration_certificate",
)  # fmt: skip
_ACCEPTED_IDS = (
    "government_id", "passport", "drivers_license", "vehicle_registration_certificate",
    "aadhaar", "residence_permit", "pancard", "visa",
)  # fmt: skip

# (commentCode, comment) as the API sends them, trailing space included where documented.
_REJECTS: tuple[tuple[str, str], ...] = (
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts "),
    ("too_many_retry", "Multiple invalid KYC attempts"),
    ("timeout", "KYC rejected due to timeout"),
    ("timeout", "KYC rejected due to timeout"),
    (
        "id_image_invalidImage",
        "ID document not detected. Please take a picture of your ID document.",
    ),
    ("id_image_invalidId", "Invalid ID document. Please resubmit with another ID document."),
    ("id_image_error", "Fail to upload the ID image. Please resubmit the KYC process."),
    (
        "id_image_badImage",
        "Fail to read the ID image. Please take a clear picture of your ID document.",
    ),
    ("id_info_dataMismatch", "The entered information does not match with your ID document."),
    (
        "invalid_acceptedID",
        "Inacceptable ID type. Please resubmit with another ID, check the valid ID on the "
        "submission page.",
    ),
    ("under_ageLimit", "We do not accept KYC anyone under 13 years old."),
    ("id_info_notOfAge", "We do not accept KYC anyone under 13 years old."),
    ("duplicate_user", "A user has been duplicated as a result of identification."),
    (
        "duplicated_user_PII_exact",
        "A user's personal identity information has been duplicated as a result of identification.",
    ),
    ("duplicated_face", "A duplicate user has been identified through face matching."),
    ("no-date-of-birth", "There is no date of birth information on the ID."),
    ("expired_id", "ID cards have already expired."),
    (
        "automatic_verification_fail",
        "Verification failed - submitted data didn't meet quality requirements.",
    ),
    (
        "address_image_invalidImage",
        "Invalid proof of address. Proof of address must include your full name and "
        "address. ex)utility bill, bank statement, residency certificate, etc.",
    ),
    (
        "address_image_badImage",
        "Fail to read the image. Please take a clear picture of your proof of address.",
    ),
    (
        "address_info_expiredDocument",
        "Expired proof of address. The proof of address should be issued within 6 months.",
    ),
    ("address_info_dataMismatch", "Entered information does not match with your proof of address."),
)
_BLACKLIST_COMMENT = "According to the policy, we do not accept KYC from {}."
_AGENT_COMMENTS = (
    "test",
    "Selfie does not match the ID photo",
    "ID document appears to be a screenshot",
    "Document photo is blurred, please resubmit",
    "Name on the ID does not match the entered name",
)
_RETRIES: tuple[tuple[str, str], ...] = (
    ("face_compare_fail", "Face compare failed: no matching face"),
    ("face_compare_underscore", "The face doesn't match. Please retry with another face image."),
    ("liveness_error", "Liveness fail: Face is too close to one or more borders. Please retry."),
    ("liveness_error", "Liveness fail: Absolute face size is too small. Please retry."),
    ("mrz_protocol_fail", "Failed to detect full MRZ."),
)
_BARCODE_RETRY = ("barcode_protocol_fail", "Failed to read PDF417 Barcode.")
_BARCODE_COUNTRIES = frozenset({"USA", "CAN", "MEX"})
_ORDINALS = ("1st", "2nd", "3rd")
_IP_PREFIXES = ("203.0.113.", "198.51.100.", "192.0.2.")
_DOMAINS = ("example.com", "example.com", "example.org", "example.net")
_MEMOS = (
    "Called the applicant to confirm the address",
    "Re-checked the ID photo manually",
    "VIP customer, priority review",
    "Escalated to compliance",
)
# approved 60 %, rejected 20 %, pending 10 %, incomplete 10 %
_RESULTS = ("approved",) * 6 + ("rejected",) * 2 + ("pending", "incomplete")
_OPTION_SETS: tuple[dict[str, Any], ...] = tuple(
    {
        "option_aml": aml,
        "option_addressData": addr,
        "policy_approvePeriod": period,
        "option_idNumber": True,
        "policy_blacklistCountries": list(black),
        "policy_acceptedID": list(_ACCEPTED_IDS[:k]),
    }
    for aml in (True, False)
    for addr in (False, True)
    for period, black, k in ((0, (), 8), (30, ("PRK", "IRN"), 5))
)
_BANKS = ("004", "011", "020", "088", "090")

_HEAVY_EMAIL = "kyc.qa+regression@example.com"
_HEAVY_USERIDS = ("qa_runner_1", "qa_runner_2", "qa_runner_3")


def parse_query_date(value: date | str) -> date:
    """Parses a query date given as a `date`, `YYYYMMDD` or `YYYY-MM-DD` (ValueError otherwise)."""
    if isinstance(value, datetime):
        raise ValueError("expected a date, not a datetime")
    if isinstance(value, date):
        return value
    if len(value) == 8 and value.isdigit():
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        parts = value.split("-")
        if all(p.isdigit() for p in parts):
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
    raise ValueError(f"invalid date: {value!r}")


def day_bounds(start: date | None, end: date | None) -> tuple[str | None, str | None]:
    """Returns created_at string bounds [lo, hi) for inclusive UTC calendar days."""
    lo = start.isoformat() if start is not None else None
    # "YYYY-MM-DD" sorts before every timestamp of that day and after every one of the day before.
    hi = (end + timedelta(days=1)).isoformat() if end is not None else None
    return lo, hi


@functools.cache
def _time_tables() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    # Formatting timestamps dominates generation time; table lookups make it cheap.
    hms = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
    millis = tuple(f".{m:03d}Z" for m in range(1000))
    triples = tuple(a + b + c for a in _ALNUM for b in _ALNUM for c in _ALNUM)
    return hms, millis, triples


class _Clock:
    """Formats millisecond offsets from the window start as the API's timestamps."""

    def __init__(self, start: date, days: int) -> None:
        self.days = [(start + timedelta(days=d)).isoformat() for d in range(days + _TAIL_DAYS)]
        self.prefixes = [f"{d}T" for d in self.days]
        self.hms, self.millis, _ = _time_tables()
        self.start = start

    def __call__(self, ms: int) -> str:
        d, rem = divmod(ms, _DAY_MS)
        if d >= len(self.days):
            ts = datetime(self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc)
            ts += timedelta(milliseconds=ms)
            return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
        s, milli = divmod(rem, 1000)
        return self.prefixes[d] + self.hms[s] + self.millis[milli]


class _Person:
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


class _Record:
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
        person: _Person,
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
        self.email = person.email
        self.userid = person.userid
        self.applicant_id = applicant_id
        self.item_seed = item_seed


class _Items(Sequence[dict[str, Any]]):
    """The items in server order, each built on first access and then kept."""

    def __init__(self, records: Sequence[_Record], clock: _Clock) -> None:
        self._records = records
        self._clock = clock
        self._built: list[dict[str, Any] | None] = [None] * len(records)

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._records)))]
        item = self._built[index]
        if item is None:
            item = _make_item(self._records[index], self._clock)
            self._built[index] = item
        return item


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

    def __init__(self, records: list[_Record], *, seed: int, start: date, days: int) -> None:
        self.seed = seed
        self.start = start
        self.days = days
        records.sort(key=operator.attrgetter("created_at", "sid"), reverse=True)
        self._records = records
        self.items: Sequence[dict[str, Any]] = _Items(records, _Clock(start, days))
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
            max(by_email, key=lambda e: len(by_email[e])) if by_email else _HEAVY_EMAIL
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
        records = _generate(n, seed, start, days, n // 50 if heavy is None else heavy)
        return Dataset(records, seed=seed, start=start, days=days)
    finally:
        if was_enabled:
            gc.enable()


# Positional arguments only, so equivalent calls share one entry.
_cached_build = functools.lru_cache(maxsize=16)(_build)


def _generate(n: int, seed: int, start: date, days: int, heavy: int) -> list[_Record]:
    rng = random.Random(seed)
    r = rng.random
    clock = _Clock(start, days)
    span = days * _DAY_MS
    used_ids: set[str] = set()
    triples = _time_tables()[2]

    def token() -> str:
        return (
            triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + triples[int(r() * 46_656)]
            + _ALNUM[int(r() * 36)]
        )

    def new_id() -> str:
        while True:
            sid = token()
            if sid not in used_ids:
                used_ids.add(sid)
                return sid

    def new_person(email_seq: int) -> _Person:
        nat = _NATIONALITIES[int(r() * len(_NATIONALITIES))]
        _, males, females, lasts = _COUNTRIES[nat]
        gender = "male" if r() < 0.5 else "female"
        firsts = males if gender == "male" else females
        first = firsts[int(r() * len(firsts))]
        last = lasts[int(r() * len(lasts))]
        dob = date(1950, 1, 1) + timedelta(days=int(r() * 20_000))
        f, la = first.lower(), last.lower().replace(" ", "")
        domain = _DOMAINS[int(r() * len(_DOMAINS))]
        style = r()
        if style < 0.45:
            local = f"{f}.{la}{email_seq % 1000}"
        elif style < 0.75:
            local = f"{f[0]}{la}{dob.year % 100:02d}{email_seq % 97}"
        elif style < 0.9:
            local = f"{f}.{la}+kyc{email_seq % 1000}"
        else:
            local = f"{f}{la}+{('test', 'argos', 'id')[email_seq % 3]}{email_seq % 1000}"
        userid = f"user_{email_seq + 10_000}" if r() < 0.85 else None
        return _Person(
            first,
            last,
            gender,
            nat,
            dob,
            f"{local}@{domain}",
            userid,
        )

    people: list[tuple[_Person, int]] = []
    total = 0
    seq = 0
    while total < n:
        seq += 1
        repeats = 1 if r() >= 0.05 else 2 + int(r() * 3)
        repeats = min(repeats, n - total)
        people.append((new_person(seq), repeats))
        total += repeats

    # Creation times first, so the boundary cases the date filter and the cursor must get
    # right (first and last millisecond of a day, ties on created_at) are built in.
    created = [int(r() * span) for _ in range(total)]
    if total >= 4:
        for i in range(max(2, total // 500)):
            day = int(r() * days) * _DAY_MS
            created[int(r() * total)] = day if i % 2 == 0 else day + _DAY_MS - 1
        for _ in range(max(2, total // 1000)):
            created[int(r() * total)] = created[int(r() * total)]

    records: list[_Record] = []
    for person, repeats in people:
        for _ in range(repeats):
            res = r()
            if repeats > 1:
                # People who come back are usually approved again: that is what makes
                # applicant ids shared.
                result = "approved" if res < 0.85 else "rejected"
            else:
                result = _RESULTS[int(res * 10)]
            applicant_id = None
            if result == "approved":
                if person.applicant_id is None:
                    person.applicant_id = token()
                applicant_id = person.applicant_id
            ms = created[len(records)]
            rec = _Record(ms, clock(ms), new_id(), person, repeats > 1, result, r(), applicant_id)
            records.append(rec)

    # The heavy address: a QA account that ran many test submissions under different names.
    singles = [rec for rec in records if not rec.repeated]
    for rec in rng.sample(singles, min(len(singles), heavy)):
        rec.email = _HEAVY_EMAIL
        rec.userid = _HEAVY_USERIDS[int(r() * 3)]
    return records


def _make_item(rec: _Record, clock: _Clock) -> dict[str, Any]:
    rng = random.Random(rec.item_seed)
    r = rng.random
    p = rec.person
    sid = rec.sid
    created = rec.created_ms
    result = rec.result
    nat = p.nat
    country_name = _COUNTRIES[nat][0]
    modern = r() < 0.75
    full_name = f"{p.first} {p.last}"
    dob = p.dob.isoformat()

    data: dict[str, Any] = {"name": full_name}
    if modern:
        data["first_name"] = p.first
        data["last_name"] = p.last
        data["full_name"] = full_name
    data["gender"] = p.gender
    data["nationality"] = nat
    data["date_of_birth"] = dob
    if modern:
        age = (clock.start.year - p.dob.year) if r() < 0.95 else -1
        data["age_group"] = "N/A" if age < 0 else ("adult" if age >= 18 else "teen")
    ip = r()
    data["ip_address"] = "*.*.*.*" if ip < 0.1 else f"{_IP_PREFIXES[int(ip * 30) % 3]}*"
    id_types = _ID_TYPES.get(nat, _ID_TYPES_OTHER)
    id_type = id_types[int(r() * len(id_types))]
    data["idType"] = id_type
    data["idcard_issuingCountry"] = nat if r() < 0.93 else "USA"
    issue = date(2012, 1, 1) + timedelta(days=int(r() * 4700))
    data["idcard_issueDate"] = issue.isoformat()
    if id_type not in ("aadhaar", "pancard"):
        valid_days = 3652 if r() < 0.5 else 1826
        data["idcard_expireDate"] = (issue + timedelta(days=valid_days - 1)).isoformat()
    digits = int(r() * 10_000)
    if nat == "KOR":
        sex_digit = (1 if p.gender == "male" else 2) + (2 if p.dob.year >= 2000 else 0)
        ident = f"{p.dob.strftime('%y%m%d')}-{sex_digit}******"
    elif nat == "USA":
        ident = f"***-**-{digits:04d}"
    elif id_type == "aadhaar":
        ident = f"XXXX XXXX {digits:04d}"
    else:
        ident = f"{digits:04d}******"
    data["identityNumber"] = ident
    data["documentNumber"] = f"{'MPRDX'[digits % 5]}{digits:04d}****"
    addresses = _ADDRESSES.get(nat)
    if addresses is not None and r() < 0.35:
        city, state, street, zipcode, code = addresses[int(r() * len(addresses))]
        data["address_city"] = city
        data["address_country"] = nat
        data["address_state"] = state
        data["address_street"] = street
        data["address_zipcode"] = zipcode
        data["address_globalCode"] = code
        data["address_compoundCode"] = f"{code[4:]} {city}, {country_name}"
        data["address_formatted"] = f"{street}, {city}, {state} {zipcode}, {country_name}"
        data["address_input"] = street
        data["address_detail"] = f"Apt {digits % 40 + 1}"
    cf = r()
    if cf < 0.3:
        data["cf1"] = ("web", "ios", "android")[digits % 3]
        if cf < 0.15:
            data["cf2"] = f"campaign-{digits % 12 + 1}"
        if cf < 0.05:
            data["cf3"] = "test"

    item: dict[str, Any] = {"data": data, "email": rec.email, "submission_id": sid}
    if modern or rec.repeated:
        # Derived, like the real one, from name, birth date, gender and nationality.
        key = f"{full_name}|{dob}|{p.gender}|{nat}".encode()
        item["duplicated_information"] = hashlib.md5(key, usedforsecurity=False).hexdigest()
    item["created_at"] = clock(created)
    manual = result == "pending" or r() < 0.12
    t = created + 60_000 + int(r() * 900_000)
    if manual:
        item["pending_at"] = clock(t)
        t += 3_600_000 + int(r() * 3 * _DAY_MS)
    if result in ("approved", "rejected"):
        item["kyc_result_at"] = clock(t)
    if result == "incomplete":
        # Incomplete ones were last touched when the applicant gave up.
        t = created + int(r() * 1_200_000)
    updated = t + (int(r() * 20 * _DAY_MS) if r() < 0.1 else 0)
    item["updated_at"] = clock(updated)
    if rec.userid is not None:
        item["userid"] = rec.userid
    item["reviewer"] = "agent" if manual else "system"
    if rec.applicant_id is not None:
        item["applicant_id"] = rec.applicant_id

    kyc: dict[str, Any] = {"result": result}
    barcode = nat in _BARCODE_COUNTRIES and id_type == "drivers_license"
    if result == "rejected":
        if manual and r() < 0.5:
            kyc["comment"] = [_AGENT_COMMENTS[int(r() * len(_AGENT_COMMENTS))]]
            kyc["commentCode"] = ["other"]
        elif r() < 0.05:
            kyc["comment"] = [_BLACKLIST_COMMENT.format(country_name)]
            kyc["commentCode"] = ["blacklistCountry"]
        else:
            code, text = _REJECTS[int(r() * len(_REJECTS))]
            kyc["comment"] = [text]
            kyc["commentCode"] = [code]
            if code != "too_many_retry" and r() < 0.1:
                kyc["comment"].append("Multiple invalid KYC attempts ")
                kyc["commentCode"].append("too_many_retry")
    n_attempts = 0
    if result != "incomplete" or r() < 0.5:
        n_attempts = 3 if "too_many_retry" in kyc.get("commentCode", ()) else 1 + int(r() * r() * 3)
    attempts = []
    step = created + 20_000
    # One object shared by the attempts: the applicant enters these once per submission.
    params = {
        "fullName": full_name,
        "idType": id_type,
        "issueDate": data["idcard_issueDate"],
        "identityNumber": ident,
    }
    for a in range(n_attempts):
        last = a == n_attempts - 1
        ok = last and result in ("approved", "pending")
        attempt: dict[str, Any] = {"attemptCnt": a + 1}
        ordinal = _ORDINALS[a]
        attempt[f"step1Time{ordinal}"] = clock(step)
        step += 15_000 + int(r() * 90_000)
        attempt[f"step2Time{ordinal}"] = clock(step)
        step += 30_000 + int(r() * 240_000)
        attempt["ocrResult"] = "success" if ok or r() < 0.8 else "fail"
        if barcode:
            attempt["idBarcodeResult"] = "success" if ok or r() < 0.5 else "fail"
        if ok or r() < 0.7:
            attempt["livenessScore"] = 80 + int(r() * 20) if ok else 40 + int(r() * 55)
        if ok or r() < 0.7:
            attempt["faceSimilarityScore"] = 85 + int(r() * 15) if ok else 20 + int(r() * 70)
        attempt["verificationParams"] = params
        attempt["verificationResult"] = "success" if ok else "fail"
        if not ok:
            code, msg = _BARCODE_RETRY if barcode and r() < 0.5 else _RETRIES[int(r() * 5)]
            attempt["retryMsg"] = [msg]
            attempt["retryCode"] = [code]
        attempts.append(attempt)
    if attempts:
        kyc["attempts"] = attempts
    item["kyc"] = kyc

    option_set = _OPTION_SETS[int(r() * len(_OPTION_SETS))]
    if result == "approved":
        if option_set["option_aml"] and r() < 0.25:
            matches = [
                {
                    "risk_level": ("HIGH", "MEDIUM", "LOW")[int(r() * 3)],
                    "resource_id": "".join(rng.choices(_ALNUM, k=20)),
                    "score": 60 + int(r() * 40),
                }
                for _ in range(1 + int(r() * r() * 4))
            ]
            matches.sort(key=lambda m: -int(m["score"]))
            top = min(("HIGH", "MEDIUM", "LOW").index(m["risk_level"]) for m in matches)
            item["aml"] = {
                "risk_level_summary": ("High", "Medium", "Low")[top],
                "currentstatus": "Red Flag",
                "matches": matches,
            }
        else:
            item["aml"] = {"risk_level_summary": "Not Screened", "currentstatus": "Not Screened"}

    if modern:
        item["image"] = {
            "idImage": f"https://images.example.com/{sid}/id.jpg",
            "idBackImage": f"https://images.example.com/{sid}/id_back.jpg",
            "selfieImage": f"https://images.example.com/{sid}/selfie.jpg",
            "addressImage": f"https://images.example.com/{sid}/address.jpg"
            if "address_city" in data
            else "",
        }
        if r() < 0.1:
            item["memo"] = {
                "text": _MEMOS[int(r() * len(_MEMOS))],
                "updated_at": clock(updated + int(r() * _DAY_MS)),
            }
        if n_attempts:
            item["argos_score"] = round(40 + r() * 60, 1)
            item["recognition_score"] = 50 + int(r() * 50)
        item["project_options"] = option_set
        if n_attempts and r() < 0.6:
            ocr = {
                "birthDate": dob,
                "expireDate": data.get("idcard_expireDate", ""),
                "firstName": p.first.upper(),
                "fullName": full_name.upper(),
                "identityNumber": ident,
                "lastName": p.last.upper(),
                "nationality": nat,
            }
            item["ocr"] = ocr
    if nat == "KOR" and r() < 0.15:
        item["bank_verification"] = {
            "result": "success" if r() < 0.85 else "fail",
            "type": "occupancy",
            "bank_code": _BANKS[int(r() * len(_BANKS))],
            "account_number": f"{digits:04d}-**-****{digits % 97:02d}",
            "retry_count": int(r() * r() * 4),
        }
    return item
