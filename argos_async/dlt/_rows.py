"""The mirror's rows: items as the API sent them into Arrow tables of the typed columns plus the
item's JSON, and the decision, per item, whether the table must be written at all.

No dlt here (the hints are plain dicts), and no per-item JSON decoding: a page's typed
columns come out of one msgspec call over its body, into a small Struct of those fields;
the item's JSON goes into its column as the bytes it came as. Arrow then parses the
timestamps in one cast per column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

import msgspec
import pyarrow as pa

from .._protocol.decoding import parse_timestamp

TABLE: Final = "submissions"
"""The name of the mirror's table."""

OPEN_RESULTS: Final = ("pending", "incomplete")
"""``kyc.result`` values that are not final: such submissions are looked up again by id."""

_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

_FIELDS: list[pa.Field[Any]] = [
    pa.field("submission_id", pa.string(), nullable=False),
    pa.field("created_at", _TIMESTAMP),
    pa.field("updated_at", _TIMESTAMP),
    pa.field("kyc_result", pa.string()),
    pa.field("aml_status", pa.string()),
    pa.field("email", pa.string()),
    pa.field("userid", pa.string()),
    pa.field("applicant_id", pa.string()),
    pa.field("deleted", pa.bool_(), nullable=False),
    pa.field("deleted_at", _TIMESTAMP),
    pa.field("raw", pa.string()),
]
ARROW_SCHEMA: Final = pa.schema(_FIELDS)
"""The Arrow schema of every table the mirror hands to dlt, in column order."""

COLUMN_HINTS: Final[dict[str, dict[str, Any]]] = {
    "submission_id": {"data_type": "text", "nullable": False, "primary_key": True},
    "created_at": {"data_type": "timestamp", "timezone": True},
    "updated_at": {"data_type": "timestamp", "timezone": True},
    "kyc_result": {"data_type": "text"},
    "aml_status": {"data_type": "text"},
    "email": {"data_type": "text"},
    "userid": {"data_type": "text"},
    "applicant_id": {"data_type": "text"},
    "deleted": {"data_type": "bool", "nullable": False},
    "deleted_at": {"data_type": "timestamp", "timezone": True},
    "raw": {"data_type": "text"},
}
"""dlt column hints matching :data:`ARROW_SCHEMA` (``raw`` is text: see the package docs)."""

COLUMNS: Final = tuple(COLUMN_HINTS)
"""The column names, in order."""


class _Kyc(msgspec.Struct, gc=False):
    result: str | None = None


class _Aml(msgspec.Struct, gc=False):
    currentstatus: str | None = None


class _Row(msgspec.Struct, gc=False):
    """The fields of an item that become typed columns; msgspec skips all the others."""

    submission_id: str
    created_at: str | None = None
    updated_at: str | None = None
    email: str | None = None
    userid: str | None = None
    applicant_id: str | None = None
    kyc: _Kyc | None = None
    aml: _Aml | None = None


class _Envelope(msgspec.Struct, gc=False):
    items: list[_Row] = msgspec.field(name="Items")


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)
_row_decoder: Final = msgspec.json.Decoder(_Row)


class Known(NamedTuple):
    """What the table holds for a submission, to compare an item with."""

    digest: str
    """MD5 (hex) of ``raw``, computed by the database."""
    deleted: bool
    updated_at: datetime | None
    kyc_result: str | None
    aml_status: str | None


@dataclass
class Counts:
    """What a run wrote, and why."""

    listed: int = 0
    """Items listed by day windows."""
    looked_up: int = 0
    """Submissions looked up by id (open ones, and listed ones that a listing no longer had)."""
    new: int = 0
    """Rows written that the table did not hold."""
    changed: int = 0
    """Rows written again because the submission had changed (or came back)."""
    deleted: int = 0
    """Rows newly marked deleted: the API no longer has the submission."""

    def as_dict(self) -> dict[str, int]:
        """The counts by name, as kept in the pipeline's state."""
        return {
            "listed": self.listed,
            "looked_up": self.looked_up,
            "new": self.new,
            "changed": self.changed,
            "deleted": self.deleted,
        }


def decode_rows(
    items: Sequence[msgspec.Raw], body: bytes | None = None, first: int = 0
) -> list[Any]:
    """The typed fields of ``items``: from ``body`` (a list page's, whose items ``first`` to
    ``first + len(items)`` these are) in one call, else item by item. An item whose fields
    have unexpected types is read leniently (a value of another type becomes ``None``)."""
    if body is not None:
        try:
            rows = _envelope_decoder.decode(body).items
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        else:
            if first or len(rows) != len(items):
                rows = rows[first : first + len(items)]
            return rows
    return [_decode_row(raw) for raw in items]


def _decode_row(raw: msgspec.Raw | bytes) -> _Row:
    try:
        return _row_decoder.decode(raw)
    except msgspec.ValidationError:
        return _lenient_row(msgspec.json.decode(raw))


