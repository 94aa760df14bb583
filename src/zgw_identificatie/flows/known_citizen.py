"""§2.2 Citizen known: the behandelaar enters the BSN, both sides derive the same code.

The service makes a random session id and derives a six-digit code from BSN, session id and
gemeentecode with a secret key. The link carries only the session id. After the DigiD login the
code is derived again from the DigiD BSN: equal codes mean the same person. The behandelaar's BSN
is never stored; only the derived code is kept to compare.
"""

from __future__ import annotations

from dataclasses import replace

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.codes import codes_equal, derive_code
from ..domain.identity import DigidIdentity
from ..domain.sessions import Flow, IdentificationSession
from ..ports import Clock, SessionStore
from ..settings import Settings
from . import common


def _code(settings: Settings, session_id: str, bsn: Bsn) -> str:
    return derive_code(settings.code_key.encode(), gemeentecode=settings.gemeentecode, session_id=session_id, bsn=bsn)


def start(
    bsn: object,
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
    """Parse the BSN (InvalidBsn on error), create the session with the derived code."""
    parsed = Bsn.parse(bsn)
    session = common.new_session(
        Flow.KNOWN_CITIZEN,
        owner_id=owner_id,
        owner_name=owner_name,
        client_id=client_id,
        clock=clock,
        settings=settings,
        min_level=min_level,
        register=register,
        zaak_identificatie=zaak_identificatie or None,
    )
    session = replace(session, expected_code=_code(settings, session.id, parsed))
    return common.create(session, store=store, clock=clock)


def citizen_authenticated(
    session: IdentificationSession, identity: DigidIdentity, *, store: SessionStore, clock: Clock, settings: Settings
) -> IdentificationSession:
    citizen_code = _code(settings, session.id, identity.bsn)
    match = session.expected_code is not None and codes_equal(citizen_code, session.expected_code)
    return common.accept_login(
        session,
        identity,
        store=store,
        clock=clock,
        settings=settings,
        outcome="code-match" if match else "code-mismatch",
        citizen_code=citizen_code,
        code_match=match,
    )
