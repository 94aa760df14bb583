"""Audit events: who did what, when, with what outcome. Never a BSN; a keyed hash at most."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from .bsn import Bsn


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str  # behandelaar id, api client, "citizen" or "system"
    flow: str
    session_id: str
    event: str  # e.g. session-created, digid-login, code-match, completed, erased
    outcome: str  # ok, mismatch, cancelled, failed, expired
    bsn_hash: str | None = None


def bsn_hash(key: bytes, bsn: Bsn) -> str:
    """Keyed hash so a later audit can confirm a given person without the service storing who it was."""
    return hmac.new(key, b"zgwid-audit-v1:" + bsn.value.encode(), hashlib.sha256).hexdigest()
