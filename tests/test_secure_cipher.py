"""Secure transmission's cipher alone (``argos_async._protocol.secure``): no server.

The reference values come from outside the module: ciphertexts computed with the ``openssl``
command line (``openssl enc -aes-256-ecb -K $(printf %s KEY | sha256sum) -base64``, which pads
with PKCS#7), and cryptography's own primitives, used directly, for every other length.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from yarl import URL

from argos_async import ArgosClient, DecryptionError, ResponseDecodeError, SecureTransmission
from argos_async._protocol.masking import masked_params
from argos_async._protocol.secure import SecureChannel, open_channel
from argos_async._retry import is_retryable
from argos_async._transport import masked_url

KEY = "argos-test-key"

# openssl enc -aes-256-ecb -K 19e4e534...29be -base64 -A, the key being sha256("argos-test-key").
OPENSSL_VECTORS = [
    (
        b'{"submission_id":"gt7rcxx9l1o12345"}',
        "BM/LlaConcr4KPncxxOh93Uq1Pzkl6BnatdvcPqQMkDf3lxvpPBfKVAiJYIQ7mq2",
    ),
    (b'{"Items":[]}', "NcI8b4WhUH5/oTmVnOc/vA=="),
    # Exactly one block: PKCS#7 adds a whole block of padding.
    (b"0123456789abcdef", "DGUUIVAr8jz22nQgKM9usnt+lIM+kjdkv0LDd/SnrPU="),
]


def reference_cipher(key_text: str) -> Cipher[modes.ECB]:
    return Cipher(algorithms.AES(hashlib.sha256(key_text.encode()).digest()), modes.ECB())


def reference_encrypt(key_text: str, plaintext: bytes) -> str:
    padder = padding.PKCS7(128).padder()
    encryptor = reference_cipher(key_text).encryptor()
    padded = padder.update(plaintext) + padder.finalize()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def raw_encrypt(key_text: str, blocks: bytes) -> str:
    """``blocks`` encrypted as they are, no padding added: for plaintexts padded wrongly."""
    encryptor = reference_cipher(key_text).encryptor()
    return base64.b64encode(encryptor.update(blocks) + encryptor.finalize()).decode()


def raw_decrypt(key_text: str, text: str) -> bytes:
    decryptor = reference_cipher(key_text).decryptor()
    return decryptor.update(base64.b64decode(text)) + decryptor.finalize()


def sealed(text: str) -> bytes:
    return json.dumps({"data": text}).encode()


@pytest.mark.parametrize(("plaintext", "expected"), OPENSSL_VECTORS)
def test_the_cipher_gives_what_openssl_gives(plaintext: bytes, expected: str) -> None:
    channel = SecureChannel(KEY)
    assert channel.encrypt(plaintext) == expected
    assert channel.decrypt(expected) == plaintext


def test_a_lookup_is_sealed_as_the_whole_parameter_object_in_one_data() -> None:
    params = {"submission_id": "gt7rcxx9l1o12345"}
    assert SecureChannel(KEY).seal_params(params) == {"data": OPENSSL_VECTORS[0][1]}
    assert SecureChannel(KEY).open_body(sealed(OPENSSL_VECTORS[1][1])) == b'{"Items":[]}'


def test_every_length_agrees_with_cryptographys_own_padding() -> None:
    channel = SecureChannel(KEY)
    for length in range(50):  # empty, short, one block exactly, several
        plaintext = bytes(range(32, 127))[:length] + b"\xc3\xa9" * (length % 3)
        text = channel.encrypt(plaintext)
        assert text == reference_encrypt(KEY, plaintext), length
        assert channel.decrypt(text) == plaintext, length


def test_parameters_travel_as_compact_utf8_json_of_strings() -> None:
    params = {"email": "홍길동@example.com", "count": "50", "start_date": "2025-01-01"}
    data = SecureChannel(KEY).seal_params(params)["data"]
    plaintext = raw_decrypt(KEY, data)
    fill = plaintext[-1]
    assert plaintext[-fill:] == bytes([fill]) * fill
    document = plaintext[:-fill]
    assert document == json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
    assert "홍길동".encode() in document  # UTF-8 as it is, not \\u escapes


def test_the_key_is_the_api_key_or_the_secret_key() -> None:
    plaintext = b'{"Items":[]}'
    by_api_key = open_channel(True, KEY)
    by_default = open_channel(SecureTransmission(), KEY)
    by_secret = open_channel(SecureTransmission(secret_key="project-secret"), KEY)
    assert by_api_key is not None
    assert by_default is not None
    assert by_secret is not None
    assert by_api_key.encrypt(plaintext) == reference_encrypt(KEY, plaintext)
    assert by_default.encrypt(plaintext) == reference_encrypt(KEY, plaintext)
    assert by_secret.encrypt(plaintext) == reference_encrypt("project-secret", plaintext)
    assert open_channel(False, KEY) is None


def test_an_answer_decrypts_into_its_json() -> None:
    body = b'{"Items":[{"submission_id":"s1","email":"a@example.com"}]}'
    assert SecureChannel(KEY).open_body(sealed(reference_encrypt(KEY, body))) == body
    applicants = b'[{"submission_id":"s1","email":"a@example.com"}]'
    assert SecureChannel(KEY).open_body(sealed(reference_encrypt(KEY, applicants))) == applicants


MALFORMED = {
    "not base64": sealed("not base64 at all!"),
    "base64 broken by a newline": sealed(
        OPENSSL_VECTORS[1][1][:8] + "\n" + OPENSSL_VECTORS[1][1][8:]
    ),
    "empty": sealed(""),
    "a partial block": sealed(base64.b64encode(b"x" * 15).decode()),
    "a block and a byte": sealed(
        base64.b64encode(base64.b64decode(OPENSSL_VECTORS[1][1]) + b"x").decode()
    ),
    "padding of zero": sealed(raw_encrypt(KEY, b"{}" + b"\x00" * 14)),
    "padding over a block": sealed(raw_encrypt(KEY, b"{}" + b"\x11" * 14)),
    "padding bytes that disagree": sealed(raw_encrypt(KEY, b'{"a":1}' + b"\x09" * 7 + b"\x03\x02")),
    "plaintext not utf-8": sealed(reference_encrypt(KEY, b'{"a":"\xff\xfe"}')),
    "plaintext not json": sealed(reference_encrypt(KEY, b"Items: none")),
    "plaintext a json string": sealed(reference_encrypt(KEY, b'"Items"')),
    "plaintext a json number": sealed(reference_encrypt(KEY, b"42")),
    "a plain answer": b'{"Items":[],"nextpageKey":{"id":"x","created_at":"y"}}',
    "data not a string": b'{"data":5}',
    "a plain applicant answer": b"[]",
    "another key": sealed(reference_encrypt("another-key", b'{"Items":[]}')),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_a_decryption_error_never_retried(body: bytes) -> None:
    with pytest.raises(DecryptionError) as caught:
        SecureChannel(KEY).open_body(body)
    error = caught.value
    assert isinstance(error, ResponseDecodeError)
    assert not error.incomplete
    assert not is_retryable(error)
    # No key, no plaintext, no ciphertext in the message.
    message = str(error)
    assert KEY not in message
    assert "Items" not in message
    assert hashlib.sha256(KEY.encode()).hexdigest() not in message
    assert OPENSSL_VECTORS[1][1] not in message


def test_a_body_cut_off_in_transit_is_retried_like_a_plain_one() -> None:
    cut = sealed(OPENSSL_VECTORS[0][1])[:-5]
    with pytest.raises(ResponseDecodeError) as caught:
        SecureChannel(KEY).open_body(cut)
    assert not isinstance(caught.value, DecryptionError)
    assert caught.value.incomplete
    assert is_retryable(caught.value)


def test_a_wrong_key_that_leaves_valid_padding_still_fails() -> None:
    """About one wrong key in 256 decrypts the last block into a valid padding (most often
    one 0x01 byte): the plaintext's check must catch it, or garbage would be handed on."""
    text = OPENSSL_VECTORS[0][1]
    lucky = None
    for n in range(20_000):
        candidate = f"wrong-key-{n}"
        plaintext = raw_decrypt(candidate, text)
        fill = plaintext[-1]
        if 1 <= fill <= 16 and plaintext[-fill:] == bytes([fill]) * fill:
            lucky = candidate
            break
    assert lucky is not None
    with pytest.raises(DecryptionError, match="does not decrypt into JSON"):
        SecureChannel(lucky).open_body(sealed(text))
    with pytest.raises(DecryptionError, match="padding"):
        SecureChannel("wrong-key-x").open_body(sealed(text))


