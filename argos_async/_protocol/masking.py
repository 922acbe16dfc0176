"""Masking personal data: emails and user ids never reach a message, a log line or a repr whole.

A server may echo a query's value in any encoding: as sent, percent-encoded, JSON-escaped, as
an HTML entity. So the values a call sent are masked in each of those forms, and any other
address is found by a pattern that knows them too (non-ASCII local parts, IDN domains,
one-letter TLDs, and ``%40``, ``\\u0040`` or ``&#64;`` for the ``@``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote, quote_plus

_AT: Final = r"(?:@|%40|\\u0040|&#0*64;|&#x0*40;)"
# \w is Unicode-aware: 홍길동, ü and the like are letters here. A backslash and % may stand in
# an escaped local part or domain (\ud64d..., %2B, b%C3%BCcher.de).
_EMAIL_RE: Final = re.compile(
    rf"([\w.%+\-\\])[\w.%+\-\\]*{_AT}((?:[\w\-%\\]+\.)+[\w\-%\\]+)", re.IGNORECASE
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


def encoded_forms(value: str) -> set[str]:
    """``value`` as a server might echo it: as sent, percent-encoded, JSON-escaped, as HTML."""
    import html  # here: its table of entities is a millisecond of every start-up otherwise

    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],  # \uXXXX for every non-ASCII character
        html.escape(value),
    }
    if "@" in value:
        for at in ("%40", "\\u0040", "&#64;", "&#x40;"):
            forms.add(value.replace("@", at))
    return {form for form in forms if form}


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Masks every email address in ``text``, and every occurrence of the ``known`` values in
    any of their encoded forms."""
    for value in known:
        if len(value) < 2:  # its mask would be the value itself
            continue
        masked = mask_email(value) if "@" in value else mask_id(value)
        # Longest first: a form that contains another is replaced whole.
        for form in sorted(encoded_forms(value), key=len, reverse=True):
            text = text.replace(form, masked)
    return _EMAIL_RE.sub(r"\1***@\2", text)


def masked_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters fit for a log line: emails and user ids masked, and so is secure
    transmission's ``data`` (the same parameters give the same ciphertext, and anyone who
    holds the key could read them back)."""
    masked = dict(params)
    if "data" in masked:
        masked["data"] = "***"
    if "email" in masked:
        masked["email"] = mask_email(masked["email"])
    if "userid" in masked:
        masked["userid"] = mask_id(masked["userid"])
    return masked
