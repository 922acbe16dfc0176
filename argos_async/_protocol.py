"""The protocol's decisions, without I/O: bytes and values in, values or errors out.

Argument validation and query building, the resume-cursor format, page decoding, and the
mapping from an HTTP status to an exception all live here, so each can be tested alone.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

from .errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from .models import ApplicantSubmission, Page, PageKey, RequestType, Submission

DEFAULT_BASE_URL: Final = "https://rest-api.argosidentity.com"
"""The API's current host, the client's default ``base_url`` (``ARGOS_BASE_URL`` overrides)."""
LEGACY_BASE_URL: Final = "https://rest-api.argoskyc.com"
"""The host of the original v3 documentation; serves the same API. Pass it as ``base_url``."""
SUBMISSION_PATH: Final = "/v3/submission"
APPLICANT_PATH: Final = "/v3/submission/applicant"
MAX_PAGE_SIZE: Final = 2000
BODY_EXCERPT_CHARS: Final = 500

DateFormat = Literal["YYYY-MM-DD", "YYYYMMDD"]
DATE_FORMATS: Final[dict[str, str]] = {"YYYY-MM-DD": "%Y-%m-%d", "YYYYMMDD": "%Y%m%d"}
REQUEST_TYPES: Final = frozenset(t.value for t in RequestType)

# ---------------------------------------------------------------------------------------------
# Masking personal data in messages.

_EMAIL_RE: Final = re.compile(
    r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})"
)


def mask_email(email: str) -> str:
    """``ana.silva@example.com`` -> ``a***@example.com``."""
    local, sep, domain = email.partition("@")
    if not sep:
        return mask_id(email)
    return f"{local[:1]}***@{domain}"


def mask_id(value: str) -> str:
    """A user id or other identifier, reduced to its first character."""
    return f"{value[:1]}***" if value else ""


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Masks every email address in ``text``, and every occurrence of the ``known`` values."""
    for value in known:
        if value:
            text = text.replace(value, mask_email(value) if "@" in value else mask_id(value))
    return _EMAIL_RE.sub(r"\1***@\2", text)


# ---------------------------------------------------------------------------------------------
# Argument validation. Every check names the argument; none echoes personal data.


def check_text(name: str, value: object) -> str:
    """A non-empty ``str`` argument (an id, an email)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def check_optional_text(name: str, value: object) -> str | None:
    return None if value is None else check_text(name, value)


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An ``int`` (not a bool, not a numeric string) within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def check_seconds(name: str, value: object) -> float:
    """A positive, finite number of seconds (or of anything per second)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_optional_seconds(name: str, value: object) -> float | None:
    return None if value is None else check_seconds(name, value)


def check_page_size(value: object) -> int:
    return check_int("page_size", value, minimum=1, maximum=MAX_PAGE_SIZE)


def check_max_items(value: object) -> int | None:
    return None if value is None else check_int("max_items", value, minimum=0)


def check_prefetch(value: object) -> int:
    # More than one page ahead buys nothing once the next page is always in flight,
    # and would multiply the memory a stream holds.
    return check_int("prefetch", value, minimum=0, maximum=1)


def check_request_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"request_type must be a str, got {type(value).__name__}")
    if value not in REQUEST_TYPES:
        raise ValueError(
            f"request_type must be one of {', '.join(sorted(REQUEST_TYPES))}, got {value!r}"
        )
    return str(value)


def check_date_format(value: object) -> DateFormat:
    if value == "YYYY-MM-DD":
        return "YYYY-MM-DD"
    if value == "YYYYMMDD":
        return "YYYYMMDD"
    raise ValueError(f"date_format must be 'YYYY-MM-DD' or 'YYYYMMDD', got {value!r}")


