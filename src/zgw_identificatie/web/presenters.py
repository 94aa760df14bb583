"""Turn a session into what the behandelaar (page, JSON) and the API see. The BSN only for §2.3."""

from __future__ import annotations

from typing import Any

from flask import url_for

from ..domain.codes import group
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionState
from ..ports import SessionStore


def citizen_url(session: IdentificationSession) -> str:
    from .security import services

    return services().settings.base_url.rstrip("/") + url_for("citizen.start", session_id=session.id)


def progress(session: IdentificationSession, now: Any) -> str:
    """One word for the live status: created, opened, authenticated, match, mismatch, failed, expired."""
    if session.state is SessionState.FAILED:
        return "failed"
    if session.state in (SessionState.CREATED, SessionState.OPENED) and session.is_expired(now):
        return "expired"
    if session.flow is Flow.KNOWN_CITIZEN and session.code_match is not None:
        return "match" if session.code_match else "mismatch"
    return session.state.value


def session_status(session: IdentificationSession, store: SessionStore, now: Any) -> dict[str, Any]:
    reg = store.registration_for_session(session.id) if session.registration_state else None
    data: dict[str, Any] = {
        "id": session.id,
        "flow": session.flow.value,
        "state": session.state.value,
        "progress": progress(session, now),
        "citizenUrl": citizen_url(session),
        "createdAt": session.created_at.isoformat(),
        "expiresAt": session.expires_at.isoformat(),
        "behandelaar": session.owner_name,
        "minimumLevel": session.min_level.name.lower(),
        "level": session.level.name.lower() if session.level else None,
        "authenticatedAt": session.authenticated_at.isoformat() if session.authenticated_at else None,
        "code": session.expected_code if session.flow is Flow.KNOWN_CITIZEN else session.citizen_code,
        "codeMatch": session.code_match if session.flow is Flow.KNOWN_CITIZEN else None,
        "zaak": None,
        "registration": None,
    }
    if session.flow is Flow.MUTUAL and session.bsn is not None:
        data["bsn"] = session.bsn.value
    if session.registration_state:
        data["registration"] = {
            "state": session.registration_state.value,
            "error": session.registration_error,
            "invalidParams": [{"name": n, "code": c, "reason": r} for n, c, r in (reg.invalid_params if reg else ())],
            "resumable": reg is not None and reg.state is RegistrationState.FAILED and reg.proof is not None,
        }
    if session.zaak_identificatie or session.zaak_url:
        data["zaak"] = {"identificatie": session.zaak_identificatie, "url": session.zaak_url}
    if session.flow is Flow.NEW_CITIZEN:  # §2.1: the behandelaar's "Code klopt" / "Code klopt niet"
        from ..flows.confirmation import confirmation_view

        data["confirmation"] = confirmation_view(store.confirmation_for_session(session.id))
    return data


def grouped(code: str | None) -> str:
    return group(code) if code else ""
