"""Encrypted webhooks (secure transmission): the emulator seals them as the provider does, and
``parse(body, key=...)`` opens them; every way they can fail is a ``WebhookDecodeError`` that
shows neither the key nor the data."""

from __future__ import annotations

import base64
import sys

import msgspec
import pytest
from test_emulator_webhooks import Receiver

from argos_async.testing import ArgosEmulator
from argos_async.webhooks import (
    CreatedWebhook,
    RejectedWebhook,
    WebhookDecodeError,
    WebhookInbox,
    parse,
)

pytestmark = pytest.mark.anyio

SECRET = "project-secret-key-1234"


async def test_the_emulator_seals_webhooks_and_parse_opens_them_with_the_key() -> None:
    async with (
        Receiver() as receiver,
        ArgosEmulator(
            submissions=20, seed=5, secure_transmission=SECRET, webhook_url=receiver.url
        ) as emu,
    ):
        created = emu.create(email="new.person@example.com")
        sid = next(i for i in emu.dataset.ids if emu.get(i)["kyc"]["result"] != "rejected")  # type: ignore[index]
        emu.update(sid, kyc={"result": "rejected"})
        await emu.webhooks_idle()
    sealed = receiver.bodies
    assert len(sealed) == 2
    for body in sealed:  # as the provider documents it: the payload in one `data` property
        assert set(msgspec.json.decode(body)) == {"data"}
        assert b"example.com" not in body
        assert sid.encode() not in body
    first, second = (parse(body, key=SECRET) for body in sealed)
    assert isinstance(first, CreatedWebhook)
    assert first.submission_id == created["submission_id"]
    assert first.email == "new.person@example.com"
    assert isinstance(second, RejectedWebhook)
    assert second.submission_id == sid
    # raw is the decrypted JSON, the payload as a plain project would have received it.
    assert msgspec.json.decode(second.raw)["webhook_trigger"] == "rejected"
    assert parse(second.raw) == second


async def test_an_encrypted_body_without_the_key_says_to_pass_it() -> None:
    async with (
        Receiver() as receiver,
        ArgosEmulator(
            submissions=5, seed=1, secure_transmission=True, webhook_url=receiver.url
        ) as emu,
    ):
        emu.delete(emu.dataset.ids[0])
        await emu.webhooks_idle()
        api_key = emu.api_key
    (body,) = receiver.bodies
    with pytest.raises(WebhookDecodeError, match=r"encrypted .*key="):
        parse(body)
    assert parse(body, key=api_key).is_deletion  # keyed by the API key, as True says


def _sealed_with(key: str, plaintext: bytes) -> bytes:
    # Sealed by the emulator's own implementation, not the client's.
    from argos_async.testing._secure import SecureWire

    return SecureWire(key).seal(plaintext)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_sealed_with("another-key", b'{"webhook_trigger": "created"}'), "does not decrypt"),
        (b'{"data": "not base64!"}', "does not decrypt"),
        (b'{"data": "' + base64.b64encode(b"short").decode().encode() + b'"}', "does not decrypt"),
        (_sealed_with(SECRET, b"this is not json"), "does not decrypt"),
        (b'{"webhook_trigger": "created", "submission_id": "s1"}', "not encrypted"),
        (b'{"data": 12}', "not encrypted"),
        (b'{"data": "abc', "not valid JSON"),
        (b"", "empty"),
    ],
    ids=[
        "wrong-key", "not-base64", "not-whole-blocks", "plaintext-not-json", "plain-body",
        "data-not-a-string", "cut-off", "empty",
    ],
)  # fmt: skip
def test_a_body_that_does_not_open_with_the_key_is_a_typed_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookDecodeError, match=message) as caught:
        parse(body, key=SECRET)
    text = str(caught.value) + repr(caught.value)
    assert SECRET not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_key_that_is_not_a_key_is_refused_by_name() -> None:
    body = _sealed_with(SECRET, b'{"webhook_trigger": "created"}')
    with pytest.raises(TypeError, match="'key'"):
        parse(body, key=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'key'"):
        parse(body, key="")


async def test_an_inbox_with_the_key_opens_bodies_even_a_misfit_one() -> None:
    delivered: list[str] = []

    async def deliver(ids: list[str]) -> None:
        delivered.extend(ids)

    misfit = b'{"webhook_trigger": "created", "submission_id": "s2", "cf": "text"}'
    with pytest.raises(WebhookDecodeError, match="documented shape"):
        parse(_sealed_with(SECRET, misfit), key=SECRET)  # parse, decrypted, stays strict
    async with WebhookInbox(deliver, key=SECRET) as inbox:
        assert inbox.accept(
            _sealed_with(SECRET, b'{"webhook_trigger": "created", "submission_id": "s1"}')
        )
        assert inbox.accept(_sealed_with(SECRET, misfit))  # taken by its header
        with pytest.raises(WebhookDecodeError, match="does not decrypt"):
            inbox.accept(_sealed_with("another-key", misfit))
        with pytest.raises(WebhookDecodeError, match="not encrypted"):
            inbox.accept(misfit)
        await inbox.join()
    assert delivered == ["s1", "s2"]
    assert (inbox.accepted, inbox.lenient) == (2, 1)


async def test_without_cryptography_an_inbox_with_a_key_fails_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def deliver(ids: list[str]) -> None:
        raise AssertionError("nothing is delivered")

    # A None in sys.modules makes the import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    with pytest.raises(ImportError, match=r"pip install 'argos-async\[secure\]'") as caught:
        WebhookInbox(deliver, key=SECRET)
    assert SECRET not in str(caught.value)
    with pytest.raises(ImportError, match=r"argos-async\[secure\]"):
        parse(b'{"data": "AAAA"}', key=SECRET)
    # Without a key nothing needs it.
    async with WebhookInbox(deliver) as inbox:
        assert inbox.accept(b'{"webhook_trigger": "created"}') is False
