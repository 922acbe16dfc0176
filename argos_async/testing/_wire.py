"""The Argos KYC REST API v3 as the emulator speaks it: paths, query parameters, headers,
limits, formats and the gateway's documented error bodies, with their encodings.

Every part of the emulator (server, listing, faults, command line) takes these from here and
from nowhere else. Deliberately none of it comes from the client's own modules
(`argos_async._protocol` and friends): the emulator is a second, independent reading of the
API documentation, so a client that misreads it fails its tests instead of agreeing with
itself.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Final

import msgspec

__all__ = [
    "API_KEY_HEADER",
    "APPLICANT_PATH",
    "DEFAULT_COUNT",
    "DENY_KEY",
    "EXPLICIT_DENY",
    "FORBIDDEN",
    "INVALID_QUERY",
    "JSON_CONTENT_TYPE",
    "LIST_PATH",
    "MAX_COUNT",
    "MESSAGE_KEY",
    "NOT_FOUND",
    "QUOTA_EXCEEDED",
    "REQUEST_ID_HEADER",
    "REQUEST_TYPES",
    "RETRY_AFTER_HEADER",
    "RETRY_AFTER_STATUSES",
    "STATUS_MESSAGES",
    "TIMESTAMP_RE",
    "TOO_LARGE",
    "Param",
    "error_body",
    "format_timestamp",
    "list_body",
    "lookup_body",
    "parse_count",
    "parse_query_date",
    "parse_timestamp",
    "retry_after_date",
    "retry_after_seconds",
]

# -- paths ----------------------------------------------------------------------------------

LIST_PATH: Final = "/v3/submission"
"""List pages, and single lookups with `submission_id`."""
APPLICANT_PATH: Final = "/v3/submission/applicant"
"""The submissions of one applicant id."""


class Param:
    """Query parameter names."""

    SUBMISSION_ID: Final = "submission_id"
    REQUEST_TYPE: Final = "request_type"
    COUNT: Final = "count"
    START_DATE: Final = "start_date"
    END_DATE: Final = "end_date"
    EMAIL: Final = "email"
    USERID: Final = "userid"
    NEXTPAGE_ID: Final = "nextpage_id"
    NEXTPAGE_DATE: Final = "nextpage_date"
    APPLICANT_ID: Final = "applicant_id"


REQUEST_TYPES: Final = ("kyc", "aml", "data", "others")
"""Values of `request_type`: a projection of each item."""
MAX_COUNT: Final = 2000
"""The largest `count` a list request may ask for."""
DEFAULT_COUNT: Final = 50
"""The page size when a list request gives no `count`."""
# The gateway's check of `count`: digits only; the range is checked after.
_COUNT_RE = re.compile(r"[0-9]{1,6}")

# -- headers --------------------------------------------------------------------------------

API_KEY_HEADER: Final = "x-api-key"
"""The request header carrying the API key."""
REQUEST_ID_HEADER: Final = "x-amzn-RequestId"
"""The response header the gateway gives every response (a UUID)."""
RETRY_AFTER_HEADER: Final = "Retry-After"
"""Sent by some 429 and 503 responses: delay-seconds or an HTTP-date."""
RETRY_AFTER_STATUSES: Final = (429, 503)
"""The statuses a Retry-After may come with."""
JSON_CONTENT_TYPE: Final = "application/json"
"""The content type of every body, errors included."""

# -- error bodies ---------------------------------------------------------------------------

MESSAGE_KEY: Final = "message"
"""The key of an error body: `{"message": "..."}`."""
# The resource policy's deny is written by another part of the gateway, with a capital M.
DENY_KEY: Final = "Message"
"""The key of the explicit-deny body (a peer outside the IP allowlist)."""
FORBIDDEN: Final = "Forbidden"
"""403: a missing or wrong API key."""
EXPLICIT_DENY: Final = "User is not authorized to access this resource with an explicit deny"
"""403: the caller's address is not allowed."""
NOT_FOUND: Final = "Not Found"
"""404: no such path."""
INVALID_QUERY: Final = "Invalid Query String parameters"
"""400: a malformed query."""
TOO_LARGE: Final = "Request Entity Too Large"
"""413: a response body over the gateway's limit."""
QUOTA_EXCEEDED: Final = "Limit Exceeded"
"""429 without Retry-After: the daily quota is used up."""
STATUS_MESSAGES: Final = {
    400: INVALID_QUERY,
    403: FORBIDDEN,
    413: TOO_LARGE,
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Endpoint request timed out",
}
"""The gateway's message per error status, for the statuses the documentation names."""


def error_body(message: str, *, key: str = MESSAGE_KEY) -> bytes:
    """An error body as the gateway sends it, e.g. `{"message":"Forbidden"}`."""
    return msgspec.json.encode({key: message})


# -- success bodies -------------------------------------------------------------------------


def list_body(items: Sequence[bytes], next_key: dict[str, str] | None) -> bytes:
    """A list page: `{"Items":[...],"nextpageKey":{...}}` from items already encoded; the key
    is left out on the last page."""
    body = b'{"Items":[' + b",".join(items) + b"]"
    if next_key is not None:
        body += b',"nextpageKey":' + msgspec.json.encode(next_key)
    return body + b"}"


def lookup_body(item: bytes | None) -> bytes:
    """A single lookup: the list envelope with the one item, or none, and never a key."""
    return b'{"Items":[]}' if item is None else b'{"Items":[' + item + b"]}"


# -- formats --------------------------------------------------------------------------------

TIMESTAMP_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
"""Every timestamp of an item: UTC, milliseconds, a literal Z. They sort as strings."""


def format_timestamp(moment: datetime) -> str:
    """An aware datetime as an item's timestamp, e.g. `2025-03-01T12:00:00.000Z`."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_timestamp(stamp: str) -> datetime:
    """An item's timestamp as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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


def parse_count(raw: str | None) -> int:
    """The page size a `count` parameter asks for (ValueError when the gateway refuses it)."""
    if raw is None:
        return DEFAULT_COUNT
    if not _COUNT_RE.fullmatch(raw):
        raise ValueError(f"invalid count: {raw!r}")
    count = int(raw)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count {count} is not within 1..{MAX_COUNT}")
    return count


def retry_after_seconds(value: float) -> str:
    """A Retry-After in delay-seconds: `2`, `0.5` (never an exponent form)."""
    if value == int(value):
        return str(int(value))
    # Decimal keeps repr's shortest digits without the exponent form ("1e-05").
    return format(Decimal(repr(float(value))), "f")


def retry_after_date(delay: float) -> str:
    """A Retry-After as an HTTP-date `delay` seconds from now, rounded up to a whole second
    (so never earlier than asked)."""
    when = math.ceil(time.time() + delay)
    return format_datetime(datetime.fromtimestamp(when, timezone.utc), usegmt=True)
