"""Where a page key becomes a cursor and back: a validated listing, the query string of each of
its pages, and the opaque resume cursor that carries a page key between runs.

A cursor is ``"ac1." + base64url(JSON [fingerprint, nextpageKey.id, nextpageKey.created_at])``:
the fingerprint (a digest of the filters) lets a cursor made for other filters be refused rather
than resume the wrong listing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from datetime import date
from typing import Final, NamedTuple

import msgspec

from ..models import PageKey
from .checks import check_optional_text, check_page_size, check_request_type, to_date
from .wire import DATE_FORMATS, MAX_PAGE_SIZE, DateFormat


class ListQuery(msgspec.Struct, frozen=True, dict=True):
    """A validated listing: its filters, page size and date format."""

    email: str | None = None
    userid: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    request_type: str | None = None
    page_size: int = MAX_PAGE_SIZE
    date_format: DateFormat = "YYYY-MM-DD"

    @classmethod
    def build(
        cls,
        *,
        email: object = None,
        userid: object = None,
        start_date: object = None,
        end_date: object = None,
        request_type: object = None,
        page_size: object = MAX_PAGE_SIZE,
        date_format: DateFormat = "YYYY-MM-DD",
    ) -> ListQuery:
        """Validates every argument; raises ``TypeError``/``ValueError`` naming the bad one."""
        start = to_date("start_date", start_date)
        end = to_date("end_date", end_date)
        if start is not None and end is not None and end < start:
            raise ValueError(f"end_date ({end}) is before start_date ({start})")
        return cls(
            email=check_optional_text("email", email),
            userid=check_optional_text("userid", userid),
            start_date=start,
            end_date=end,
            request_type=check_request_type(request_type),
            page_size=check_page_size(page_size),
            date_format=date_format,
        )

    def between(self, start: date | None, end: date | None) -> ListQuery:
        """The same listing over other days (a backfill's window); the dates are trusted."""
        return msgspec.structs.replace(self, start_date=start, end_date=end)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short digest of the filters: a cursor made for other filters is refused."""
        canonical = msgspec.json.encode(
            [
                self.email,
                self.userid,
                self.start_date.isoformat() if self.start_date else None,
                self.end_date.isoformat() if self.end_date else None,
                self.request_type,
            ]
        )
        return hashlib.sha256(canonical).hexdigest()[:16]

    def params(self, after: PageKey | None, count: int) -> dict[str, str]:
        """The query string of one page request. ``count`` is always sent: the documents
        disagree on its default (2000 or 50)."""
        fmt = DATE_FORMATS[self.date_format]
        params = {"count": str(count)}
        if self.email is not None:
            params["email"] = self.email
        if self.userid is not None:
            params["userid"] = self.userid
        if self.start_date is not None:
            params["start_date"] = self.start_date.strftime(fmt)
        if self.end_date is not None:
            params["end_date"] = self.end_date.strftime(fmt)
        if self.request_type is not None:
            params["request_type"] = self.request_type
        if after is not None:
            params["nextpage_id"] = after.id
            params["nextpage_date"] = after.created_at
        return params

    def personal_values(self) -> tuple[str, ...]:
        """The values to mask wherever a message could echo them."""
        return tuple(v for v in (self.email, self.userid) if v)


class Position(NamedTuple):
    """Where a listing resumes: at the page after ``after`` (``None``: the first page),
    skipping the first ``skip`` items there, which the caller already has (a page cut short
    by ``max_items``)."""

    after: PageKey | None
    skip: int = 0


START: Final = Position(None)
"""A listing from its first item."""

_CURSOR_PREFIX: Final = "ac1."
_cursor_decoder = msgspec.json.Decoder(tuple[str, str | None, str | None, int])
_whole_page_cursor_decoder = msgspec.json.Decoder(tuple[str, str, str])


def encode_cursor(position: Position, fingerprint: str) -> str:
    """The resume cursor for ``position`` in the listing with this fingerprint. A position at
    a page's start has the three-part form of earlier versions; one inside a page (or inside
    the first page) carries the key's parts, or nulls, and how many items to skip there."""
    key, skip = position
    if skip == 0 and key is not None:
        payload = msgspec.json.encode((fingerprint, key.id, key.created_at))
    else:
        payload = msgspec.json.encode(
            (fingerprint, key.id if key else None, key.created_at if key else None, skip)
        )
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_cursor(cursor: object, fingerprint: str) -> Position:
    """The position inside ``cursor``; refuses a damaged cursor or one made for other
    filters."""
    if not isinstance(cursor, str):
        raise TypeError(f"cursor must be a str from Page.cursor, got {type(cursor).__name__}")
    if not cursor.startswith(_CURSOR_PREFIX):
        raise ValueError("cursor is not a resume cursor of this client version (from Page.cursor)")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        key_id: str | None
        created_at: str | None
        try:
            made_for, key_id, created_at = _whole_page_cursor_decoder.decode(raw)
            skip = 0
        except msgspec.ValidationError:
            made_for, key_id, created_at, skip = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError, RecursionError):
        raise ValueError("cursor is damaged: pass Page.cursor unchanged") from None
    if skip < 0 or (key_id is None) != (created_at is None):
        raise ValueError("cursor is damaged: pass Page.cursor unchanged")
    if made_for != fingerprint:
        raise ValueError(
            "cursor was made for other filters (email, userid, start_date, end_date, "
            "request_type): resume with the filters of the listing it came from"
        )
    key = None if key_id is None or created_at is None else PageKey(key_id, created_at)
    return Position(key, skip)
