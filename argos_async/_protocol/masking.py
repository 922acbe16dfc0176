"""Masking personal data: emails and user ids never reach a message, a log line or a repr whole."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

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


def masked_params(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters fit for a log line: emails and user ids masked."""
    masked = dict(params)
    if "email" in masked:
        masked["email"] = mask_email(masked["email"])
    if "userid" in masked:
        masked["userid"] = mask_id(masked["userid"])
    return masked
