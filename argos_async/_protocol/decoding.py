"""Where bytes become Structs: response bodies decoded by msgspec, one call per page.

The fast path builds every Struct of a page in one ``msgspec.json.Decoder`` call. A page that
fails it only because a timestamp has another shape takes a slow path that repairs timestamps
along the model's type tree. ``scan_page`` reads only a page's envelope (next key, each item's
bytes as sent), which is what a request needs to know that the page arrived whole, and all
that the raw page path (``RawPage``) ever decodes.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any, Final

import msgspec

from ..errors import APIError, NotFoundError, ResponseDecodeError
from ..models import ApplicantSubmission, Page, PageKey, RawPage, Submission
from .query import Position, encode_cursor


class _Envelope(msgspec.Struct, gc=False):
    items: list[Submission] = msgspec.field(name="Items")
    next_key: PageKey | None = msgspec.field(default=None, name="nextpageKey")


_envelope_decoder = msgspec.json.Decoder(_Envelope)


class _Scan(msgspec.Struct, gc=False):
    items: list[msgspec.Raw] = msgspec.field(name="Items")
    next_key: PageKey | None = msgspec.field(default=None, name="nextpageKey")


_scan_decoder = msgspec.json.Decoder(_Scan)
_applicants_decoder = msgspec.json.Decoder(list[ApplicantSubmission])


AFTER_PAGE: Final = Position(None, -1)
"""``decode_page``'s default: the cursor resumes after the page (at its next key, if any)."""


def decode_page(
    body: bytes,
    fingerprint: str,
    *,
    first: int = 0,
    count: int | None = None,
    resume: Position | None = AFTER_PAGE,
) -> Page:
    """A list response as a ``Page`` of its items ``first`` to ``first + count`` (default:
    all); its cursor resumes at ``resume`` (``None``: the listing is over)."""
    envelope = _decode_envelope(body)
    if resume is AFTER_PAGE:
        resume = None if envelope.next_key is None else Position(envelope.next_key)
    items = envelope.items
    if first or (count is not None and count < len(items)):
        items = items[first : None if count is None else first + count]
    cursor = None if resume is None else encode_cursor(resume, fingerprint)
    return Page(items=items, next_key=envelope.next_key, cursor=cursor, body=body, first=first)


def raw_page(
    body: bytes,
    next_key: PageKey | None,
    items: list[msgspec.Raw],
    fingerprint: str,
    *,
    first: int,
    count: int,
    resume: Position | None,
) -> RawPage:
    """A scanned list response (see ``scan_page``) as a ``RawPage`` of its items ``first``
    to ``first + count``, whose cursor resumes at ``resume`` (``None``: the listing is over).
    Nothing is decoded: the scan already checked all a listing relies on."""
    if first or count < len(items):
        items = items[first : first + count]
    cursor = None if resume is None else encode_cursor(resume, fingerprint)
    return RawPage(items=items, next_key=next_key, cursor=cursor, body=body, first=first)


def scan_page(body: bytes) -> tuple[PageKey | None, list[msgspec.Raw]]:
    """A list response's next key and its items as sent (views into ``body``), without
    building them (about a quarter of the cost of decoding them). A body cut off in transit,
    or one whose envelope is not the documented one, fails here, inside the request's
    retries."""
    try:
        scan = _scan_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ResponseDecodeError(f"response does not match the documented shape: {exc}") from None
    except RecursionError:
        raise _too_deep(body) from None
    except msgspec.DecodeError:
        raise _not_json(body, "response body") from None
    return scan.next_key, scan.items


def decode_single(body: bytes, submission_id: str) -> Submission:
    """The submission with this id in a single-submission response; an empty ``Items`` list
    means no such submission, an answer that holds only others is not the documented one."""
    items = _decode_envelope(body).items
    for item in items:
        if item.submission_id == submission_id:
            return item
    raise _not_among(submission_id, len(items))


def _not_among(submission_id: str, count: int) -> APIError:
    if not count:
        return NotFoundError(f"no submission with id {submission_id!r}", status=200)
    return ResponseDecodeError(
        f"the answer for submission {submission_id!r} holds {count} other submission(s) "
        "and not that one"
    )


