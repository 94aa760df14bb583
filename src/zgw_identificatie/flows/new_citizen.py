"""§2.1 Citizen not yet known: DigiD → a random controlecode → a new zaak with the citizen as rol.

The behandelaar opens the zaak, looks the BSN up in the BRP and asks the citizen to read the code
aloud. The BSN is kept only (encrypted) in the registration payload until the zaak has it.
"""

from __future__ import annotations

from ..domain.assurance import AssuranceLevel
from ..domain.codes import random_code
from ..domain.identity import DigidIdentity
from ..domain.sessions import Flow, IdentificationSession
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
) -> IdentificationSession:
    session = common.new_session(
        Flow.NEW_CITIZEN,
        owner_id=owner_id,
        owner_name=owner_name,
        client_id=client_id,
        clock=clock,
        settings=settings,
        min_level=min_level,
        register=True,
    )
    return common.create(session, store=store, clock=clock)


def citizen_authenticated(
    session: IdentificationSession, identity: DigidIdentity, *, store: SessionStore, clock: Clock, settings: Settings
) -> IdentificationSession:
    return common.accept_login(
        session, identity, store=store, clock=clock, settings=settings, citizen_code=random_code()
    )