def test_an_error_body_is_decrypted_when_sealed_and_kept_otherwise() -> None:
    channel = SecureChannel(KEY)
    plain = b'{"message":"Invalid Query String parameters"}'
    assert channel.open_error_body(plain) == plain
    assert channel.open_error_body(sealed(reference_encrypt(KEY, plain))) == plain
    foreign = sealed(reference_encrypt("another-key", plain))
    assert channel.open_error_body(foreign) == foreign
    assert channel.open_error_body(b"<html>502</html>") == b"<html>502</html>"


def test_the_switch_never_shows_its_key() -> None:
    setting = SecureTransmission(secret_key="s3cr3t-project-key")
    assert "s3cr3t" not in repr(setting)
    assert "s3cr3t" not in str(setting)
    assert repr(setting) == "SecureTransmission(mode='ecb', key=secret key)"
    assert repr(SecureTransmission()) == "SecureTransmission(mode='ecb', key=api key)"
    assert "s3cr3t" not in repr(SecureChannel("s3cr3t-project-key"))
    assert setting == SecureTransmission(secret_key="s3cr3t-project-key")
    with pytest.raises(AttributeError):
        setting.mode = "ecb"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("gcm", "not documented"),
        ("GCM", "not documented"),
        ("cbc", "retired by the provider on 2024-08-01"),
        ("ctr", "must be 'ecb'"),
        ("", "must be 'ecb'"),
    ],
)
def test_modes_other_than_ecb_are_refused_at_construction(mode: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SecureTransmission(mode=mode)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=says):
        SecureTransmission(secret_key="s3cr3t", mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret_key", "error", "says"),
    [
        ("", ValueError, "must not be empty"),
        ("   ", ValueError, "must not be empty"),
        ("s3cr3t\n", ValueError, "starts or ends with a space"),
        (b"s3cr3t", TypeError, "must be a str"),
    ],
)
def test_a_bad_secret_key_is_refused_without_being_shown(
    secret_key: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says) as caught:
        SecureTransmission(secret_key=secret_key)  # type: ignore[arg-type]
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("setting", [None, "yes", 1, {"secret_key": "k"}])
def test_the_client_refuses_other_switch_values(setting: object) -> None:
    with pytest.raises(TypeError, match="secure_transmission must be True, False or a Secure"):
        ArgosClient(api_key=KEY, secure_transmission=setting)  # type: ignore[arg-type]


def test_without_cryptography_asking_for_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None in sys.modules makes the import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    with pytest.raises(ImportError, match=r"pip install 'argos-async\[secure\]'"):
        ArgosClient(api_key=KEY, secure_transmission=True)
    with pytest.raises(ImportError, match=r"pip install 'argos-async\[secure\]'"):
        SecureChannel(KEY)
    # The switch itself, and a client without it, need nothing (no session is opened here).
    assert SecureTransmission(secret_key="k").mode == "ecb"
    assert ArgosClient(api_key=KEY)._shared.secure is None


def test_logs_and_instrumented_urls_never_carry_the_ciphertext() -> None:
    data = SecureChannel(KEY).seal_params({"email": "ana@example.com"})["data"]
    assert masked_params({"data": data}) == {"data": "***"}
    url = URL("https://rest-api.argosidentity.com/v3/submission").with_query(data=data)
    assert data not in str(masked_url(url))
    assert masked_url(url).query["data"] == "***"
