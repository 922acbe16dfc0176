"""The full item of a submission, built from its record in the API's wire shape.

An item draws from two streams of its own, so it can be built on demand, in any order, and
always comes out the same: the main one (its share of its day's draws, `Day.item_draws_of`)
decides everything a list page shows; the details one (keyed by its submission id,
`_records.draws`) what only a single lookup shows: the ID document, the address, the
attempts. So the list form, which most requests want, is built without drawing, or
building, the rest; `list_form` of the full item gives the same.

The steps below draw from their stream in the order they are called, and each fills its keys
in the order the API sends them; both orders are part of the data (tests/test_dataset.py pins
the bytes).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any, NamedTuple

from ._clock import DAY_MS, Clock
from ._records import Day, Draw, Record, draws, token
from ._tables import (
    ADDRESSES,
    AGENT_COMMENTS,
    BANKS,
    BARCODE_COUNTRIES,
    BARCODE_RETRY,
    BLACKLIST_COMMENT,
    COUNTRIES,
    ID_TYPES,
    ID_TYPES_OTHER,
    IP_PREFIXES,
    MEMOS,
    OPTION_SETS,
    ORDINALS,
    REJECTS,
    RETRIES,
)

__all__ = ["ItemBuilder"]

_TOO_MANY_RETRY = ("too_many_retry", "Multiple invalid KYC attempts ")


class ItemBuilder:
    """Builds the items of one data set (its streams are keyed by the data set's key)."""

    def __init__(self, key: str, clock: Clock) -> None:
        self._overflow = f"{key}/item/".encode()
        self._details = f"{key}/details/".encode()
        self._clock = clock

    def full(self, day: Day, j: int) -> dict[str, Any]:
        """Record `j` of the day's item as a single lookup returns it."""
        rec = day.record(j)
        sid = rec.sid.encode()
        main = day.item_draws_of(j, self._overflow + sid)
        return _build(rec, self._clock, main, draws(self._details + sid))

    def listed(self, day: Day, j: int) -> dict[str, Any]:
        """Record `j` of the day's item as a list page carries it (`_listing.list_form` of
        the full one)."""
        rec = day.record(j)
        main = day.item_draws_of(j, self._overflow + rec.sid.encode())
        return _build(rec, self._clock, main, None)


class _Document(NamedTuple):
    """The ID document the applicant showed."""

    id_type: str
    issuing_country: str
    issue_date: str
    expire_date: str | None
    identity_number: str

    def fields(self, digits: int) -> dict[str, str]:
        """Its keys of `data`."""
        out = {
            "idType": self.id_type,
            "idcard_issuingCountry": self.issuing_country,
            "idcard_issueDate": self.issue_date,
        }
        if self.expire_date is not None:
            out["idcard_expireDate"] = self.expire_date
        out["identityNumber"] = self.identity_number
        out["documentNumber"] = f"{'MPRDX'[digits % 5]}{digits:04d}****"
        return out


class _Timeline(NamedTuple):
    """When the submission moved on, after its creation."""

    stamps: dict[str, str]
    """`created_at`, `pending_at` (manual reviews), `kyc_result_at` (decisions), `updated_at`."""
    manual: bool
    """Whether an agent reviewed it."""
    updated_ms: int


def _build(rec: Record, clock: Clock, r: Draw, details: Draw | None) -> dict[str, Any]:
    """The item: in full with a `details` stream, else in its list form."""
    person = rec  # a record carries its person's details
    country_name = COUNTRIES[person.nat][0]
    # Three in four come from the current form: split names, images, scores, OCR.
    modern = r() < 0.75
    # Masked digits of the document, reused by the address, the custom fields and the bank
    # account, as in the provider's samples.
    digits = int(r() * 10_000)
    # A proof of address: a third of those from countries with sample addresses.
    has_address = person.nat in ADDRESSES and r() < 0.35

    data = _applicant_fields(person, modern)
    doc = None
    if details is not None:
        doc = _id_document(person, digits, details)
        data.update(_private_fields(person, modern, clock.start, details))
        data.update(doc.fields(digits))
        if has_address:
            data.update(_address_fields(person.nat, country_name, digits, details))
        data.update(_custom_fields(digits, details))

    item: dict[str, Any] = {"data": data, "email": rec.email, "submission_id": rec.sid}
    if modern or rec.repeated:
        item["duplicated_information"] = _duplicate_key(person)
    timeline = _timeline(rec, clock, r)
    item.update(timeline.stamps)
    if rec.userid is not None:
        item["userid"] = rec.userid
    item["reviewer"] = "agent" if timeline.manual else "system"
    if rec.applicant_id is not None:
        item["applicant_id"] = rec.applicant_id

    kyc = _kyc_outcome(rec.result, timeline.manual, country_name, r)
    n_attempts = _attempt_count(rec.result, kyc, r)
    if details is not None and doc is not None and n_attempts:
        barcode = person.nat in BARCODE_COUNTRIES and doc.id_type == "drivers_license"
        kyc["attempts"] = _attempts(n_attempts, rec, doc, barcode, clock, details)
    item["kyc"] = kyc

    option_set = OPTION_SETS[int(r() * len(OPTION_SETS))]
    if rec.result == "approved":
        item["aml"] = _aml(option_set["option_aml"], r)

    if modern:
        item["image"] = _images(rec.sid, has_address)
        if r() < 0.1:
            item["memo"] = _memo(timeline.updated_ms, clock, r)
        if n_attempts:
            item["argos_score"] = (400 + int(r() * 600)) / 10
            item["recognition_score"] = 50 + int(r() * 50)
        if details is not None:
            item["project_options"] = option_set
        with_ocr = n_attempts > 0 and r() < 0.6
        if with_ocr and doc is not None:
            item["ocr"] = _ocr(person, doc)
    if person.nat == "KOR" and r() < 0.15:
        item["bank_verification"] = _bank_verification(digits, r)
    return item


# -- data: the applicant ------------------------------------------------------------------


def _applicant_fields(person: Record, modern: bool) -> dict[str, Any]:
    """Name, gender, nationality and birth date: what a list page shows of `data`."""
    full_name = f"{person.first} {person.last}"
    data: dict[str, Any] = {"name": full_name}
    if modern:
        data["first_name"] = person.first
        data["last_name"] = person.last
        data["full_name"] = full_name
    data["gender"] = person.gender
    data["nationality"] = person.nat
    data["date_of_birth"] = person.dob.isoformat()
    return data


def _private_fields(person: Record, modern: bool, start: date, r: Draw) -> dict[str, str]:
    """The age group and the masked IP address."""
    out = {}
    if modern:
        age = (start.year - person.dob.year) if r() < 0.95 else -1
        out["age_group"] = "N/A" if age < 0 else ("adult" if age >= 18 else "teen")
    ip = r()
    out["ip_address"] = "*.*.*.*" if ip < 0.1 else f"{IP_PREFIXES[int(ip * 30) % 3]}*"
    return out


def _id_document(person: Record, digits: int, r: Draw) -> _Document:
    nat = person.nat
    id_types = ID_TYPES.get(nat, ID_TYPES_OTHER)
    id_type = id_types[int(r() * len(id_types))]
    issuing_country = nat if r() < 0.93 else "USA"
    issue = date(2012, 1, 1) + timedelta(days=int(r() * 4700))
    expire = None
    # Aadhaar and PAN cards do not expire.
    if id_type not in ("aadhaar", "pancard"):
        valid_days = 3652 if r() < 0.5 else 1826
        expire = (issue + timedelta(days=valid_days - 1)).isoformat()
    if nat == "KOR":
        sex_digit = (1 if person.gender == "male" else 2) + (2 if person.dob.year >= 2000 else 0)
        ident = f"{person.dob.strftime('%y%m%d')}-{sex_digit}******"
    elif nat == "USA":
        ident = f"***-**-{digits:04d}"
    elif id_type == "aadhaar":
        ident = f"XXXX XXXX {digits:04d}"
    else:
        ident = f"{digits:04d}******"
    return _Document(id_type, issuing_country, issue.isoformat(), expire, ident)


def _address_fields(nat: str, country_name: str, digits: int, r: Draw) -> dict[str, str]:
    """A proof of address, from the country's sample addresses."""
    city, state, street, zipcode, code = ADDRESSES[nat][int(r() * len(ADDRESSES[nat]))]
    return {
        "address_city": city,
        "address_country": nat,
        "address_state": state,
        "address_street": street,
        "address_zipcode": zipcode,
        "address_globalCode": code,
        "address_compoundCode": f"{code[4:]} {city}, {country_name}",
        "address_formatted": f"{street}, {city}, {state} {zipcode}, {country_name}",
        "address_input": street,
        "address_detail": f"Apt {digits % 40 + 1}",
    }


def _custom_fields(digits: int, r: Draw) -> dict[str, str]:
    """The integrator's own `cf1`..`cf3`, nested: whoever sets cf3 also sets cf1 and cf2."""
    cf = r()
    out: dict[str, str] = {}
    if cf < 0.3:
        out["cf1"] = ("web", "ios", "android")[digits % 3]
        if cf < 0.15:
            out["cf2"] = f"campaign-{digits % 12 + 1}"
        if cf < 0.05:
            out["cf3"] = "test"
    return out


def _duplicate_key(person: Record) -> str:
    # Derived, like the real one, from name, birth date, gender and nationality.
    key = f"{person.first} {person.last}|{person.dob.isoformat()}|{person.gender}|{person.nat}"
    return hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()


# -- the review ---------------------------------------------------------------------------


def _timeline(rec: Record, clock: Clock, r: Draw) -> _Timeline:
    created = rec.created_ms
    stamps = {"created_at": rec.created_at}
    manual = rec.result == "pending" or r() < 0.12
    t = created + 60_000 + int(r() * 900_000)
    if manual:
        stamps["pending_at"] = clock(t)
        t += 3_600_000 + int(r() * 3 * DAY_MS)
    if rec.result in ("approved", "rejected"):
        stamps["kyc_result_at"] = clock(t)
    if rec.result == "incomplete":
        # Incomplete ones were last touched when the applicant gave up.
        t = created + int(r() * 1_200_000)
    # One in ten was touched again later (a memo, a re-screening).
    updated = t + (int(r() * 20 * DAY_MS) if r() < 0.1 else 0)
    stamps["updated_at"] = clock(updated)
    return _Timeline(stamps, manual, updated)


def _kyc_outcome(result: str, manual: bool, country_name: str, r: Draw) -> dict[str, Any]:
    """`kyc` without its attempts: the result, and a rejection's reasons."""
    kyc: dict[str, Any] = {"result": result}
    if result != "rejected":
        return kyc
    if manual and r() < 0.5:
        kyc["comment"] = [AGENT_COMMENTS[int(r() * len(AGENT_COMMENTS))]]
        kyc["commentCode"] = ["other"]
    elif r() < 0.05:
        kyc["comment"] = [BLACKLIST_COMMENT.format(country_name)]
        kyc["commentCode"] = ["blacklistCountry"]
    else:
        code, text = REJECTS[int(r() * len(REJECTS))]
        kyc["comment"] = [text]
        kyc["commentCode"] = [code]
        if code != _TOO_MANY_RETRY[0] and r() < 0.1:
            kyc["comment"].append(_TOO_MANY_RETRY[1])
            kyc["commentCode"].append(_TOO_MANY_RETRY[0])
    return kyc


def _attempt_count(result: str, kyc: dict[str, Any], r: Draw) -> int:
    # Half of those who gave up did so before the first attempt.
    if result == "incomplete" and r() >= 0.5:
        return 0
    if _TOO_MANY_RETRY[0] in kyc.get("commentCode", ()):
        return 3
    return 1 + int(r() * r() * 3)


def _attempts(
    n_attempts: int,
    rec: Record,
    doc: _Document,
    barcode: bool,
    clock: Clock,
    r: Draw,
) -> list[dict[str, Any]]:
    """The verification attempts; only the last of an approved or pending one succeeded."""
    attempts = []
    step = rec.created_ms + 20_000
    # One object shared by the attempts: the applicant enters these once per submission.
    params = {
        "fullName": f"{rec.first} {rec.last}",
        "idType": doc.id_type,
        "issueDate": doc.issue_date,
        "identityNumber": doc.identity_number,
    }
    for a in range(n_attempts):
        ok = a == n_attempts - 1 and rec.result in ("approved", "pending")
        attempt: dict[str, Any] = {"attemptCnt": a + 1}
        ordinal = ORDINALS[a]
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
            code, msg = BARCODE_RETRY if barcode and r() < 0.5 else RETRIES[int(r() * 5)]
            attempt["retryMsg"] = [msg]
            attempt["retryCode"] = [code]
        attempts.append(attempt)
    return attempts


def _aml(screened: bool, r: Draw) -> dict[str, Any]:
    """The AML screening of an approved submission: a quarter of the screened ones match."""
    if not (screened and r() < 0.25):
        return {"risk_level_summary": "Not Screened", "currentstatus": "Not Screened"}
    matches = [
        {
            "risk_level": ("HIGH", "MEDIUM", "LOW")[int(r() * 3)],
            "resource_id": token(r),
            "score": 60 + int(r() * 40),
        }
        for _ in range(1 + int(r() * r() * 4))
    ]
    matches.sort(key=lambda m: -int(m["score"]))
    top = min(("HIGH", "MEDIUM", "LOW").index(m["risk_level"]) for m in matches)
    return {
        "risk_level_summary": ("High", "Medium", "Low")[top],
        "currentstatus": "Red Flag",
        "matches": matches,
    }


# -- what the current form adds -----------------------------------------------------------


def _images(sid: str, has_address: bool) -> dict[str, str]:
    base = f"https://images.example.com/{sid}"
    return {
        "idImage": f"{base}/id.jpg",
        "idBackImage": f"{base}/id_back.jpg",
        "selfieImage": f"{base}/selfie.jpg",
        "addressImage": f"{base}/address.jpg" if has_address else "",
    }


def _memo(updated_ms: int, clock: Clock, r: Draw) -> dict[str, str]:
    return {
        "text": MEMOS[int(r() * len(MEMOS))],
        "updated_at": clock(updated_ms + int(r() * DAY_MS)),
    }


def _ocr(person: Record, doc: _Document) -> dict[str, str]:
    """What OCR read off the document: the entered data, upper-cased."""
    return {
        "birthDate": person.dob.isoformat(),
        "expireDate": doc.expire_date or "",
        "firstName": person.first.upper(),
        "fullName": f"{person.first} {person.last}".upper(),
        "identityNumber": doc.identity_number,
        "lastName": person.last.upper(),
        "nationality": person.nat,
    }


def _bank_verification(digits: int, r: Draw) -> dict[str, Any]:
    """The 'Account Occupancy - South Korea' option's result."""
    return {
        "result": "success" if r() < 0.85 else "fail",
        "type": "occupancy",
        "bank_code": BANKS[int(r() * len(BANKS))],
        "account_number": f"{digits:04d}-**-****{digits % 97:02d}",
        "retry_count": int(r() * r() * 4),
    }
