"""The citizen's pages: the link's start page, the DigiD hand-off, the result. Works without JavaScript."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

from flask import Blueprint, Response, abort, make_response, redirect, render_template, session, url_for
from flask_babel import gettext as _

from ..domain.errors import SessionAlreadyUsed, SessionExpired, SessionNotFound
from ..domain.sessions import Flow, SessionState
from ..flows import common
from ..ports import LoginFlow
from .presenters import grouped
from .security import services

log = logging.getLogger(__name__)
bp = Blueprint("citizen", __name__, url_prefix="/i")

LOGIN_COOKIE = "zgwid_login"
LOGIN_FLOW_MINUTES = 15


def link_problem(exc: Exception) -> tuple[str, int]:
    """A clear Dutch page for a link that cannot be used, with the matching status code."""
    if isinstance(exc, SessionExpired):
        return render_template(
            "message.html",
            title=_("Deze link is verlopen"),
            text=_("De link is niet meer geldig. Vraag de medewerker in het videogesprek om een nieuwe link."),
            status=410,
        ), 410
    if isinstance(exc, SessionAlreadyUsed) and exc.state == "withdrawn":
        return render_template(
            "message.html",
            title=_("Deze link is ingetrokken"),
            text=_(
                "De medewerker heeft deze link ingetrokken. Vraag de medewerker in het videogesprek om "
                "een nieuwe link als dat nodig is."
            ),
            status=409,
        ), 409
    if isinstance(exc, SessionAlreadyUsed):
        return render_template(
            "message.html",
            title=_("Deze link is al gebruikt"),
            text=_(
                "Met deze link is al ingelogd. Vraag de medewerker in het videogesprek om "
                "een nieuwe link als dat nodig is."
            ),
            status=409,
        ), 409
    return render_template(
        "message.html",
        title=_("Deze link werkt niet"),
        text=_(
            "Wij kennen deze link niet. Controleer of u de hele link heeft gekopieerd, of "
            "vraag de medewerker om een nieuwe link."
        ),
        status=404,
    ), 404


def _citizen_done(session_id: str) -> bool:
    if session.get("citizen_done") != session_id:
        return False
    settings = services().settings
    now = time.time()
    idle = now - float(session.get("citizen_seen", 0)) > settings.citizen_idle_minutes * 60
    too_old = now - float(session.get("citizen_since", 0)) > settings.session_minutes * 60  # R15: absolute cap
    if idle or too_old:
        session.clear()
        return False
    session["citizen_seen"] = now
    return True


@bp.get("/<session_id>")
def start(session_id: str) -> Response | tuple[str, int] | str:
    svc = services()
    if _citizen_done(session_id):
        return redirect(url_for("citizen.result", session_id=session_id))  # type: ignore[return-value]
    try:
        ident = common.open_link(session_id, store=svc.store, clock=svc.clock)
    except (SessionNotFound, SessionExpired, SessionAlreadyUsed) as exc:
        return link_problem(exc)
    cancelled = session.pop("digid_cancelled", None) == session_id
    return render_template("citizen/start.html", ident=ident, cancelled=cancelled, Flow=Flow)


@bp.post("/<session_id>/login")
def login(session_id: str) -> Response | tuple[str, int]:
    """Start a DigiD login bound to this browser (R12): a one-time flow and a cookie that names it."""
    svc = services()
    try:
        ident = common.load_for_citizen(session_id, store=svc.store, clock=svc.clock)
    except (SessionNotFound, SessionExpired, SessionAlreadyUsed) as exc:
        return link_problem(exc)
    relay_state = secrets.token_urlsafe(24)
    login_request = svc.idp.begin_login(min_level=ident.min_level, relay_state=relay_state)
    now = svc.clock.now()
    flow = LoginFlow(
        id=secrets.token_urlsafe(32),
        session_id=ident.id,
        request_id=login_request.request_id,
        relay_state=relay_state,
        created_at=now,
        expires_at=now + timedelta(minutes=LOGIN_FLOW_MINUTES),
    )
    svc.store.add_login_flow(flow)
    common.audit(svc.store, svc.clock, ident, actor="citizen", event="digid-login-started")
    resp = make_response(render_template("citizen/to_digid.html", login=login_request))
    resp.set_cookie(
        LOGIN_COOKIE,
        flow.id,
        max_age=LOGIN_FLOW_MINUTES * 60,
        httponly=True,
        samesite="Lax",
        secure=svc.settings.base_url.startswith("https://"),
        path="/digid/",
    )
    return resp


@bp.get("/<session_id>/klaar")
def result(session_id: str) -> str | tuple[str, int] | Response:
    svc = services()
    if not _citizen_done(session_id):
        abort(404)
    ident = svc.store.get(session_id)
    if ident is None or ident.state is SessionState.COMPLETED:
        return render_template(
            "message.html",
            title=_("Afgerond"),
            text=_("De identificatie is afgerond. U kunt dit venster sluiten."),
            status=200,
        )
    refresh = (  # the zaaknummer is shown only once the registration is done (zaak, rol, status, proof)
        ident.flow is Flow.NEW_CITIZEN
        and ident.registration_state is not None
        and ident.registration_state.value in ("pending", "retrying")
    )
    return render_template(
        "citizen/result.html", ident=ident, code=grouped(ident.citizen_code), refresh=refresh, Flow=Flow
    )


@bp.post("/<session_id>/afsluiten")
def logout(session_id: str) -> str:
    session.clear()
    return render_template(
        "message.html",
        title=_("U bent uitgelogd"),
        text=_("U kunt dit venster sluiten en verder gaan met het videogesprek."),
        status=200,
    )
