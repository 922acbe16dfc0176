"""An error response (status, headers, body) into the exception it means.

The message is read from the body (``message``, ``Message`` or ``errorCode``, else its text),
masked before it is cut, and the ``Retry-After`` header is read in both of its forms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final

import msgspec

from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from .masking import mask_text
from .wire import QUOTA_MESSAGE, REQUEST_ID_HEADER, RETRY_AFTER_HEADER

BODY_EXCERPT_CHARS: Final = 500
MESSAGE_CHARS: Final = 200


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


def error_message(body: bytes, known: Iterable[str] = ()) -> str:
    """The message an error body carries: ``message``, ``Message`` or ``errorCode``, else text;
    masked (see ``mask_text``), at most 200 characters."""
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested past msgspec's limit
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


_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
}


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
    common: dict[str, Any] = {
        "status": status,
        "request_id": header(headers, REQUEST_ID_HEADER),
        "body": excerpt[:BODY_EXCERPT_CHARS],
        "retry_after": parse_retry_after(header(headers, RETRY_AFTER_HEADER), now),
    }
    if status == 429:
        if message == QUOTA_MESSAGE:
            reset = next_quota_reset(now)
            return QuotaExceededError(
                f"{message}: the daily quota resets at {reset:%Y-%m-%d %H:%M} UTC",
                resets_at=reset,
                **common,
            )
        return RateLimitError(message, **common)
    if 300 <= status < 400:
        # Following a redirect could carry the key to another host: never done.
        return APIStatusError(
            f"the API answered with a redirect ({status}), which the client does not follow",
            **common,
        )
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIStatusError
    return cls(message, **common)