def to_date(name: str, value: object) -> date | None:
    """A ``date``, or a ``'YYYY-MM-DD'`` / ``'YYYYMMDD'`` string, as a ``date``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        # A datetime is a date subclass; silently dropping its time and zone would surprise.
        raise TypeError(f"{name} must be a date, not a datetime (use .date())")
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a date or a 'YYYY-MM-DD' string, got {type(value).__name__}"
        )
    try:
        if re.fullmatch(r"\d{8}", value):
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ValueError(f"{name} must be a valid 'YYYY-MM-DD' date, got {value!r}")


def check_base_url(value: object) -> str:
    """The API's origin: https, or plain http for loopback hosts only. Returns it normalized."""
    if not isinstance(value, str):
        raise TypeError(f"base_url must be a str, got {type(value).__name__}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) origin such as {DEFAULT_BASE_URL!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url must not carry credentials, a query or a fragment")
    if parts.path not in ("", "/"):
        raise ValueError(
            "base_url must be the API's origin without a path; the client appends /v3/submission"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("base_url must use https: plain http is allowed for loopback hosts only")
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Queries.


@dataclass(frozen=True)
class ListQuery:
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

    @property
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


# ---------------------------------------------------------------------------------------------
# Resume cursors: "ac1." + base64url(JSON [fingerprint, nextpageKey.id, nextpageKey.created_at]).

_CURSOR_PREFIX: Final = "ac1."
_cursor_decoder = msgspec.json.Decoder(tuple[str, str, str])


def encode_cursor(key: PageKey, fingerprint: str) -> str:
    payload = msgspec.json.encode((fingerprint, key.id, key.created_at))
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_cursor(cursor: object, fingerprint: str) -> PageKey:
    """The page key inside ``cursor``; refuses a cursor made for other filters."""
    if not isinstance(cursor, str):
        raise TypeError(f"cursor must be a str from Page.cursor, got {type(cursor).__name__}")
    if not cursor.startswith(_CURSOR_PREFIX):
        raise ValueError("cursor is not a resume cursor of this client version (from Page.cursor)")
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        made_for, key_id, created_at = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValueError("cursor is damaged: pass Page.cursor unchanged") from None
    if made_for != fingerprint:
        raise ValueError(
            "cursor was made for other filters (email, userid, start_date, end_date, "
            "request_type): resume with the filters of the listing it came from"
        )
    return PageKey(id=key_id, created_at=created_at)


# ---------------------------------------------------------------------------------------------
# Decoding.


class _Envelope(msgspec.Struct, gc=False):
    items: list[Submission] = msgspec.field(name="Items")
    next_key: PageKey | None = msgspec.field(default=None, name="nextpageKey")


_envelope_decoder = msgspec.json.Decoder(_Envelope)


class _Scan(msgspec.Struct, gc=False):
    items: list[msgspec.Raw] = msgspec.field(name="Items")
    next_key: PageKey | None = msgspec.field(default=None, name="nextpageKey")


_scan_decoder = msgspec.json.Decoder(_Scan)
_applicants_decoder = msgspec.json.Decoder(list[ApplicantSubmission])


def decode_page(body: bytes, fingerprint: str) -> Page:
    """A list response as a ``Page``; its cursor resumes after it."""
    envelope = _decode_envelope(body)
    next_key = envelope.next_key
    cursor = encode_cursor(next_key, fingerprint) if next_key is not None else None
    return Page(items=envelope.items, next_key=next_key, cursor=cursor, body=body)


def scan_page(body: bytes) -> tuple[PageKey | None, int]:
    """A list response's next key and item count, without building its items (about a
    quarter of the cost of decoding them). A body cut off in transit fails here, inside the
    request's retries."""
    try:
        scan = _scan_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ResponseDecodeError(f"response does not match the documented shape: {exc}") from None
    except msgspec.DecodeError:
        raise ResponseDecodeError(
            f"response body is not valid JSON ({len(body)} bytes; cut off?)", incomplete=True
        ) from None
    return scan.next_key, len(scan.items)


def decode_single(body: bytes, submission_id: str) -> Submission:
    """A single-submission response; an empty ``Items`` list means no such submission."""
    items = _decode_envelope(body).items
    if not items:
        raise NotFoundError(f"no submission with id {submission_id!r}", status=200)
    return items[0]


def decode_applicants(body: bytes) -> list[ApplicantSubmission]:
    """The applicant endpoint's bare JSON array."""
    try:
        return _applicants_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ResponseDecodeError(
            f"applicant response is not the documented array: {exc}"
        ) from None
    except msgspec.DecodeError:
        raise ResponseDecodeError(
            f"applicant response is not valid JSON ({len(body)} bytes; cut off?)",
            incomplete=True,
        ) from None


def _decode_envelope(body: bytes) -> _Envelope:
    try:
        # The fast path: one msgspec call builds every Struct of the page.
        return _envelope_decoder.decode(body)
    except msgspec.ValidationError:
        # Valid JSON of a shape we did not expect; most often a timestamp in another format.
        return _decode_envelope_leniently(body)
    except msgspec.DecodeError:
        raise ResponseDecodeError(
            f"response body is not valid JSON ({len(body)} bytes; cut off?)", incomplete=True
        ) from None


def _decode_envelope_leniently(body: bytes) -> _Envelope:
    """The slow path for a page that failed strict decoding: timestamps of other shapes are
    read leniently (or become ``None``), numbers sent as strings are accepted."""
    document = msgspec.json.decode(body)
    document = _repair_timestamps(document, _envelope_info())
    try:
        return msgspec.convert(document, _Envelope, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec names the path and the expected type, never the value: safe to show.
        raise ResponseDecodeError(f"response does not match the documented shape: {exc}") from None


@functools.cache
def _envelope_info() -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(_Envelope)


def _repair_timestamps(value: Any, info: msgspec.inspect.Type) -> Any:
    """Walks decoded JSON along the model's type tree, replacing each timestamp value by an
    aware ``datetime`` or ``None``."""
    if isinstance(info, msgspec.inspect.DateTimeType):
        return parse_timestamp(value) if isinstance(value, str) else None
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        for field in info.fields:
            if field.encode_name in value:
                value[field.encode_name] = _repair_timestamps(value[field.encode_name], field.type)
    elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)) and isinstance(
        value, list
    ):
        return [_repair_timestamps(item, info.item_type) for item in value]
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if not isinstance(member, msgspec.inspect.NoneType):
                value = _repair_timestamps(value, member)
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


