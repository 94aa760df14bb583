"""The DigiD assertion consumer service (HTTP-Artifact binding) and the SP metadata.

Logius rules: a cancel (Responder/AuthnFailed) returns to the page where the login started with a
cancel message (T7); every other failure shows Logius' fixed sentence verbatim and ends the local
session (T6). Notes R5, R12, R13, R17, R18.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Blueprint, Response, make_response, redirect, render_template, request, session, url_for

from .. import metrics
from ..domain.assurance import AssuranceLevel
from ..domain.errors import (
    DigidCancelled,
    DigidFailed,
    LevelTooLow,
    SessionAlreadyUsed,
    SessionExpired,
    SessionNotFound,
)
from ..domain.sessions import Flow, SessionReason, SessionState
from ..flows import common, known_citizen, mutual, new_citizen
from .citizen import LOGIN_COOKIE, link_problem
from .security import services

log = logging.getLogger(__name__)
bp = Blueprint("digid", __name__, url_prefix="/digid")

LOGIUS_ERROR = (
    "Er is een fout opgetreden in de communicatie met DigiD. Probeert u het later nogmaals. "
    "Indien deze fout blijft aanhouden, kijk dan op de website https://www.digid.nl voor de laatste "
    "informatie."
)
MAX_ARTIFACT_PARAM = 200
MAX_RELAY_STATE = 80  # SAML bindings §3.4.3: RelayState at most 80 bytes

FLOWS = {Flow.NEW_CITIZEN: new_citizen, Flow.KNOWN_CITIZEN: known_citizen, Flow.MUTUAL: mutual}


def _failure(reason: str, status: int = 400, *, required: AssuranceLevel | None = None) -> Response:
    """Logius' fixed sentence (T6/R18); the local session ends; the reason goes to the security log only.

    With ``required`` (the level was too low) the page also says, in the page's language, which DigiD level
    this call needs and how to get it (guide §2.4); Logius' sentence stays verbatim and Dutch.
    """
    log.warning("digid login refused: %s", reason)  # the request id is on every log line
    metrics.DIGID_LOGINS.labels("failed", "level_too_low" if required else metrics.login_reason(reason)).inc()
    session.clear()
    page = render_template("digid_error.html", text=LOGIUS_ERROR, required=required, status=status)
    resp = make_response(page, status)
    resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
    return resp


def _expired_during_login(session_id: str) -> Response:
    """The link expired while the citizen was at DigiD. Not a DigiD error (the login itself may have worked),
    so no Logius sentence: the citizen reads that the link expired and what to do; staff see why."""
    svc = services()
    ident = svc.store.get(session_id)
    if ident is not None and ident.state in (SessionState.CREATED, SessionState.OPENED):
        common.audit(
            svc.store,
            svc.clock,
            ident.failed(SessionReason.EXPIRED_DURING_LOGIN, svc.clock.now()),
            actor="citizen",
            event="digid-login",
            outcome="expired",
            update=True,
        )
    log.info("digid login returned after the link expired")
    session.clear()
    resp = make_response(link_problem(SessionAlreadyUsed("failed", SessionReason.EXPIRED_DURING_LOGIN.value))[0], 410)
    resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
    return resp


@bp.get("/acs")
def acs() -> Response:
    svc = services()
    # The browser's login flow is consumed by any call, so a failed call cannot be followed by a retry (R12).
    # Its session comes with it (one round trip); it is looked at only once the flow and RelayState match.
    taken = svc.store.take_login_flow_with_session(request.cookies.get(LOGIN_COOKIE, ""), svc.clock.now())
    flow, stored = taken if taken is not None else (None, None)
    if "SAMLResponse" in request.values:
        return _failure("SAMLResponse on the artifact ACS (R5)")
    artifact = request.args.get("SAMLart", "")
    relay_state = request.args.get("RelayState", "")
    if not artifact or len(artifact) > MAX_ARTIFACT_PARAM or len(relay_state.encode()) > MAX_RELAY_STATE:
        return _failure("missing or oversized SAMLart/RelayState")
    if flow is None:
        return _failure("no unused login flow for this browser (replay or login CSRF, R12)")
    if not hmac.compare_digest(relay_state.encode(), flow.relay_state.encode()):
        return _failure("RelayState does not match this browser's login flow (R13)")
    try:
        ident = common.usable_for_citizen(stored, clock=svc.clock)
    except SessionExpired:
        return _expired_during_login(flow.session_id)
    except (SessionNotFound, SessionAlreadyUsed):
        return _failure("the session behind the login flow is gone or used")
    try:
        identity = svc.idp.complete_login(
            artifact=artifact, expected_request_id=flow.request_id, min_level=ident.min_level
        )
        done = FLOWS[ident.flow].citizen_authenticated(
            ident, identity, store=svc.store, clock=svc.clock, settings=svc.settings
        )
    except DigidCancelled:
        common.audit(
            svc.store,
            svc.clock,
            ident.cancelled(),
            actor="citizen",
            event="digid-login",
            outcome="cancelled",
            update=True,
        )
        metrics.DIGID_LOGINS.labels("cancelled", "cancelled").inc()
        metrics.IDENTIFICATIONS.labels(ident.flow.value, "cancelled").inc()
        session["digid_cancelled"] = ident.id
        resp = redirect(url_for("citizen.start", session_id=ident.id), code=303)
        resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
        return resp  # type: ignore[return-value]
    except (DigidFailed, LevelTooLow) as exc:
        too_low = isinstance(exc, LevelTooLow) or getattr(exc, "level_too_low", False)
        why = SessionReason.LEVEL_TOO_LOW if too_low else SessionReason.DIGID_ERROR
        common.audit(
            svc.store,
            svc.clock,
            ident.failed(why, svc.clock.now()),
            actor="citizen",
            event="digid-login",
            outcome="failed",
            update=True,
        )
        metrics.IDENTIFICATIONS.labels(ident.flow.value, "level_too_low" if too_low else "failed").inc()
        return _failure(getattr(exc, "reason", exc.code), required=ident.min_level if too_low else None)
    metrics.DIGID_LOGINS.labels("success", "ok").inc()
    outcome = "code_mismatch" if done.code_match is False else "identified"
    metrics.IDENTIFICATIONS.labels(ident.flow.value, outcome).inc()
    session.clear()  # a new browser session at login (R15)
    session["citizen_done"] = done.id
    session["citizen_seen"] = session["citizen_since"] = time.time()
    resp = redirect(url_for("citizen.result", session_id=done.id), code=303)
    resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
    return resp  # type: ignore[return-value]


@bp.get("/metadata")
def metadata() -> Response:
    return Response(services().idp.metadata_xml(), mimetype="application/samlmetadata+xml")
