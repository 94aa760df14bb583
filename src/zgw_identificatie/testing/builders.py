"""Test data: a session and a proof with sensible defaults, changed per test with keyword arguments."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.proof import ProofData
from ..domain.sessions import Flow, IdentificationSession, SessionState

TEST_BSN = "999993653"


def a_session(now: datetime, **changes: Any) -> IdentificationSession:
    """An authenticated §2.1 session that wants a registration, as a registration test needs it."""
    session = IdentificationSession(
        id="sess-" + secrets.token_hex(8),
        flow=Flow.NEW_CITIZEN,
        state=SessionState.AUTHENTICATED,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        owner_id="jdv",
        owner_name="Jan de Vries",
        gemeente="Gemeente Voorbeeld",
        min_level=AssuranceLevel.MIDDEN,
        level=AssuranceLevel.MIDDEN,
        authenticated_at=now,
        register=True,
    )
    return replace(session, **changes)


def a_proof(identified_at: datetime, *, bsn: str = TEST_BSN, **changes: Any) -> ProofData:
    """What a §2.1 login would put on the proof PDF."""
    proof = ProofData(
        gemeente="Gemeente Voorbeeld",
        flow=Flow.NEW_CITIZEN,
        zaak_identificatie="",
        identified_at=identified_at,
        level=AssuranceLevel.MIDDEN,
        bsn=Bsn(bsn),
        assertion_id="_assertion-" + secrets.token_hex(4),
        issuer="https://digid.test/saml/idp",
        assertion_sha256="cd" * 32,
        controlecode="123456",
        code_check=None,
        behandelaar="Jan de Vries",
        session_id="sess-test",
    )
    return replace(proof, **changes)