# ---------------------------------------------------------------------------------------------
# Errors.


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, looked up without regard to case."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


MESSAGE_CHARS: Final = 200


def error_message(body: bytes, known: Iterable[str] = ()) -> str:
    """The message an error body carries: ``message``, ``Message`` or ``errorCode``, else text;
    masked (see ``mask_text``), at most 200 characters."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        document = None
    text = ""
    if isinstance(document, dict):
        for key in ("message", "Message", "errorCode"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
    if not text:
        text = body[: BODY_EXCERPT_CHARS * 4].decode("utf-8", "replace")
    # Masked before it is cut: an address cut in two would no longer be recognized.
    text = " ".join(mask_text(text, known).split())
    return text[:MESSAGE_CHARS] or "(empty body)"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date form)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def next_quota_reset(now: datetime) -> datetime:
    """The daily quota resets at 00:00 UTC."""
    today = now.astimezone(timezone.utc).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)


QUOTA_MESSAGE: Final = "Limit Exceeded"


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    personal_values: Iterable[str] = (),
) -> APIStatusError:
    """The exception for an error response. Message and body excerpt are masked."""
    known = tuple(personal_values)
    message = error_message(body, known)
    excerpt = mask_text(body[: BODY_EXCERPT_CHARS * 4].decode("utf-8", "replace"), known)
    excerpt = excerpt[:BODY_EXCERPT_CHARS]
    request_id = header(headers, "x-amzn-RequestId")
    common: dict[str, Any] = {"status": status, "request_id": request_id, "body": excerpt}
    if status == 429:
        retry_after = parse_retry_after(header(headers, "Retry-After"), now)
        if message == QUOTA_MESSAGE:
            reset = next_quota_reset(now)
            error: RateLimitError = QuotaExceededError(
                f"{message}: the daily quota resets at {reset:%Y-%m-%d %H:%M} UTC",
                retry_after=(reset - now).total_seconds(),
                **common,
            )
            return error
        return RateLimitError(message, retry_after=retry_after, **common)
    if 300 <= status < 400:
        # Following a redirect could carry the key to another host: never done.
        return APIStatusError(
            f"the API answered with a redirect ({status}), which the client does not follow",
            **common,
        )
    if status == 503:
        # RFC 9110 lets a 503 say how long the service expects to be down.
        retry_after = parse_retry_after(header(headers, "Retry-After"), now)
        return ServerError(message, retry_after=retry_after, **common)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIStatusError
    return cls(message, **common)


_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
}


# ---------------------------------------------------------------------------------------------
# Retry decisions.

RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})


def is_retryable(error: BaseException) -> bool:
    """Whether sending the same GET again may succeed (every request here is idempotent)."""
    if isinstance(error, QuotaExceededError):
        return False  # the daily quota: nothing changes before 00:00 UTC
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, ServerError):
        return error.status in RETRY_STATUSES
    if isinstance(error, APIConnectionError):
        return True  # refused, reset, cut off mid-body, timed out
    if isinstance(error, ResponseDecodeError):
        return error.incomplete  # a 200 whose JSON was cut off
    return False


def server_wait(error: BaseException) -> float | None:
    """The wait the server asked for with ``Retry-After`` on a 429 or a 503, if any. The daily
    quota's time to reset is no such wait: that error is not retried."""
    if isinstance(error, QuotaExceededError):
        return None
    if isinstance(error, (RateLimitError, ServerError)):
        return error.retry_after
    return None


def retry_wait(error: BaseException, backoff_delay: float) -> float:
    """How long to wait before the next attempt: the server's ``Retry-After`` exactly (jitter
    must never make it shorter), else the jittered exponential backoff delay."""
    asked = server_wait(error)
    return backoff_delay if asked is None else asked


def masked_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters fit for a log line: emails and user ids masked."""
    masked = dict(params)
    if "email" in masked:
        masked["email"] = mask_email(masked["email"])
    if "userid" in masked:
        masked["userid"] = mask_id(masked["userid"])
    return masked
