"""Masking, table-driven: every form in which a server might echo an email or a user id."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

import pytest

from argos_async._protocol.masking import mask_text

EMAILS = [
    "ana.silva@example.com",
    "홍길동@example.com",  # a non-ASCII local part
    "ana@bücher.de",  # an IDN domain
    "ana@xn--bcher-kva.de",  # the same, in punycode
    "ana@example.x",  # a one-letter TLD
    "ana+tag@mail.example.co.uk",
]


def forms(email: str) -> dict[str, str]:
    return {
        "as sent": email,
        "percent-encoded @": email.replace("@", "%40"),
        "percent-encoded": quote(email, safe=""),
        "JSON-escaped @": email.replace("@", "\\u0040"),
        "JSON-escaped": json.dumps(email)[1:-1],
        "HTML entity": email.replace("@", "&#64;"),
        "HTML hex entity": email.replace("@", "&#x40;"),
        "HTML-escaped": html.escape(email),
    }


CASES = [(email, kind, form) for email in EMAILS for kind, form in forms(email).items()]


def visible_parts(email: str) -> list[str]:
    """What must not survive masking: the local part past its first character."""
    local = email.split("@")[0]
    return [local[1:]] if len(local) > 1 else []


@pytest.mark.parametrize(("email", "kind", "form"), CASES, ids=[f"{e} {k}" for e, k, _ in CASES])
@pytest.mark.parametrize("known", [True, False], ids=["the query's value", "any address"])
def test_an_echoed_email_is_masked_in_every_encoding(
    email: str, kind: str, form: str, known: bool
) -> None:
    text = f'{{"message": "no user {form} here", "detail": "({form})"}}'
    masked = mask_text(text, [email] if known else [])
    assert form not in masked
    for part in visible_parts(email):
        assert part not in masked, masked
        assert quote(part, safe="") not in masked or not part.isascii(), masked
        assert json.dumps(part)[1:-1] not in masked, masked
    assert "***" in masked
    assert masked.startswith('{"message": "no user ')  # the rest of the text is kept


USER_IDS = ["user-4711", "홍길동-id", "a b&c"]


@pytest.mark.parametrize("userid", USER_IDS)
@pytest.mark.parametrize(
    "encode",
    [
        lambda v: v,
        lambda v: quote(v, safe=""),
        lambda v: json.dumps(v)[1:-1],
        lambda v: html.escape(v),
    ],
    ids=["as sent", "percent-encoded", "JSON-escaped", "HTML-escaped"],
)
def test_the_querys_user_id_is_masked_in_every_encoding(userid: str, encode: object) -> None:
    assert callable(encode)
    form = encode(userid)
    masked = mask_text(f"no submissions for {form}.", [userid])
    assert form not in masked
    assert userid[1:] not in masked
    assert masked == f"no submissions for {userid[0]}***."


def test_text_without_personal_data_is_left_alone() -> None:
    text = "Invalid Query String parameters: count must be 1..2000 (v3/submission)"
    assert mask_text(text, ["ana@example.com", "user-1"]) == text
