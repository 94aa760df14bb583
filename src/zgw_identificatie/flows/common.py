"""Steps every flow shares: opening the link, recording the login, reading a session for its owner."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ..domain.assurance import AssuranceLevel
from ..domain.audit import AuditEvent, bsn_hash
from ..domain.errors import LevelTooLow, NotOwner, SessionExpired, SessionNotFound
from ..domain.identity import DigidIdentity
from ..domain.sessions import Flow, IdentificationSession, SessionState, expiry, new_session_id
from ..ports import Clock, SessionStore
from ..settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


def min_level_for(flow: Flow, settings: Settings) -> AssuranceLevel:
    name = {
        Flow.NEW_CITIZEN: settings.level_new_citizen,
        Flow.KNOWN_CITIZEN: settings.level_known_citizen,
        Flow.MUTUAL: settings.level_mutual,
    }[flow]
    return AssuranceLevel.from_name(name)


def new_session(
    flow: Flow,
    *,
    owner_id: str,
    owner_name: str,
    client_id: str | None = None,
    clock: Clock,
    settings: Settings,
    min_level: AssuranceLevel | None = None,
    **fields: object,
) -> IdentificationSession:
    now = clock.now()
    return IdentificationSession(
        id=new_session_id(),
        flow=flow,
        state=SessionState.CREATED,
        created_at=now,
        expires_at=expiry(now, settings.session_minutes),
        owner_id=owner_id,
        owner_name=owner_name,
        client_id=client_id,
        gemeente=settings.gemeente_naam,
        min_level=max(min_level or AssuranceLevel.BASIS, min_level_for(flow, settings)),
        purpose=settings.purpose,
        **fields,  # type: ignore[arg-type]
    )


def audit_event(
    clock: Clock,
    session: IdentificationSession,
    *,
    actor: str,
    event: str,
    outcome: str = "ok",
    bsn_digest: str | None = None,
) -> AuditEvent:
    """An audit event about ``session``, for a store write that records it with the change it is about
    (``store.add/update/add_login_flow(…, audit=…)``: atomic, and one round trip); ``logged`` after the write."""
    return AuditEvent(
        at=clock.now(),
        actor=actor,
        flow=session.flow.value,
        session_id=session.id,
        event=event,
        outcome=outcome,
        bsn_hash=bsn_digest,
    )


def logged(event: AuditEvent) -> None:
    log.info(
        "audit %s %s flow=%s session=%s actor=%s",
        event.event,
        event.outcome,
        event.flow,
        event.session_id[:8],
        event.actor,
    )


def audit(
    store: SessionStore,
    clock: Clock,
    session: IdentificationSession,
    *,
    actor: str,
    event: str,
    outcome: str = "ok",
    bsn_digest: str | None = None,
    update: bool = False,
) -> None:
    """An audit event about ``session``. ``update``: ``session`` is a new version, stored together with the
    event (one statement on PostgreSQL), so the change and its audit trail never part."""
    recorded = audit_event(clock, session, actor=actor, event=event, outcome=outcome, bsn_digest=bsn_digest)
    if update:
        store.update(session, audit=recorded)
    else:
        store.add_audit(recorded)
    logged(recorded)


def load_for_citizen(session_id: str, *, store: SessionStore, clock: Clock) -> IdentificationSession:
    """The session behind a citizen link, if the link may still be used (R14)."""
    return usable_for_citizen(store.get(session_id) if session_id else None, clock=clock)


def usable_for_citizen(session: IdentificationSession | None, *, clock: Clock) -> IdentificationSession:
    """``load_for_citizen`` for a session already read (None: not found)."""
    if session is None:
        raise SessionNotFound()
    session.ensure_usable_link(clock.now())
    return session


def open_link(session_id: str, *, store: SessionStore, clock: Clock) -> IdentificationSession:
    session = load_for_citizen(session_id, store=store, clock=clock)
    opened = session.opened(clock.now())
    if opened is not session:
        audit(store, clock, opened, actor="citizen", event="link-opened", update=True)
    return opened


def load_for_owner(
    session_id: str, owner_id: str, *, store: SessionStore, clock: Clock, allow_expired: bool = False
) -> IdentificationSession:
    """A session for the behandelaar or API client that created it; others get NotOwner (R14).

    An expired session raises SessionExpired unless ``allow_expired`` (the staff page shows it as expired until
    the purge erases it, so the page and the overview agree)."""
    session = store.get(session_id)
    if session is None:
        raise SessionNotFound()
    if session.owner_id != owner_id:
        raise NotOwner()
    if session.is_expired(clock.now()) and not allow_expired:
        raise SessionExpired()
    return session


def check_level(session: IdentificationSession, identity: DigidIdentity) -> None:
    """Defence in depth: the SAML adapter checks the level too; a flow never accepts a lower one."""
    if not identity.level.satisfies(session.min_level):
        raise LevelTooLow()


def audit_hash(settings: Settings, identity: DigidIdentity) -> str:
    return bsn_hash(settings.audit_hash_key.encode(), identity.bsn)


def create(session: IdentificationSession, *, store: SessionStore, clock: Clock) -> IdentificationSession:
    """Store a new session and record who started it."""
    from .. import metrics

    recorded = audit_event(clock, session, actor=session.owner_id, event="session-created")
    store.add(session, audit=recorded)
    logged(recorded)
    metrics.IDENTIFICATIONS.labels(session.flow.value, "started").inc()
    return session


def accept_login(
    session: IdentificationSession,
    identity: DigidIdentity,
    *,
    store: SessionStore,
    clock: Clock,
    settings: Settings,
    outcome: str = "ok",
    **changes: object,
) -> IdentificationSession:
    """The shared end of every flow's DigiD login: level check, state, audit, and the proof when wanted."""
    from . import registration_hook

    check_level(session, identity)
    done = session.authenticated(clock.now(), level=identity.level, **changes)
    audit(
        store,
        clock,
        done,
        actor="citizen",
        event="digid-login",
        outcome=outcome,
        bsn_digest=audit_hash(settings, identity),
        update=True,
    )
    if done.register:
        done = registration_hook.register(done, identity, store=store, clock=clock, settings=settings)
    return done


def one_at_a_time(
    claim: Callable[[], Sequence[T]], limit: int, stop: Callable[[], bool] = lambda: False
) -> Iterator[T]:
    """At most ``limit`` items of the worker's, each claimed (and so leased) only when its turn comes: ``claim``
    leases at most one. Nothing waits leased to a worker that is busy with another item, so a slow zaaksysteem
    or a database outage mid-pass never keeps a batch past its lease, and several workers share the work.
    Once ``stop`` says so (the worker was asked to exit) nothing more is claimed."""
    for _ in range(limit):
        if stop():
            return
        claimed = claim()
        if not claimed:
            return
        (item,) = claimed
        yield item
