"""Turn a session into what the behandelaar (page, JSON) and the API see. The BSN only for §2.3."""

from __future__ import annotations

import re
from typing import Any

from ..domain.codes import group
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionReason, SessionState
from ..ports import SessionStore
from .i18n import gettext as _


def citizen_url(session: IdentificationSession) -> str:
    """The citizen's link: ``session_url`` (the start page's URL pattern built once), after the base URL; the
    status answer gives it on every poll."""
    from . import session_url
    from .security import services

    return services().settings.base_url.rstrip("/") + session_url("citizen.start", session.id)


def progress(session: IdentificationSession, now: Any) -> str:
    """One word for the live status: created, opened, authenticated, match, mismatch, failed, expired."""
    if session.state is SessionState.FAILED:
        return "failed"
    if session.state in (SessionState.CREATED, SessionState.OPENED) and session.is_expired(now):
        return "expired"
    if session.flow is Flow.KNOWN_CITIZEN and session.code_match is not None:
        return "match" if session.code_match else "mismatch"
    return session.state.value


def registration_of(session: IdentificationSession, store: SessionStore) -> Registration | None:
    """The session's registration (proof → zaak), read only when it has one."""
    return store.registration_for_session(session.id) if session.registration_state else None


_READ = object()  # session_status: read the registration (no caller has it yet)


def session_status(session: IdentificationSession, store: SessionStore, now: Any, reg: Any = _READ) -> dict[str, Any]:
    """The status block; ``reg``: the session's registration when the caller has read it already."""
    if reg is _READ:
        reg = registration_of(session, store)
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


# --- the behandelaar's page: one stage per outcome, each with its meaning, next step and actions ------------

LINK_STAGES = ("created", "opened", "cancelled")  # the citizen link still works: show link and QR code


def stage(session: IdentificationSession, now: Any) -> str:
    """What the behandelaar sees as the state of a session (page, live fragment and overview agree).

    created, opened, cancelled, login-failed (``session.reason`` says why), authenticated, match, mismatch,
    registering, registered, registration-failed, expired, withdrawn, completed.
    """
    if session.state is SessionState.FAILED:
        return "login-failed"
    if session.state is SessionState.WITHDRAWN:
        return "withdrawn"
    if session.state is SessionState.COMPLETED:
        return "completed"
    if session.state in (SessionState.CREATED, SessionState.OPENED):
        if session.is_expired(now):
            return "expired"
        if session.reason is SessionReason.CANCELLED:
            return "cancelled"
        return session.state.value
    registration = session.registration_state
    if registration is RegistrationState.FAILED:
        return "registration-failed"
    if session.flow is Flow.KNOWN_CITIZEN and session.code_match is not None:
        return "match" if session.code_match else "mismatch"
    if registration in (RegistrationState.PENDING, RegistrationState.RETRYING):
        return "registering"
    if registration is RegistrationState.DONE:
        return "registered"
    return "authenticated"


def actions(session: IdentificationSession, current: str) -> list[str]:
    """The buttons a stage offers, the first one primary: complete, new-link, withdraw (and retry, issue 9)."""
    if current in LINK_STAGES:
        return ["withdraw"]
    if current in ("login-failed", "expired", "withdrawn"):
        return ["new-link"]
    if current == "mismatch":
        return ["complete", "new-link"]
    if current in ("authenticated", "match", "registering", "registered", "registration-failed"):
        return ["complete"]
    return []


def registration_problem(error: str | None) -> str:
    """A registration error in words a behandelaar understands (the technical text is shown folded away)."""
    text = error or ""
    status = re.search(r"answered (\d{3})", text)
    code = int(status.group(1)) if status else None
    if code in (401, 403):
        return _("Het zaaksysteem weigert de toegang. Vraag functioneel beheer de koppeling te controleren.")
    if "not found" in text or code == 404:
        return _("Het zaaksysteem kent deze zaak niet. Controleer het zaaknummer.")
    if "roltype" in text:
        return _("Het zaaktype van deze zaak heeft geen rol voor de inwoner. Vraag functioneel beheer dit te regelen.")
    if "gave up" in text or "time-out" in text or "connection" in text or (code is not None and code >= 500):
        return _("Het zaaksysteem was te lang niet bereikbaar.")
    if "payload" in text:
        return _("De gegevens voor het bewijs zijn niet meer beschikbaar.")
    if code is not None and 400 <= code < 500:
        return _("Het zaaksysteem heeft de gegevens afgekeurd. Vraag functioneel beheer om hulp.")
    return _("Het vastleggen in het zaaksysteem is niet gelukt.")
