"""An in-memory SessionStore with the same semantics as the SQL one, for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ..domain.audit import AuditEvent
from ..domain.confirmation import CodeConfirmation, ConfirmationState
from ..domain.events import SessionEvent, event_values
from ..domain.registration import Registration
from ..domain.sessions import IdentificationSession, RegistrationState
from ..ports import LoginFlow


class InMemorySessionStore:
    def __init__(self) -> None:
        self.sessions: dict[str, IdentificationSession] = {}
        self.flows: dict[str, tuple[LoginFlow, bool]] = {}
        self.once: dict[tuple[str, str], datetime] = {}
        self.registrations: dict[str, Registration] = {}
        self.history: list[Registration] = []  # every stored version of every registration, in order
        self.leases: dict[str, datetime] = {}
        self.audit: list[AuditEvent] = []
        self.events: list[SessionEvent] = []
        self.idempotency: dict[tuple[str, str], tuple[str, str | None, datetime]] = {}
        self.confirmations: dict[str, CodeConfirmation] = {}  # by session id
        self.confirmation_leases: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def _record_event(self, old: IdentificationSession | None, new: IdentificationSession) -> None:
        values = event_values(old, new)
        if values is not None:
            self.events.append(
                SessionEvent(id=len(self.events) + 1, created_at=datetime.now(UTC), **values)  # type: ignore[arg-type]
            )

    def list_events(self, *, session_id: str | None = None) -> Sequence[SessionEvent]:
        return [e for e in self.events if session_id is None or e.session_id == session_id]

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
        found = [
            s
            for s in self.sessions.values()
            if (client_id is None or s.client_id == client_id)
            and (owner_id is None or s.owner_id == owner_id)
            and (state is None or s.state.value == state)
            and (flow is None or s.flow.value == flow)
            and (created_after is None or s.created_at >= created_after)
            and (created_before is None or s.created_at < created_before)
            and (before is None or (s.created_at, s.id) < before)
        ]
        return sorted(found, key=lambda s: (s.created_at, s.id), reverse=True)[:limit]

    def claim_idempotency_key(
        self, client_id: str, key: str, fingerprint: str, *, now: datetime, expires_at: datetime
    ) -> tuple[str, str | None] | None:
        with self._lock:
            held = self.idempotency.get((client_id, key))
            if held is not None and held[2] > now:
                return held[0], held[1]
            self.idempotency[(client_id, key)] = (fingerprint, None, expires_at)
            return None

    def settle_idempotency_key(self, client_id: str, key: str, session_id: str | None, expires_at: datetime) -> None:
        with self._lock:
            if session_id is None:
                self.idempotency.pop((client_id, key), None)
            elif (client_id, key) in self.idempotency:
                self.idempotency[(client_id, key)] = (self.idempotency[(client_id, key)][0], session_id, expires_at)

    def add(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        self.sessions[session.id] = session
        self._record_event(None, session)
        if audit is not None:
            self.audit.append(audit)

    def get(self, session_id: str) -> IdentificationSession | None:
        return self.sessions.get(session_id)

    def update(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        if session.id in self.sessions:
            self._record_event(self.sessions[session.id], session)
            self.sessions[session.id] = session
        if audit is not None:
            self.audit.append(audit)

    def delete(self, session_id: str) -> bool:
        self.flows = {k: v for k, v in self.flows.items() if v[0].session_id != session_id}
        return self.sessions.pop(session_id, None) is not None

    def list_for_owner(self, owner_id: str, *, limit: int = 50) -> Sequence[IdentificationSession]:
        own = [s for s in self.sessions.values() if s.owner_id == owner_id]
        return sorted(own, key=lambda s: s.created_at, reverse=True)[:limit]

    def add_login_flow(self, flow: LoginFlow, *, audit: AuditEvent | None = None) -> None:
        self.flows[flow.id] = (flow, False)
        if audit is not None:
            self.audit.append(audit)

    def take_login_flow(self, flow_id: str, now: datetime) -> LoginFlow | None:
        with self._lock:
            entry = self.flows.get(flow_id)
            if entry is None or entry[1] or entry[0].expires_at <= now:
                return None
            self.flows[flow_id] = (entry[0], True)
            return entry[0]

    def take_login_flow_with_session(
        self, flow_id: str, now: datetime
    ) -> tuple[LoginFlow, IdentificationSession | None] | None:
        flow = self.take_login_flow(flow_id, now)
        return None if flow is None else (flow, self.sessions.get(flow.session_id))

    def use_once(self, kind: str, value: str, expires_at: datetime) -> bool:
        with self._lock:
            if (kind, value) in self.once:
                return False
            self.once[(kind, value)] = expires_at
            return True

    def use_once_each(self, ids: Sequence[tuple[str, str]], expires_at: datetime) -> str | None:
        """``use_once`` of each in turn until one was seen before (the port's rule)."""
        return next((kind for kind, value in ids if not self.use_once(kind, value, expires_at)), None)

    def add_registration(self, registration: Registration) -> None:
        self.registrations[registration.id] = registration
        self.history.append(registration)

    def get_registration(self, registration_id: str) -> Registration | None:
        return self.registrations.get(registration_id)

    def registration_for_session(self, session_id: str) -> Registration | None:
        regs = [r for r in self.registrations.values() if r.session_id == session_id]
        return max(regs, key=lambda r: r.created_at) if regs else None

    def update_registration(self, registration: Registration) -> None:
        if registration.state is RegistrationState.DONE:
            registration = replace(registration, proof=None)
        if registration.finished or registration.next_attempt_at > registration.updated_at:
            self.leases.pop(registration.id, None)  # as the SQL store: a scheduled retry is claimable when due
        self.registrations[registration.id] = registration
        self.history.append(registration)

    def claim_due_registrations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Registration]:
        with self._lock:
            due = [
                r
                for r in self.registrations.values()
                if r.state in (RegistrationState.PENDING, RegistrationState.RETRYING)
                and r.next_attempt_at <= now
                and self.leases.get(r.id, now - timedelta(1)) < now
            ]
            due = sorted(due, key=lambda r: r.next_attempt_at)[:limit]
            for r in due:
                self.leases[r.id] = now + timedelta(seconds=lease_seconds)
            return due

    def failed_registrations(self, *, limit: int = 100) -> Sequence[Registration]:
        failed = [r for r in self.registrations.values() if r.state is RegistrationState.FAILED]
        return sorted(failed, key=lambda r: r.updated_at, reverse=True)[:limit]

    def reopen_registration(self, registration_id: str, now: datetime) -> Registration | None:
        with self._lock:
            reg = self.registrations.get(registration_id)
            if reg is None or reg.state is not RegistrationState.FAILED or reg.proof is None:
                return None
            reopened = replace(
                reg,
                state=RegistrationState.PENDING,
                attempts=0,
                next_attempt_at=now,
                updated_at=now,
                error=None,
                invalid_params=(),
            )
            self.leases.pop(registration_id, None)
            self.registrations[registration_id] = reopened
            self.history.append(reopened)
            return reopened

    def add_confirmation(self, confirmation: CodeConfirmation) -> CodeConfirmation:
        with self._lock:
            return self.confirmations.setdefault(confirmation.session_id, confirmation)

    def confirmation_for_session(self, session_id: str) -> CodeConfirmation | None:
        return self.confirmations.get(session_id)

    def update_confirmation(self, confirmation: CodeConfirmation) -> None:
        self.confirmation_leases.pop(confirmation.id, None)
        self.confirmations[confirmation.session_id] = confirmation

    def claim_due_confirmations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[CodeConfirmation]:
        with self._lock:
            due = [
                c
                for c in self.confirmations.values()
                if c.state is ConfirmationState.PENDING
                and c.next_attempt_at <= now
                and self.confirmation_leases.get(c.id, now - timedelta(1)) < now
            ]
            due = sorted(due, key=lambda c: c.next_attempt_at)[:limit]
            for c in due:
                self.confirmation_leases[c.id] = now + timedelta(seconds=lease_seconds)
            return due

    def add_audit(self, event: AuditEvent) -> None:
        self.audit.append(event)

    def list_audit(self, *, session_id: str | None = None, limit: int = 100) -> Sequence[AuditEvent]:
        events = [e for e in reversed(self.audit) if session_id is None or e.session_id == session_id]
        return events[:limit]

    def purge(self, now: datetime) -> dict[str, int]:
        expired = [k for k, s in self.sessions.items() if s.expires_at <= now]
        for k in expired:
            self.delete(k)
        stale = [key for key, until in self.once.items() if until <= now]
        for key in stale:
            del self.once[key]
        return {"sessions": len(expired), "one_time_ids": len(stale)}
