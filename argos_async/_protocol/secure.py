"""Secure transmission, the provider's encrypted mode: the cipher and its wire form, no I/O.

What the provider documents: with secure transmission switched on for a project, requests and
answers are encrypted with AES-256 under ``sha256(key).digest()``, the key being the project's
API key or, if the project set one, a dedicated secret key; the mode is ECB since 2024-08-01
(before: CBC with an IV); a request sends its whole parameter object, encrypted, as the one
query parameter ``data``; an answer returns "the result in the ``data`` property".

What is inferred here, not documented: PKCS#7 padding and standard base64 (with ``=``), the
usual pairing with the Node.js crypto calls of the provider's example; the parameter object as
compact UTF-8 JSON with string values, as the query string would carry them; an answer's body
as ``{"data": "<base64>"}``; error answers (not 200) in plain JSON, as the gateway sends them.
GCM also appears in the dashboard, but its wire format (nonce, tag, their encoding) is not
documented, so it is refused rather than guessed.

``cryptography`` (the extra ``secure``) is imported only when a channel is made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from ..errors import DecryptionError, ResponseDecodeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = ["SECURE_PARAM", "SecureChannel", "SecureTransmission", "open_channel"]

SECURE_PARAM: Final = "data"
"""The one query parameter of an encrypted request, and the key of an encrypted body."""

_BLOCK: Final = 16  # AES's block size in bytes
_INSTALL: Final = (
    "secure transmission needs the 'cryptography' package: pip install 'argos-async[secure]' "
    "(in a clone: pip install -e '.[secure]')"
)

SecureMode = Literal["ecb"]
"""The modes the client speaks: only the provider's current one."""


class SecureTransmission:
    """How a project's secure transmission is keyed: ``ArgosClient(secure_transmission=...)``.

    ``SecureTransmission()`` keys it with the client's API key (what ``True`` means);
    ``SecureTransmission(secret_key="...")`` with the dedicated secret key a project can set
    in its dashboard instead. ``mode`` is ``"ecb"``, the provider's method since 2024-08-01:
    AES-256-ECB under ``sha256(key).digest()``, with PKCS#7 padding and base64 text (those two
    are inferred, not documented). ``"gcm"`` is refused until the provider documents its
    format, and ``"cbc"`` was retired on 2024-08-01.

    Immutable, compared by value. A plain class on purpose, not a Struct or a dataclass: no
    ``repr``, pretty-printer or encoder can show or serialise the key.
    """

    __slots__ = ("_mode", "_secret_key")

    def __init__(self, secret_key: str | None = None, mode: SecureMode = "ecb") -> None:
        if secret_key is not None:
            if not isinstance(secret_key, str):
                raise TypeError(f"secret_key must be a str, got {type(secret_key).__name__}")
            if not secret_key.strip():
                raise ValueError("secret_key must not be empty")
            if secret_key != secret_key.strip():
                # Most often a newline read from a file with the key.
                raise ValueError("secret_key starts or ends with a space")
        _check_mode(mode)
        self._secret_key = secret_key
        self._mode: SecureMode = mode

    @property
    def secret_key(self) -> str | None:
        """The project's dedicated secret key, or ``None`` to use the API key."""
        return self._secret_key

    @property
    def mode(self) -> SecureMode:
        """The cipher mode; only ``"ecb"``."""
        return self._mode

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecureTransmission):
            return NotImplemented
        return (self._secret_key, self._mode) == (other._secret_key, other._mode)

    def __hash__(self) -> int:
        return hash((SecureTransmission, self._secret_key, self._mode))

    def __repr__(self) -> str:
        source = "api key" if self._secret_key is None else "secret key"
        return f"SecureTransmission(mode={self._mode!r}, key={source})"


def _check_mode(mode: object) -> None:
    if mode == "ecb":
        return
    name = mode.lower() if isinstance(mode, str) else mode
    if name == "gcm":
        raise ValueError(
            "secure transmission mode 'gcm' is not supported: the provider has not documented "
            "its format (nonce, tag, encoding) yet; use mode='ecb', its current method"
        )
    if name == "cbc":
        raise ValueError(
            "secure transmission mode 'cbc' was retired by the provider on 2024-08-01 (it "
            "needed an IV); use mode='ecb', its current method"
        )
    raise ValueError(f"secure transmission mode must be 'ecb', got {mode!r}")


def open_channel(setting: object, api_key: str) -> SecureChannel | None:
    """The channel ``secure_transmission=`` asks for (``False``: none; ``True``: keyed by
    ``api_key``; a ``SecureTransmission``: as it says)."""
    if setting is False:
        return None
    if setting is True:
        setting = SecureTransmission()
    if not isinstance(setting, SecureTransmission):
        raise TypeError(
            "secure_transmission must be True, False or a SecureTransmission, "
            f"got {type(setting).__name__}"
        )
    key_text = api_key if setting.secret_key is None else setting.secret_key
    return SecureChannel(key_text)


