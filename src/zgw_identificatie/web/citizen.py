"""The citizen's pages: the link's start page, the DigiD hand-off, the result. Works without JavaScript."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

from flask import Blueprint, Response, abort, make_response, redirect, render_template, session, url_for

from ..domain.assurance import AssuranceLevel
from ..domain.errors import SessionAlreadyUsed, SessionExpired, SessionNotFound
from ..domain.sessions import Flow, SessionReason, SessionState
from ..flows import common
from ..ports import LoginFlow
from .i18n import gettext as _
from .presenters import grouped
from .security import refresh_seen, services

log = logging.getLogger(__name__)
bp = Blueprint("citizen", __name__, url_prefix="/i")

LOGIN_COOKIE = "zgwid_login"
LOGIN_FLOW_MINUTES = 15


def link_problem(exc: Exception, required: AssuranceLevel | None = None) -> tuple[str, int]:
    """A true page for a link that cannot be used (unknown, expired, used, failed, withdrawn, completed), with
    the matching status code. Every page ends with what to do; ``required`` explains a too-low DigiD level."""
    next_step = _("Vraag de medewerker in het videogesprek om een nieuwe link.")
    if isinstance(exc, SessionExpired):
        title, text, status = _("Deze link is verlopen"), _("De link is niet meer geldig."), 410
    elif isinstance(exc, SessionAlreadyUsed):
        status = 409
        if exc.state == SessionState.WITHDRAWN.value:
            title = _("Deze link is ingetrokken")
            text = _("De medewerker heeft deze link ingetrokken. U kunt er niet meer mee inloggen.")
            next_step = _("Heeft u nog een link nodig? Vraag de medewerker in het videogesprek om een nieuwe link.")
        elif exc.state == SessionState.COMPLETED.value:
            title = _("Deze identificatie is afgerond")
            text = _("Met deze link is ingelogd, en de medewerker heeft de identificatie afgerond.")
            next_step = _(
                "Moet u nog een keer laten zien wie u bent? Vraag de medewerker in het videogesprek om een nieuwe link."
            )
        elif exc.state == SessionState.FAILED.value and exc.reason == SessionReason.EXPIRED_DURING_LOGIN.value:
            title = _("Deze link is verlopen")
            text = _(
                "De link verliep terwijl u bij DigiD aan het inloggen was. Uw inloggegevens zijn daarom niet gebruikt."
            )
            status = 410
        elif exc.state == SessionState.FAILED.value and exc.reason == SessionReason.LEVEL_TOO_LOW.value:
            title = _("Uw DigiD-niveau is te laag voor dit gesprek")
            text = _(
                "U heeft met deze link ingelogd op een lager DigiD-niveau dan nodig is. Deze link werkt niet meer."
            )
        elif exc.state == SessionState.FAILED.value:
            title = _("Inloggen met deze link is niet gelukt")
            text = _("Het inloggen met DigiD is niet gelukt. Daarom werkt deze link niet meer.")
        else:
            title = _("Deze link is al gebruikt")
            text = _("Met deze link is al ingelogd met DigiD.")
            next_step = _(
                "Is dat niet gelukt zoals het moest? Vraag de medewerker in het videogesprek om een nieuwe link."
            )
    else:
        title, status = _("Deze link werkt niet"), 404
        text = _("Misschien is de link niet helemaal gekopieerd, of is de identificatie al afgerond of ingetrokken.")
    page = render_template(
        "citizen/link_problem.html", title=title, text=text, next_step=next_step, required=required, status=status
    )
    return page, status


def _problem_for(session_id: str, exc: Exception) -> tuple[str, int]:
    """link_problem, with the level this call needs when the login failed because the level was too low."""
    required = None
    if isinstance(exc, SessionAlreadyUsed) and exc.reason == SessionReason.LEVEL_TOO_LOW.value:
        ident = services().store.get(session_id)
        required = ident.min_level if ident is not None else None
    return link_problem(exc, required)


def _citizen_done(session_id: str) -> bool:
    if session.get("citizen_done") != session_id:
        return False
    settings = services().settings
    now = time.time()
    seen = float(session.get("citizen_seen", 0))
    idle = now - seen > settings.citizen_idle_minutes * 60
    too_old = now - float(session.get("citizen_since", 0)) > settings.session_minutes * 60  # R15: absolute cap
    if idle or too_old:
        session.clear()
        return False
    refresh_seen(session, "citizen_seen", seen, now)  # at most once a minute (the result page polls)
    return True


@bp.get("/<session_id>")
def start(session_id: str) -> Response | tuple[str, int] | str:
    svc = services()
    if _citizen_done(session_id):
        return redirect(url_for("citizen.result", session_id=session_id))  # type: ignore[return-value]
    try:
        ident = common.open_link(session_id, store=svc.store, clock=svc.clock)
    except (SessionNotFound, SessionExpired, SessionAlreadyUsed) as exc:
        return _problem_for(session_id, exc)
    cancelled = session.pop("digid_cancelled", None) == session_id
    return render_template("citizen/start.html", ident=ident, cancelled=cancelled, Flow=Flow)


@bp.post("/<session_id>/login")
def login(session_id: str) -> Response:
    """'Inloggen met DigiD' (POST, CSRF-checked), answered with a redirect to the hand-off page (POST-redirect-GET):
    going back after the login never asks the browser to post a form again. The link is checked there, once:
    an unknown, expired or used link shows its page (and status) at the end of the redirect."""
    session["digid_start"] = session_id
    return redirect(url_for("citizen.to_digid", session_id=session_id), code=303)  # type: ignore[return-value]


@bp.get("/<session_id>/naar-digid")
def to_digid(session_id: str) -> Response | tuple[str, int]:
    """Start a DigiD login bound to this browser (R12): a one-time flow and a cookie that names it.

    Only right after the POST above (once): reached again with the back button, it returns to the link's page
    (which shows the result after a login) instead of sending the citizen to DigiD again."""
    svc = services()
    if session.pop("digid_start", None) != session_id:
        return redirect(url_for("citizen.start", session_id=session_id), code=303)  # type: ignore[return-value]
    try:
        ident = common.load_for_citizen(session_id, store=svc.store, clock=svc.clock)
    except (SessionNotFound, SessionExpired, SessionAlreadyUsed) as exc:
        return _problem_for(session_id, exc)
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
    started = common.audit_event(svc.clock, ident, actor="citizen", event="digid-login-started")
    svc.store.add_login_flow(flow, audit=started)
    common.logged(started)
    resp = make_response(render_template("citizen/to_digid.html", login=login_request))
    resp.headers["Cache-Control"] = "no-store"  # a signed AuthnRequest is used once; the back button asks again
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
