"""Hands a successful identification to the registration (proof PDF → zaak), when the flow wants one.

A §2.2 login whose code does not match is no identification: the person who logged in is not the one the
behandelaar expected. Decision (issue 9): nothing goes to the zaaksysteem then: no document that could be
read as proof, and no rol that would put a stranger's BSN on the zaak (of the expected citizen, when an
existing zaak was named). The registration is marked ``skipped`` with its reason, shown on the staff page
and in the API, and the audit log holds the ``code-mismatch`` login (with the hashed BSN).
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import metadata

from ..domain.identity import DigidIdentity
from ..domain.proof import ProofData
from ..domain.sessions import Flow, IdentificationSession, RegistrationState
from ..ports import Clock, SessionStore
from ..settings import Settings

log = logging.getLogger(__name__)

SKIPPED_MISMATCH = "not recorded: the control codes differ, so this login identifies nobody the zaak knows"


@cache  # reading the installed distribution's metadata takes milliseconds; it does not change in a process
def service_version() -> str:
    try:
        return "zgw-identificatie " + metadata.version("zgw-identificatie")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "zgw-identificatie (onbekende versie)"


def proof_for(session: IdentificationSession, identity: DigidIdentity, settings: Settings | None = None) -> ProofData:
    return ProofData(
        gemeente=session.gemeente,
        flow=session.flow,
        zaak_identificatie=session.zaak_identificatie or "",
        identified_at=session.authenticated_at or identity.authn_instant,
        level=identity.level,
        bsn=identity.bsn,
        assertion_id=identity.assertion_id,
        issuer=identity.issuer,
        assertion_sha256=identity.assertion_sha256,
        controlecode=session.citizen_code,
        code_check=session.code_match if session.flow is Flow.KNOWN_CITIZEN else None,
        behandelaar=session.owner_name or None,
        session_id=session.id,
        behandelaar_id=session.owner_id or None,
        gemeentecode=settings.gemeentecode if settings else "",
        rsin=settings.rsin if settings else "",
        service_version=service_version(),
        assertion_xml=identity.assertion_xml,
    )


def register(
    session: IdentificationSession, identity: DigidIdentity, *, store: SessionStore, clock: Clock, settings: Settings
) -> IdentificationSession:
    from . import common
    from .registration import start_registration

    if session.flow is Flow.KNOWN_CITIZEN and session.code_match is False:
        skipped = session.with_registration(RegistrationState.SKIPPED, error=SKIPPED_MISMATCH)
        common.audit(
            store, clock, skipped, actor="service", event="registration-skipped", outcome="code-mismatch", update=True
        )
        return skipped
    start_registration(
        session,
        proof_for(session, identity, settings),
        existing_zaak=session.zaak_identificatie,
        store=store,
        clock=clock,
    )
    updated = session.with_registration(RegistrationState.PENDING)
    store.update(updated)
    return updated
