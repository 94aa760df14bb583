"""§2.3 Mutual assurance: the citizen sees who asked them to log in; the behandelaar gets the BSN.

A short-lived record holds the session id and the behandelaar's name. After the DigiD login the
BSN (encrypted) and the level are written to the record and shown to the behandelaar. "Voltooien"
erases everything personal at once: the BSN is deleted from the record, which stays as a tombstone
(state ``completed``, no personal data) until it expires; the audit event keeps a keyed BSN hash.
"""

from __future__ import annotations

from ..domain.assurance import AssuranceLevel
from ..domain.audit import bsn_hash
from ..domain.identity import DigidIdentity
from ..domain.sessions import Flow, IdentificationSession, SessionState
from ..ports import Clock, SessionStore
from ..settings import Settings
from . import common


def start(
    *,
    owner_id: str,
    owner_name: str,
    client_id: str | None = None,
    store: SessionStore,
    clock: Clock,
    settings: Settings,
    min_level: AssuranceLevel | None = None,
    register: bool = False,
    zaak_identificatie: str | None = None,
) -> IdentificationSession:
    session = common.new_session(
        Flow.MUTUAL,
        owner_id=owner_id,
        owner_name=owner_name,
        client_id=client_id,
        clock=clock,
        settings=settings,
        min_level=min_level,
        register=register,
        zaak_identificatie=zaak_identificatie or None,
    )
    return common.create(session, store=store, clock=clock)


def citizen_authenticated(
    session: IdentificationSession, identity: DigidIdentity, *, store: SessionStore, clock: Clock, settings: Settings
) -> IdentificationSession:
    return common.accept_login(session, identity, store=store, clock=clock, settings=settings, bsn=identity.bsn)


def complete(session_id: str, *, owner_id: str, store: SessionStore, clock: Clock, settings: Settings) -> None:
    """Voltooien: erase the BSN now (InvalidTransition before a login). The citizen link is dead already."""
    session = common.load_for_owner(session_id, owner_id, store=store, clock=clock)
    erase(session, owner_id=owner_id, store=store, clock=clock, settings=settings)


def erase(
    session: IdentificationSession, *, owner_id: str, store: SessionStore, clock: Clock, settings: Settings
) -> None:
    """``complete`` of a session its owner has loaded already."""
    if session.state is SessionState.COMPLETED:
        return
    digest = bsn_hash(settings.audit_hash_key.encode(), session.bsn) if session.bsn is not None else None
    common.audit(
        store,
        clock,
        session.completed(clock.now()),
        actor=owner_id,
        event="erased",
        outcome="completed",
        bsn_digest=digest,
        update=True,
    )