def _lenient_row(item: Any) -> _Row:
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def section(name: str) -> dict[str, Any]:
        value = item.get(name)
        return value if isinstance(value, dict) else {}

    submission_id = item.get("submission_id")
    if not isinstance(submission_id, str):
        # The client's own checks make this unreachable for a listed or looked-up item.
        raise ValueError("an item without a submission_id")
    return _Row(
        submission_id=submission_id,
        created_at=text(item.get("created_at")),
        updated_at=text(item.get("updated_at")),
        email=text(item.get("email")),
        userid=text(item.get("userid")),
        applicant_id=text(item.get("applicant_id")),
        kyc=_Kyc(text(section("kyc").get("result"))),
        aml=_Aml(text(section("aml").get("currentstatus"))),
    )


def digest(raw: msgspec.Raw | bytes) -> str:
    """MD5 (hex) of an item's bytes: what the table's ``md5(raw)`` gives for it."""
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def listed_changes(
    rows: Sequence[Any],
    items: Sequence[msgspec.Raw],
    known: Mapping[str, Known],
    counts: Counts,
    seen: set[str] | None = None,
) -> pa.Table | None:
    """The rows of a listed page that the table must get: new ones, and those whose JSON
    differs from the table's (or that it marks deleted). Counts them; adds the ids the
    table knows to ``seen``. None when there is nothing to write."""
    counts.listed += len(rows)
    if not known:
        counts.new += len(rows)
        return to_table(rows, items)
    keep: list[int] = []
    for i, row in enumerate(rows):
        held = known.get(row.submission_id)
        if held is None:
            counts.new += 1
            keep.append(i)
            continue
        if seen is not None:
            seen.add(row.submission_id)
        if held.deleted or held.digest != digest(items[i]):
            counts.changed += 1
            keep.append(i)
    return _kept(rows, items, keep)


def looked_up_changes(
    rows: Sequence[Any], items: Sequence[msgspec.Raw], known: Mapping[str, Known], counts: Counts
) -> pa.Table | None:
    """The rows of submissions looked up by id that the table must get: those whose
    ``updated_at``, KYC result or AML status moved (or that came back). A lookup answers with
    more fields than a listing, so the JSON alone would always differ. None for none."""
    keep: list[int] = []
    for i, row in enumerate(rows):
        held = known.get(row.submission_id)
        if held is None:
            counts.new += 1
            keep.append(i)
        elif held.deleted or _state(row) != (held.updated_at, held.kyc_result, held.aml_status):
            counts.changed += 1
            keep.append(i)
    return _kept(rows, items, keep)


def _kept(rows: Sequence[Any], items: Sequence[msgspec.Raw], keep: list[int]) -> pa.Table | None:
    """The table of the rows (and their items) at the positions ``keep``; None for none."""
    if not keep:
        return None
    if len(keep) == len(rows):
        return to_table(rows, items)
    return to_table([rows[i] for i in keep], [items[i] for i in keep])


def _state(row: _Row) -> tuple[datetime | None, str | None, str | None]:
    updated = None if row.updated_at is None else parse_timestamp(row.updated_at)
    return (
        updated,
        None if row.kyc is None else row.kyc.result,
        None if row.aml is None else row.aml.currentstatus,
    )


def to_table(rows: Sequence[Any], items: Sequence[msgspec.Raw | bytes]) -> pa.Table:
    """An Arrow table of :data:`ARROW_SCHEMA` from typed rows and their items' bytes."""
    n = len(rows)
    kyc = [None if r.kyc is None else r.kyc.result for r in rows]
    aml = [None if r.aml is None else r.aml.currentstatus for r in rows]
    columns = [
        pa.array([r.submission_id for r in rows], pa.string()),
        timestamps([r.created_at for r in rows]),
        timestamps([r.updated_at for r in rows]),
        pa.array(kyc, pa.string()),
        pa.array(aml, pa.string()),
        pa.array([r.email for r in rows], pa.string()),
        pa.array([r.userid for r in rows], pa.string()),
        pa.array([r.applicant_id for r in rows], pa.string()),
        pa.array([False] * n, pa.bool_()),
        pa.nulls(n, _TIMESTAMP),
        pa.array([bytes(raw) for raw in items], pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def deleted_table(held_rows: Iterable[Sequence[Any]], at: datetime) -> pa.Table:
    """Rows as the table holds them (``COLUMNS`` in order), marked deleted at ``at``."""
    held = [list(row) for row in held_rows]
    position = {name: i for i, name in enumerate(COLUMNS)}
    for row in held:
        row[position["deleted"]] = True
        row[position["deleted_at"]] = at
    return pa.Table.from_pylist(
        [dict(zip(COLUMNS, row, strict=True)) for row in held], schema=ARROW_SCHEMA
    )


def timestamps(values: list[str | None]) -> pa.Array[Any]:
    """API timestamps as UTC timestamps: ISO-8601 in one Arrow cast; any other shape (or a
    page with one) the lenient way the client reads them, ``None`` when it is no timestamp."""
    strings = pa.array(values, pa.string())
    try:
        return strings.cast(_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = [None if v is None else parse_timestamp(v) for v in values]
        return pa.array(parsed, _TIMESTAMP)
