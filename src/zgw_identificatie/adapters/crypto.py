"""Encryption of personal data at rest (Fernet: AES-128-CBC + HMAC-SHA256) with key rotation.

``encryption_keys`` lists Fernet keys newest first: data is encrypted with the first and decrypted
with any (MultiFernet), so a new key is added in front and ``zgw-identificatie rotate-keys``
re-encrypts what is stored.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DataCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self.keys = list(keys)
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except (ValueError, TypeError):
            raise ValueError(
                "ZGWID_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(make one with 'zgw-identificatie generate-key')"
            ) from None

    @classmethod
    def for_development(cls, secret: str) -> DataCipher:
        """A key derived from the (development) secret key; refused in production by Settings.validate."""
        digest = hashlib.sha256(b"zgwid-dev-encryption:" + secret.encode()).digest()
        return cls([base64.urlsafe_b64encode(digest).decode()])

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise ValueError("stored data cannot be decrypted with the configured keys") from None

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(token)


def generate_key() -> str:
    return Fernet.generate_key().decode()
