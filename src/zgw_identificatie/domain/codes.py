"""Controlecodes.

* New citizen (§2.1): a random six-digit code from ``secrets``.
* Known citizen (§2.2): HMAC-SHA256 under a secret key over versioned, length-prefixed fields
  (gemeentecode, session id, BSN), truncated to six digits with HOTP's dynamic truncation
  (RFC 4226 §5.3). Equal codes mean the same BSN; the link carries only the session id.
* Codes are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .bsn import Bsn

CODE_DIGITS = 6
_VERSION = b"zgwid-controlecode-v1"


def random_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _length_prefixed(*fields: str) -> bytes:
    out = bytearray()
    for f in fields:
        raw = f.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def hotp_truncate(digest: bytes, digits: int = CODE_DIGITS) -> str:
    """RFC 4226 §5.3 dynamic truncation of an HMAC value to ``digits`` decimal digits."""
    offset = digest[-1] & 0x0F
    binary = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{binary % 10**digits:0{digits}d}"


def derive_code(key: bytes, *, gemeentecode: str, session_id: str, bsn: Bsn) -> str:
    if not key:
        raise ValueError("the code key must not be empty")
    message = _VERSION + _length_prefixed(gemeentecode, session_id, bsn.value)
    return hotp_truncate(hmac.new(key, message, hashlib.sha256).digest())


def codes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def group(code: str) -> str:
    """``358974`` → ``358 974`` for display."""
    return f"{code[:3]} {code[3:]}" if len(code) == CODE_DIGITS else code
