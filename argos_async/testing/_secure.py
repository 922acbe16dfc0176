"""Secure transmission as the emulator speaks it: an encrypted request's `data` opened into its
parameters, a 200 body sealed into `{"data": "<base64>"}`, and a webhook body sealed the same way.

Its own reading of the provider's words, sharing nothing with the client: AES-256-ECB under
`sha256(key text).digest()` (the API key, or the project's secret key), PKCS#7 padding and
standard base64 (both inferred: the usual pairing with the provider's Node.js example), the
whole parameter object as JSON in the one query parameter `data`. Error answers stay plain
JSON, as the gateway sends them (another inference).

`cryptography` is imported when an emulator switches secure transmission on, not before: the
emulator runs without it otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Final

__all__ = ["SECURE_PARAM", "SecureWire"]

SECURE_PARAM: Final = "data"
"""The one query parameter of an encrypted request, and the key of a sealed body."""


class SecureWire:
    """One key's secure transmission, on the emulator's side."""

    def __init__(self, key_text: str) -> None:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key = hashlib.sha256(key_text.encode("utf-8")).digest()
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._padding = padding.PKCS7(algorithms.AES.block_size)

    def __repr__(self) -> str:
        return "SecureWire(aes-256-ecb)"

    def open_query(self, query: Mapping[str, str]) -> dict[str, str]:
        """The parameters an encrypted request carries; ValueError for a request that sends
        anything but one `data` that decrypts into a JSON object of strings (numbers are read
        as their text, as a query string would carry them)."""
        if set(query) != {SECURE_PARAM}:
            raise ValueError("an encrypted request carries only the data parameter")
        try:
            sealed = base64.b64decode(query[SECURE_PARAM], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data is not base64") from None
        decryptor = self._cipher.decryptor()
        unpadder = self._padding.unpadder()
        try:
            padded = decryptor.update(sealed) + decryptor.finalize()
            plaintext = unpadder.update(padded) + unpadder.finalize()
            document = json.loads(plaintext.decode("utf-8"))
        except ValueError:  # a partial block, bad padding, not UTF-8, not JSON
            raise ValueError("data does not decrypt into JSON with this key") from None
        if not isinstance(document, dict):
            raise ValueError("data is not a JSON object")
        params: dict[str, str] = {}
        for name, value in document.items():
            if isinstance(value, str):
                params[name] = value
            elif isinstance(value, int) and not isinstance(value, bool):
                params[name] = str(value)
            else:
                raise ValueError(f"data's {name} is not a string")
        return params

    def encrypt(self, plaintext: bytes) -> str:
        """`plaintext` padded, encrypted and as base64 text."""
        padder = self._padding.padder()
        encryptor = self._cipher.encryptor()
        padded = padder.update(plaintext) + padder.finalize()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def seal(self, body: bytes) -> bytes:
        """`body` (JSON) as a secure answer or webhook carries it: `{"data": "<base64>"}`."""
        return json.dumps({SECURE_PARAM: self.encrypt(body)}).encode("ascii")
