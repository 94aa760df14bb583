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
from ..domain.errors import (
    DigidCancelled,
    DigidFailed,
    LevelTooLow,
    SessionAlreadyUsed,
    SessionExpired,
    SessionNotFound,
)
from ..domain.sessions import Flow, SessionReason
from ..flows import common, known_citizen, mutual, new_citizen
from .citizen import LOGIN_COOKIE
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


def _failure(reason: str, status: int = 400) -> Response:
    """Logius' fixed sentence (T6/R18); the local session ends; the reason goes to the security log only."""
    log.warning("digid login refused: %s", reason)
    metrics.DIGID_LOGINS.labels("failed", metrics.login_reason(reason)).inc()
    session.clear()
    resp = make_response(render_template("digid_error.html", text=LOGIUS_ERROR, status=status), status)
    resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
    return resp


@bp.get("/acs")
def acs() -> Response:
    svc = services()
    # The browser's login flow is consumed by any call, so a failed call cannot be followed by a retry (R12).
    flow = svc.store.take_login_flow(request.cookies.get(LOGIN_COOKIE, ""), svc.clock.now())
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
        ident = common.load_for_citizen(flow.session_id, store=svc.store, clock=svc.clock)
    except (SessionNotFound, SessionExpired, SessionAlreadyUsed):
        return _failure("the session behind the login flow is gone, expired or used")
    try:
        identity = svc.idp.complete_login(
            artifact=artifact, expected_request_id=flow.request_id, min_level=ident.min_level
        )
        done = FLOWS[ident.flow].citizen_authenticated(
            ident, identity, store=svc.store, clock=svc.clock, settings=svc.settings
        )
    except DigidCancelled:
        svc.store.update(ident.cancelled())
        metrics.DIGID_LOGINS.labels("cancelled", "cancelled").inc()
        metrics.IDENTIFICATIONS.labels(ident.flow.value, "cancelled").inc()
        common.audit(svc.store, svc.clock, ident, actor="citizen", event="digid-login", outcome="cancelled")
        session["digid_cancelled"] = ident.id
        resp = redirect(url_for("citizen.start", session_id=ident.id), code=303)
        resp.delete_cookie(LOGIN_COOKIE, path="/digid/")
        return resp  # type: ignore[return-value]
    except (DigidFailed, LevelTooLow) as exc:
        why = SessionReason.LEVEL_TOO_LOW if isinstance(exc, LevelTooLow) else SessionReason.DIGID_ERROR
        svc.store.update(ident.failed(why, svc.clock.now()))
        common.audit(svc.store, svc.clock, ident, actor="citizen", event="digid-login", outcome="failed")
        too_low = metrics.login_reason(getattr(exc, "reason", exc.code)) == "level_too_low"
        outcome = "level_too_low" if too_low else "failed"
        metrics.IDENTIFICATIONS.labels(ident.flow.value, outcome).inc()
        return _failure(getattr(exc, "reason", exc.code))
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
