"""Argument validation. Every check names the argument it refuses; none echoes personal data."""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Final
from urllib.parse import urlsplit

from ..models import RequestType
from .wire import DEFAULT_BASE_URL, MAX_PAGE_SIZE, DateFormat

REQUEST_TYPES: Final = frozenset(t.value for t in RequestType)


def check_text(name: str, value: object) -> str:
    """A non-empty ``str`` argument (an id, an email)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def check_api_key(value: object, name: str = "api_key") -> str:
    """An API key fit for a header: printable ASCII with no space at either end. The message
    never shows the key, not even in part."""
    key = check_text(name, value)
    if not (key.isascii() and key.isprintable()):
        raise ValueError(
            f"{name} holds a control or non-ASCII character (a stray newline or NUL?): "
            "it cannot be sent in a header"
        )
    if key != key.strip():
        raise ValueError(f"{name} starts or ends with a space")
    return key


def check_optional_text(name: str, value: object) -> str | None:
    """``None``, or what :func:`check_text` accepts."""
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
    """``True`` or ``False``, nothing merely truthy."""
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
    """``None``, or what :func:`check_seconds` accepts."""
    return None if value is None else check_seconds(name, value)


def check_page_size(value: object) -> int:
    """The API's ``count``: 1 to 2000."""
    return check_int("page_size", value, minimum=1, maximum=MAX_PAGE_SIZE)


def check_max_items(value: object) -> int | None:
    """``None`` (no limit) or a count >= 0."""
    return None if value is None else check_int("max_items", value, minimum=0)


def check_prefetch(value: object) -> int:
    """0 or 1 pages of read-ahead."""
    # More than one page ahead buys nothing once the next page is always in flight,
    # and would multiply the memory a stream holds.
    return check_int("prefetch", value, minimum=0, maximum=1)


def check_request_type(value: object) -> str | None:
    """``None`` or one of the API's projections (``kyc``, ``aml``, ``data``, ``others``)."""
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
    """``"YYYY-MM-DD"`` or ``"YYYYMMDD"``."""
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
    raise ValueError(f"{name} must be a valid date as 'YYYY-MM-DD' or 'YYYYMMDD', got {value!r}")


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
    if ":" in parts.netloc.rsplit("]", 1)[-1]:  # a port is given (after an IPv6 literal)
        try:
            port = parts.port
        except ValueError:  # not a number, or past 65535
            port = None
        if not port:
            raise ValueError("base_url has an invalid port: it must be a number from 1 to 65535")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("base_url must use https: plain http is allowed for loopback hosts only")
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
