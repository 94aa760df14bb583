"""Starting and finishing a session, the same for the staff page and the API.

Finishing means the same for every flow: an authenticated session becomes ``completed`` and its BSN is erased
at once (§2.3 "Voltooien erases the record": everything personal goes, a tombstone with the state, level and
zaak stays readable by its owner until the session expires and is purged); completing twice is a no-op. A
session nobody logged in to yet (or whose login failed) is withdrawn: its link dies at once, and the record
stays (without anything personal) until it expires, so the citizen and the overview can say what happened.
"""

from __future__ import annotations

from ..domain.assurance import AssuranceLevel
from ..domain.sessions import Flow, IdentificationSession, SessionState
from ..ports import Clock, SessionStore
from ..settings import Settings
from . import common, known_citizen, mutual, new_citizen


def finish(
    session: IdentificationSession, *, owner_id: str, store: SessionStore, clock: Clock, settings: Settings
) -> str:
    """Voltooien of a session its owner has loaded (so whether an expired one may be finished is the caller's:
    the staff page finishes a session whose time ran out after the login, as it still shows that login until the
    purge; the API answers such a session 410). Returns what happened: ``completed`` or ``withdrawn``."""
    if session.state is SessionState.COMPLETED:
        return "completed"
    if session.flow is Flow.MUTUAL and session.state is SessionState.AUTHENTICATED:
        mutual.erase(session, owner_id=owner_id, store=store, clock=clock, settings=settings)
        return "completed"
    if session.state is SessionState.AUTHENTICATED:
        common.audit(store, clock, session.completed(clock.now()), actor=owner_id, event="completed", update=True)
        return "completed"
    return withdraw(session, owner_id=owner_id, store=store, clock=clock)


def withdraw(session: IdentificationSession, *, owner_id: str, store: SessionStore, clock: Clock) -> str:
    """Kill the link of a session that has no successful login (InvalidTransition otherwise)."""
    if session.state is SessionState.WITHDRAWN:
        return "withdrawn"
    common.audit(store, clock, session.withdrawn(clock.now()), actor=owner_id, event="withdrawn", update=True)
    return "withdrawn"


def start(
    flow: Flow,
    *,
    bsn: object = None,
    zaak: str | None = None,
    register: bool = False,
    min_level: AssuranceLevel | None = None,
    owner_id: str,
    owner_name: str,
    client_id: str | None = None,
    store: SessionStore,
    clock: Clock,
    settings: Settings,
) -> IdentificationSession:
    """Start a session of any flow (InvalidBsn for §2.2 with a bad BSN). §2.1 always makes a new zaak."""
    if flow is Flow.KNOWN_CITIZEN:
        return known_citizen.start(
            bsn,
            register=register or bool(zaak),
            zaak_identificatie=zaak,
            min_level=min_level,
            owner_id=owner_id,
            owner_name=owner_name,
            client_id=client_id,
            store=store,
            clock=clock,
            settings=settings,
        )
    if flow is Flow.NEW_CITIZEN:
        return new_citizen.start(
            min_level=min_level,
            owner_id=owner_id,
            owner_name=owner_name,
            client_id=client_id,
            store=store,
            clock=clock,
            settings=settings,
        )
    return mutual.start(
        register=register or bool(zaak),
        zaak_identificatie=zaak,
        min_level=min_level,
        owner_id=owner_id,
        owner_name=owner_name,
        client_id=client_id,
        store=store,
        clock=clock,
        settings=settings,
    )