class _Identified(msgspec.Struct, gc=False):
    submission_id: str | None = None


_identified_decoder = msgspec.json.Decoder(_Identified)


def raw_single(body: bytes, submission_id: str) -> msgspec.Raw:
    """:func:`decode_single`'s answer as the item's bytes as sent: only the envelope and each
    item's ``submission_id`` are read."""
    _, items = scan_page(body)
    for raw in items:
        try:
            found = _identified_decoder.decode(raw).submission_id
        except msgspec.ValidationError as exc:
            raise ResponseDecodeError(
                f"response does not match the documented shape: {exc}"
            ) from None
        if found == submission_id:
            return raw
    raise _not_among(submission_id, len(items))


def decode_applicants(body: bytes) -> list[ApplicantSubmission]:
    """The applicant endpoint's bare JSON array."""
    try:
        return _applicants_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ResponseDecodeError(
            f"applicant response is not the documented array: {exc}"
        ) from None
    except RecursionError:
        raise _too_deep(body) from None
    except msgspec.DecodeError:
        raise _not_json(body, "applicant response") from None


def _decode_envelope(body: bytes) -> _Envelope:
    try:
        # The fast path: one msgspec call builds every Struct of the page.
        return _envelope_decoder.decode(body)
    except msgspec.ValidationError:
        # Valid JSON of a shape we did not expect; most often a timestamp in another format.
        return _decode_envelope_leniently(body)
    except RecursionError:
        raise _too_deep(body) from None
    except msgspec.DecodeError:
        raise _not_json(body, "response body") from None


def _not_json(body: bytes, what: str) -> ResponseDecodeError:
    # Most often a body cut off in transit: worth asking for again (incomplete=True retries).
    return ResponseDecodeError(
        f"{what} is not valid JSON ({len(body)} bytes; cut off?)", incomplete=True
    )


def _too_deep(body: bytes) -> ResponseDecodeError:
    # msgspec refuses JSON nested beyond its depth limit with a RecursionError: no documented
    # answer nests that deep, and a retry would get the same body.
    return ResponseDecodeError(
        f"response body nests too deeply to be an answer ({len(body)} bytes)"
    )


def _decode_envelope_leniently(body: bytes) -> _Envelope:
    """The slow path for a page that failed strict decoding: timestamps of other shapes are
    read leniently (or become ``None``), numbers sent as strings are accepted."""
    document = msgspec.json.decode(body)
    document = repair_timestamps(document, _envelope_info())
    try:
        return msgspec.convert(document, _Envelope, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec names the path and the expected type, never the value: safe to show.
        raise ResponseDecodeError(f"response does not match the documented shape: {exc}") from None


@functools.cache
def _envelope_info() -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(_Envelope)


def repair_timestamps(value: Any, info: msgspec.inspect.Type) -> Any:
    """Walks decoded JSON along the model's type tree, replacing each timestamp value by an
    aware ``datetime`` or ``None``. The lenient path of listings and of webhook bodies."""
    if isinstance(info, msgspec.inspect.DateTimeType):
        return parse_timestamp(value) if isinstance(value, str) else None
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        for field in info.fields:
            if field.encode_name in value:
                value[field.encode_name] = repair_timestamps(value[field.encode_name], field.type)
    elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)) and isinstance(
        value, list
    ):
        return [repair_timestamps(item, info.item_type) for item in value]
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if not isinstance(member, msgspec.inspect.NoneType):
                value = repair_timestamps(value, member)
    return value


_DASHED_TIMESTAMP: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d{3})")


def parse_timestamp(text: str) -> datetime | None:
    """An API timestamp as an aware UTC datetime, or ``None`` when it is no timestamp.

    Accepts ISO-8601 (a missing offset means UTC, as the API documents) and the dashed
    ``YYYY-MM-DD-HH-MM-SS-mmm`` shape that the documentation's samples show.
    """
    match = _DASHED_TIMESTAMP.fullmatch(text)
    if match:
        y, mo, d, h, mi, s, ms = (int(g) for g in match.groups())
        try:
            return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
