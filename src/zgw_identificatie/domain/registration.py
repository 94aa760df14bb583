"""A registration: the persisted, resumable sequence that records one proof in the zaaksysteem.

Steps, each stored before the next starts: zaak (or an existing one found) → rol → status →
document → link. A retry resumes at the first step without a stored URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .proof import ProofData
from .sessions import RegistrationState

MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class Registration:
    id: str
    session_id: str
    proof: ProofData | None = field(repr=False)  # holds the BSN: encrypted at rest, erased when done
    existing_zaak: str | None  # identificatie of a zaak to attach to; None → create a new zaak
    state: RegistrationState
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    zaak_url: str | None = None
    zaak_identificatie: str | None = None
    rol_url: str | None = None
    status_url: str | None = None
    document_url: str | None = None
    link_url: str | None = None
    uncertain_step: str | None = None  # a write whose outcome is unknown (time-out): look before retrying
    error: str | None = None
    invalid_params: tuple[tuple[str, str, str], ...] = ()  # (name, code, reason)
    # The behandelaar who started the session: sent as the ZGW JWT's user_id / user_representation, so the
    # zaaksysteem's audit trail names who identified whom (kept after the session is erased).
    user_id: str | None = None
    user_representation: str | None = None
    request_id: str | None = None  # X-Request-Id of the request that started it: the worker logs under it

    @property
    def finished(self) -> bool:
        return self.state in (RegistrationState.DONE, RegistrationState.FAILED)

    def retry_later(self, now: datetime, error: str, *, uncertain_step: str | None) -> Registration:
        """Exponential backoff: 2, 4, 8 … seconds, at most ``MAX_BACKOFF``."""
        attempts = self.attempts + 1
        delay = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
        return replace(
            self,
            state=RegistrationState.RETRYING,
            attempts=attempts,
            next_attempt_at=now + delay,
            updated_at=now,
            error=error,
            uncertain_step=uncertain_step,
        )
