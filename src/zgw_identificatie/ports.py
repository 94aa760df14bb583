"""The seams of the service, named by role. Adapters implement them; ``testing.py`` has recording fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from .domain.assurance import AssuranceLevel
from .domain.audit import AuditEvent
from .domain.bsn import Bsn
from .domain.confirmation import CodeConfirmation
from .domain.events import Delivery, SessionEvent
from .domain.identity import DigidIdentity
from .domain.proof import ProofData
from .domain.registration import Registration
from .domain.sessions import IdentificationSession


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC datetime."""
        ...


@dataclass(frozen=True)
class LoginRequest:
    """An AuthnRequest ready to send through the browser with the HTTP-POST binding."""

    request_id: str
    url: str  # DigiD's SingleSignOnService location
    form_fields: dict[str, str]  # SAMLRequest and RelayState, for an auto-submitting form


class IdentityProvider(Protocol):
    """DigiD (or its simulator): the citizen's login."""

    def begin_login(self, *, min_level: AssuranceLevel, relay_state: str) -> LoginRequest: ...

    def complete_login(self, *, artifact: str, expected_request_id: str, min_level: AssuranceLevel) -> DigidIdentity:
        """Resolve the artifact and validate everything; raises DigidCancelled or DigidFailed."""
        ...

    def metadata_xml(self) -> str: ...


class OneTimeIds(Protocol):
    def use_once(self, kind: str, value: str, expires_at: datetime) -> bool:
        """True the first time (kind, value) is seen; False on every later call (replay)."""
        ...

    def use_once_each(self, ids: Sequence[tuple[str, str]], expires_at: datetime) -> str | None:
        """``use_once`` of each (kind, value) in turn until one was seen before: that one's kind (the ids after
        it are not recorded), or None when all were new. One round trip where the store can."""
        ...


@dataclass(frozen=True)
class ZaakRef:
    url: str
    identificatie: str
    bronorganisatie: str = ""
    einddatum: date | None = None  # set: the zaak is closed


class ZaakRegistry(Protocol):
    """The municipality's zaaksysteem through the ZGW APIs.

    Writes raise RegistrationFailed on a 4xx (not retried) and RegistryUnavailable on time-outs,
    connection errors and 5xx (retried). ``find_*`` methods let a retry discover a resource whose
    creation succeeded although the answer was lost, so nothing is created twice. ``marker`` is the
    registration id, stored with each resource (zaak kenmerk, document identificatie, …).
    """

    def acting_for(self, user_id: str, user_representation: str) -> AbstractContextManager[None]:
        """Writes and reads in this block are made on behalf of this behandelaar (the zaaksysteem's audit
        trail names them)."""
        ...

    def create_zaak(self, *, marker: str, startdatum: date, omschrijving: str, toelichting: str) -> ZaakRef: ...
    def find_zaak_by_marker(self, *, marker: str, startdatum: date) -> ZaakRef | None: ...
    def find_zaak(self, identificatie: str) -> ZaakRef:
        """An existing zaak by its identificatie; raises ZaakNotFound."""
        ...

    def zaken_with_identificatie(self, identificatie: str) -> Sequence[ZaakRef]:
        """Every zaak with this identificatie, of any bronorganisatie (to tell "unknown" from "not ours")."""
        ...

    def add_citizen_rol(self, *, zaak_url: str, bsn: Bsn, toelichting: str, existing: bool = False) -> str:
        """The citizen as a natuurlijk_persoon rol: the initiator of a new zaak; on an ``existing`` zaak (which
        usually has its initiator already) the roltype of ``zgw.roltype_existing_zaak``."""
        ...

    def find_citizen_rol(self, *, zaak_url: str, bsn: Bsn, existing: bool = False) -> str | None:
        """A rol of this citizen on the zaak: of the initiator roltype, or of any roltype when ``existing``."""
        ...

    def set_first_status(self, *, zaak_url: str, when: datetime, toelichting: str) -> str: ...
    def find_status(self, *, zaak_url: str) -> str | None: ...
    def upload_document(
        self, *, marker: str, titel: str, bestandsnaam: str, inhoud: bytes, creatiedatum: date, beschrijving: str
    ) -> str: ...
    def find_document(self, *, marker: str) -> str | None: ...
    def link_document(self, *, zaak_url: str, document_url: str, titel: str) -> str: ...
    def find_link(self, *, zaak_url: str, document_url: str) -> str | None: ...

    # §2.1 code confirmation (flows/confirmation.py): a status of the statustype with this omschrijving.
    def add_status(self, *, zaak_url: str, statustype_omschrijving: str, when: datetime, toelichting: str) -> str:
        """A status later than every status the zaak has; RegistrationFailed when the zaaktype lacks it."""
        ...

    def find_status_of_type(self, *, zaak_url: str, statustype_omschrijving: str) -> str | None: ...


