"""The identification session and its states.

A session is created by a behandelaar (or an API client), opened by the citizen through the link,
authenticated with DigiD, and then completed (or it fails, or expires). Expiry is computed from
``expires_at``: a purge deletes expired rows, but an expired row is never usable before that.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .assurance import AssuranceLevel
from .bsn import Bsn
from .errors import InvalidTransition, SessionAlreadyUsed, SessionExpired


class Flow(StrEnum):
    NEW_CITIZEN = "new-citizen"  # §2.1
    KNOWN_CITIZEN = "known-citizen"  # §2.2
    MUTUAL = "mutual"  # §2.3


class SessionState(StrEnum):
    CREATED = "created"  # link made, not yet opened
    OPENED = "opened"  # citizen opened the link (a DigiD cancel returns here)
    AUTHENTICATED = "authenticated"  # DigiD login accepted
    COMPLETED = "completed"  # behandelaar finished: the BSN is erased, a tombstone stays until expiry
    FAILED = "failed"  # DigiD error: the session is over, a new link is needed (see ``reason``)
    WITHDRAWN = "withdrawn"  # behandelaar or API client withdrew the link ("Link intrekken"); it is dead


class SessionReason(StrEnum):
    """Why a session is where it is, for the texts staff and citizen read; None when nothing went wrong."""

    CANCELLED = "cancelled"  # the citizen pressed Annuleren at DigiD (state stays OPENED: the link still works)
    LEVEL_TOO_LOW = "level-too-low"  # DigiD login below the flow's minimum level (state FAILED)
    DIGID_ERROR = "digid-error"  # any other DigiD / SAML failure (state FAILED)
    EXPIRED_DURING_LOGIN = "expired-during-login"  # the link expired while the citizen was at DigiD (FAILED)


class RegistrationState(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # §2.2 codes differ: nothing is recorded in the zaaksysteem (no proof exists)


def new_session_id() -> str:
    """An unguessable id of 192 bits, URL-safe; the only thing a citizen link carries."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class IdentificationSession:
    id: str
    flow: Flow
    state: SessionState
    created_at: datetime
    expires_at: datetime
    owner_id: str
    owner_name: str
    gemeente: str
    min_level: AssuranceLevel
    purpose: str = ""
    expected_code: str | None = None  # §2.2: derived from the behandelaar's BSN (the BSN is not kept)
    citizen_code: str | None = None
    code_match: bool | None = None
    bsn: Bsn | None = field(default=None, repr=False)  # §2.3 only; stored encrypted
    level: AssuranceLevel | None = None
    opened_at: datetime | None = None
    authenticated_at: datetime | None = None
    register: bool = False  # make a proof PDF and register it in the zaaksysteem
    zaak_identificatie: str | None = None  # existing zaak to attach to, or the zaak created
    zaak_url: str | None = None
    registration_state: RegistrationState | None = None
    registration_error: str | None = None
    reason: SessionReason | None = None
    ended_at: datetime | None = None  # when it failed, was withdrawn or completed
    # The API client that started the session ("api:<id>"), None for the staff pages. owner_id/owner_name are
    # then the behandelaar the client acts for (a trusted client), or the client itself.
    client_id: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def ensure_usable_link(self, now: datetime) -> None:
        """The citizen link works while the session is created/opened and not expired (R14)."""
        if self.is_expired(now):
            raise SessionExpired()
        if self.state not in (SessionState.CREATED, SessionState.OPENED):
            raise SessionAlreadyUsed(self.state.value, self.reason.value if self.reason else None)

    def opened(self, now: datetime) -> IdentificationSession:
        self.ensure_usable_link(now)
        if self.state is SessionState.OPENED:
            return self
        return replace(self, state=SessionState.OPENED, opened_at=now)

    def authenticated(self, now: datetime, *, level: AssuranceLevel, **changes: object) -> IdentificationSession:
        self.ensure_usable_link(now)
        return replace(
            self,
            state=SessionState.AUTHENTICATED,
            authenticated_at=now,
            level=level,
            reason=None,
            **changes,  # type: ignore[arg-type]
        )

    def failed(
        self, reason: SessionReason = SessionReason.DIGID_ERROR, now: datetime | None = None
    ) -> IdentificationSession:
        if self.state in (SessionState.COMPLETED, SessionState.WITHDRAWN):
            raise InvalidTransition(f"a {self.state.value} session cannot fail")
        return replace(self, state=SessionState.FAILED, bsn=None, reason=reason, ended_at=now or self.ended_at)

    def cancelled(self) -> IdentificationSession:
        """The citizen cancelled at DigiD: the link stays usable, staff sees why nothing happened yet."""
        if self.state not in (SessionState.CREATED, SessionState.OPENED):
            raise InvalidTransition(f"a {self.state.value} session cannot be cancelled")
        return replace(self, state=SessionState.OPENED, reason=SessionReason.CANCELLED)

    def withdrawn(self, now: datetime) -> IdentificationSession:
        """The link dies at once; nothing personal is kept. Only before a successful login (or after a failure)."""
        if self.state not in (SessionState.CREATED, SessionState.OPENED, SessionState.FAILED):
            raise InvalidTransition(f"a {self.state.value} session cannot be withdrawn")
        return replace(self, state=SessionState.WITHDRAWN, bsn=None, ended_at=now)

    def completed(self, now: datetime | None = None) -> IdentificationSession:
        """Every flow: the BSN is erased at once; a tombstone without personal data stays until expiry."""
        if self.state is SessionState.COMPLETED:
            return self
        if self.state is not SessionState.AUTHENTICATED:
            raise InvalidTransition("only an authenticated session can be completed")
        return replace(self, state=SessionState.COMPLETED, bsn=None, ended_at=now or self.ended_at)

    def with_registration(
        self,
        state: RegistrationState,
        *,
        zaak_identificatie: str | None = None,
        zaak_url: str | None = None,
        error: str | None = None,
    ) -> IdentificationSession:
        return replace(
            self,
            registration_state=state,
            zaak_identificatie=zaak_identificatie or self.zaak_identificatie,
            zaak_url=zaak_url or self.zaak_url,
            registration_error=error,
        )


def expiry(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)
