"""What pretty-printers (rich, IPython) and encoders can show of the library's values: no key
and no personal data that ``repr`` would not show. msgspec gives every Struct a
``__rich_repr__`` listing its fields as they are, which would go around a masking ``repr``."""

from __future__ import annotations

import msgspec
import pytest

from argos_async import BatchResult, NotFoundError, Page, RawPage, SecureTransmission

SECRET = "project-secret-key-1234"
EMAIL = "ana.maria@example.com"


def rich_view(value: object) -> str:
    """What a pretty-printer built on the ``__rich_repr__`` protocol shows (rich, IPython)."""
    method = getattr(value, "__rich_repr__", None)
    return repr(value) if method is None else repr(list(method()))


def test_a_secure_transmission_value_shows_and_serialises_no_key() -> None:
    secure = SecureTransmission(secret_key=SECRET)
    for shown in (repr(secure), str(secure), rich_view(secure)):
        assert SECRET not in shown
    assert "secret key" in repr(secure)
    with pytest.raises(TypeError):
        msgspec.json.encode(secure)  # not a Struct: nothing serialises the key by accident
    with pytest.raises(AttributeError):
        secure.secret_key = "other"  # type: ignore[misc]
    assert secure == SecureTransmission(secret_key=SECRET)
    assert hash(secure) == hash(SecureTransmission(secret_key=SECRET))
    assert secure != SecureTransmission()


def test_a_batch_result_keyed_by_an_email_is_masked_for_pretty_printers() -> None:
    found: BatchResult[list[object]] = BatchResult(EMAIL, value=[])
    missing: BatchResult[list[object]] = BatchResult(
        EMAIL, error=NotFoundError("no submission", status=200)
    )
    for result in (found, missing):
        assert EMAIL not in repr(result)
        assert EMAIL not in rich_view(result)
        assert "a***@example.com" in rich_view(result)
    assert "NotFoundError" in rich_view(missing)


def test_pages_are_shown_by_count_not_item_by_item() -> None:
    page = msgspec.convert(
        {"items": [{"submission_id": "s1", "email": EMAIL}], "next_key": None, "cursor": None},
        Page,
    )
    raw = RawPage(items=[msgspec.Raw(b'{"email": "' + EMAIL.encode() + b'"}')], next_key=None,
                  cursor=None)  # fmt: skip
    for value, count in ((page, "<1 submissions>"), (raw, "<1 raw items>")):
        assert EMAIL not in repr(value)
        assert EMAIL not in rich_view(value)
        assert count in rich_view(value)