class ProofRenderer(Protocol):
    def render(self, proof: ProofData) -> bytes:
        """PDF bytes; no I/O."""
        ...


@dataclass(frozen=True)
class LoginFlow:
    """One DigiD login started by one browser (bound by a cookie holding ``id``), single use (R12)."""

    id: str
    session_id: str
    request_id: str
    relay_state: str
    created_at: datetime
    expires_at: datetime


class SessionStore(OneTimeIds, Protocol):
    def add(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        """The new session with its 'created' outbox event, and ``audit`` when given: all or nothing."""
        ...

    def get(self, session_id: str) -> IdentificationSession | None: ...
    def update(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        """The new version, with the outbox event its change means and ``audit`` when given: all or nothing."""
        ...

    def delete(self, session_id: str) -> bool:
        """Hard delete of the session and everything keyed to it; True when a row was removed."""
        ...

    def list_for_owner(self, owner_id: str, *, limit: int = 50) -> Sequence[IdentificationSession]: ...
    def list_sessions(
        self,
        *,
        client_id: str | None = None,
        owner_id: str | None = None,
        state: str | None = None,
        flow: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[IdentificationSession]:
        """Newest first, filtered; ``before`` is the (created_at, id) cursor of the previous page's last session."""
        ...

    def claim_idempotency_key(
        self, client_id: str, key: str, fingerprint: str, *, now: datetime, expires_at: datetime
    ) -> tuple[str, str | None] | None:
        """None when the caller now holds the key; else (fingerprint, session id or None) of its first use."""
        ...

    def settle_idempotency_key(self, client_id: str, key: str, session_id: str | None, expires_at: datetime) -> None:
        """The session made under a held key; None releases the key (the create failed)."""
        ...

    def list_events(self, *, session_id: str | None = None) -> Sequence[SessionEvent]:
        """The outbox: every change of a session's state, reason or registration, in order."""
        ...

    def add_login_flow(self, flow: LoginFlow, *, audit: AuditEvent | None = None) -> None:
        """The flow, and ``audit`` when given: all or nothing."""
        ...

    def take_login_flow(self, flow_id: str, now: datetime) -> LoginFlow | None:
        """Atomically consume an unexpired login flow; None when unknown, used or expired."""
        ...

    def take_login_flow_with_session(
        self, flow_id: str, now: datetime
    ) -> tuple[LoginFlow, IdentificationSession | None] | None:
        """``take_login_flow``, with the session the flow is for (None when it is gone): one round trip where
        the store can."""
        ...

    def add_registration(self, registration: Registration) -> None: ...
    def get_registration(self, registration_id: str) -> Registration | None: ...
    def registration_for_session(self, session_id: str) -> Registration | None: ...
    def update_registration(self, registration: Registration) -> None: ...
    def claim_due_registrations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Registration]:
        """Registrations due for an attempt, leased to the caller so two workers never run the same one."""
        ...

    def failed_registrations(self, *, limit: int = 100) -> Sequence[Registration]:
        """Failed registrations, most recently failed first (the operator's list to resume)."""
        ...

    def reopen_registration(self, registration_id: str, now: datetime) -> Registration | None:
        """Atomically make a failed registration that still holds its proof due now (pending, attempts 0,
        error cleared, URLs kept); None when it is not failed (any more) or its proof was erased."""
        ...

    # §2.1 code confirmations (one per session; add returns the stored one when it already exists)
    def add_confirmation(self, confirmation: CodeConfirmation) -> CodeConfirmation: ...
    def confirmation_for_session(self, session_id: str) -> CodeConfirmation | None: ...
    def update_confirmation(self, confirmation: CodeConfirmation) -> None: ...
    def claim_due_confirmations(
        self, now: datetime, *, lease_seconds: int, limit: int
    ) -> Sequence[CodeConfirmation]: ...

    def add_audit(self, event: AuditEvent) -> None: ...
    def list_audit(self, *, session_id: str | None = None, limit: int = 100) -> Sequence[AuditEvent]: ...

    def purge(self, now: datetime) -> dict[str, int]:
        """Delete expired sessions, login flows and one-time ids; counts per kind."""
        ...


class EventOutbox(Protocol):
    """The outbox side of the store: events become deliveries per channel, claimed in order per session."""

    def fan_out_events(
        self, channels: Callable[[SessionEvent], Sequence[str]], now: datetime, *, limit: int
    ) -> int: ...
    def claim_due_deliveries(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Delivery]: ...
    def finish_delivery(
        self, delivery_id: int, *, now: datetime, ok: bool, error: str | None = None, retry_at: datetime | None = None
    ) -> None: ...
    def defer_deliveries(self, delivery_ids: Sequence[int], *, until: datetime) -> None: ...