class _Sealed(msgspec.Struct):
    data: str


_sealed_decoder: Final = msgspec.json.Decoder(_Sealed)


def sealed_data(body: bytes) -> str:
    """The ``data`` text of a sealed body, ``{"data": "<base64>"}``, in one msgspec call:
    ``msgspec.ValidationError`` when it has no ``data`` string (it is not sealed),
    ``msgspec.DecodeError`` when it is not JSON."""
    return _sealed_decoder.decode(body).data


_document_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[msgspec.Raw])


class SecureChannel:
    """One key's cipher: parameters into a request's ``data``, a sealed body into its JSON."""

    __slots__ = ("_cipher",)

    def __init__(self, key_text: str) -> None:
        # Only the derived key is kept, inside the cipher object: never the key text.
        self._cipher = _aes_ecb(hashlib.sha256(key_text.encode()).digest())

    def __repr__(self) -> str:
        return "SecureChannel(mode='ecb')"

    def encrypt(self, plaintext: bytes) -> str:
        """``plaintext`` padded (PKCS#7), encrypted, as base64 text."""
        fill = _BLOCK - len(plaintext) % _BLOCK
        encryptor = self._cipher.encryptor()
        sealed = encryptor.update(plaintext + bytes([fill]) * fill) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def decrypt(self, text: str) -> bytes:
        """The plaintext of :meth:`encrypt`'s base64 text; ``DecryptionError`` for text that
        is not base64, not whole blocks, or not correctly padded once decrypted."""
        try:
            sealed = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError(
                "the encrypted data of the response is not base64 text (a damaged body)"
            ) from None
        if not sealed or len(sealed) % _BLOCK:
            raise DecryptionError(
                f"the encrypted data of the response is {len(sealed)} bytes, not a whole "
                "number of AES blocks (a damaged body)"
            )
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(sealed) + decryptor.finalize()
        fill = padded[-1]
        if not 1 <= fill <= _BLOCK or padded[-fill:] != bytes([fill]) * fill:
            raise _wrong_key("its padding is not valid once decrypted")
        return padded[:-fill]

    def seal_params(self, params: Mapping[str, str]) -> dict[str, str]:
        """A request's query parameters as secure transmission sends them: one ``data``,
        the whole parameter object as JSON, encrypted."""
        return {SECURE_PARAM: self.encrypt(msgspec.json.encode(dict(params)))}

    def open_body(self, body: bytes) -> bytes:
        """The plaintext JSON of a 200 answer's ``{"data": "<base64>"}``.

        A body that is not JSON at all was most likely cut off in transit: a
        ``ResponseDecodeError`` that is retried, as for a plain body. Everything else that
        fails is a ``DecryptionError``, never retried: no ``data`` string (the project does
        not encrypt), bad base64 or length, bad padding, or a plaintext that is not UTF-8 JSON
        of an object or an array (a wrong key that happened to leave valid padding, one time
        in about 256, ends here rather than handing on garbage).
        """
        try:
            data = sealed_data(body)
        except msgspec.ValidationError:
            raise DecryptionError(
                'the response is not encrypted (its body has no "data" string): is secure '
                "transmission switched on for this project?"
            ) from None
        except (msgspec.DecodeError, RecursionError):
            raise ResponseDecodeError(
                f"encrypted response body is not valid JSON ({len(body)} bytes; cut off?)",
                incomplete=True,
            ) from None
        plaintext = self.decrypt(data)
        try:
            plaintext.decode("utf-8")
            _document_decoder.decode(plaintext)
        except (UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            raise _wrong_key("it does not decrypt into JSON") from None
        return plaintext

    def open_error_body(self, body: bytes) -> bytes:
        """An error answer's body, decrypted if it came as ``{"data": ...}`` and decrypts;
        else as it is (the status says what failed; a body that does not decrypt must not
        hide it)."""
        try:
            return self.open_body(body)
        except ResponseDecodeError:
            return body


def _aes_ecb(key: bytes) -> Cipher[modes.ECB]:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise ImportError(_INSTALL) from None
    return Cipher(algorithms.AES(key), modes.ECB())


def _wrong_key(what: str) -> DecryptionError:
    return DecryptionError(
        f"the encrypted data of the response does not decrypt with this key ({what}): the "
        "key must be the project's (its API key, or the secret key set in its dashboard), "
        "or the body was damaged"
    )
