"""The behandelaar's pages: log in, start a session per flow, follow it live, finish it."""

from __future__ import annotations

import re
from typing import Any

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash

from ..domain.assurance import AssuranceLevel
from ..domain.bsn import Bsn
from ..domain.errors import (
    DomainError,
    InvalidBsn,
    InvalidLevel,
    NotOwner,
    RegistryUnavailable,
    SessionExpired,
    SessionNotFound,
)
from ..domain.sessions import Flow, SessionState
from ..flows import common, lifecycle, registration
from ..settings import ConfigError
from .i18n import gettext as _
from .presenters import LINK_STAGES, actions, citizen_url, grouped, registration_problem, session_status, stage
from .security import login_staff, services, staff_required, staff_user

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Checked against when the user name is unknown, so a wrong name and a wrong password take as long.
_DUMMY_HASH = "scrypt:32768:8:1$0000000000000000$" + "0" * 128


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    svc = services()
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        account = svc.settings.staff_users.get(username)
        ok = check_password_hash(account["password_hash"] if account else _DUMMY_HASH, password)
        if account and ok:
            login_staff(f"local:{username}", account.get("name", username))
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("staff.index")
            return redirect(target)
        error = _("De gebruikersnaam of het wachtwoord klopt niet.")
    status = 401 if error else 200
    return render_template("staff/login.html", error=error, oidc=bool(svc.settings.oidc.issuer)), status


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("staff.login"))  # type: ignore[return-value]


def _level(raw: str | None) -> AssuranceLevel | None:
    return AssuranceLevel.from_name(raw) if raw else None


@bp.get("/")
@staff_required
def index() -> str:
    svc = services()
    sessions = svc.store.list_for_owner(g.staff["id"], limit=30)
    now = svc.clock.now()
    return render_template(
        "staff/index.html",
        sessions=sessions,
        now=now,
        errors={},
        form={},
        stage=lambda s: stage(s, now),
    )


@bp.post("/sessions")
@staff_required
def create() -> Any:
    svc = services()
    form = request.form
    errors: dict[str, str] = {}
    owner = {
        "owner_id": g.staff["id"],
        "owner_name": g.staff["name"],
        "store": svc.store,
        "clock": svc.clock,
        "settings": svc.settings,
    }
    zaak = form.get("zaak", "").strip() or None  # surrounding spaces of a pasted zaaknummer are dropped
    register = form.get("register") == "on" or bool(zaak)
    if zaak and len(zaak) > 40:
        errors["zaak"] = _("Een zaaknummer heeft hoogstens 40 tekens.")
    try:
        level = _level(form.get("level"))
    except InvalidLevel:
        errors["level"] = _("Kies een DigiD-niveau uit de lijst.")
        level = None
    flow = form.get("flow", "")
    if flow == Flow.KNOWN_CITIZEN.value:
        try:
            Bsn.parse(normalise_bsn(form.get("bsn", "")))
        except InvalidBsn:
            errors["bsn"] = _(
                "Dit is geen geldig burgerservicenummer. Een BSN heeft 9 cijfers en voldoet aan de elfproef."
            )
    if zaak and "zaak" not in errors and flow != Flow.NEW_CITIZEN.value:
        problem = _zaak_problem(zaak)
        if problem:
            errors["zaak"] = problem
    if not errors:
        try:
            if flow not in {f.value for f in Flow}:
                abort(400)
            ident = lifecycle.start(
                Flow(flow),
                bsn=normalise_bsn(form.get("bsn", "")),
                zaak=zaak,
                register=register,
                min_level=level,
                **owner,
            )
            return redirect(url_for("staff.detail", session_id=ident.id), code=303)
        except InvalidBsn:
            errors["bsn"] = _(
                "Dit is geen geldig burgerservicenummer. Een BSN heeft 9 cijfers en voldoet aan de elfproef."
            )
    now = svc.clock.now()
    sessions = svc.store.list_for_owner(g.staff["id"], limit=30)
    form_values = {k: v for k, v in form.items() if k != "bsn"}  # never echo a BSN back into a page
    return render_template(
        "staff/index.html",
        sessions=sessions,
        now=now,
        errors=errors,
        form=form_values,
        active_flow=flow,
        stage=lambda s: stage(s, now),
    ), 400


def _zaak_problem(zaak: str) -> str | None:
    """The zaak is looked up before a link exists: a form error when it cannot take the proof."""
    svc = services()
    try:
        registration.check_existing_zaak(
            zaak, registry=svc.registry, settings=svc.settings, user=(g.staff["id"], g.staff["name"])
        )
    except registration.ZaakNotUsable as exc:
        return {
            "unknown": _("Het zaaksysteem kent geen zaak met dit zaaknummer. Controleer het nummer."),
            "other-bronorganisatie": _("Deze zaak is van een andere organisatie. Kies een zaak van uw gemeente."),
            "closed": _("Deze zaak is afgesloten. Kies een open zaak of laat het zaaknummer leeg."),
        }[exc.reason]
    except (RegistryUnavailable, ConfigError):
        return _("Het zaaksysteem is nu niet bereikbaar, dus het zaaknummer kan niet worden gecontroleerd. "
                 "Probeer het zo opnieuw of laat het zaaknummer leeg.")  # fmt: skip
    return None


def _own(session_id: str) -> Any:
    """The behandelaar's own session, expired ones included (shown as expired until the purge erases them)."""
    svc = services()
    try:
        return common.load_for_owner(session_id, g.staff["id"], store=svc.store, clock=svc.clock, allow_expired=True)
    except NotOwner:
        abort(404)  # do not reveal that another behandelaar's session exists
    except (SessionNotFound, SessionExpired):
        return None


def _gone() -> tuple[str, int]:
    return render_template(
        "message.html",
        title=_("Sessie niet gevonden"),
        text=_(
            "Deze sessie bestaat niet meer: na Voltooien bij Wederzijdse zekerheid, of na het verlopen, worden de "
            "gegevens gewist. Maak een nieuwe link vanuit het overzicht."
        ),
        status=404,
        back=url_for("staff.index"),
    ), 404


def _gone_to_overview(text: str) -> Any:
    """An action on a session that is erased (after Voltooien of §2.3, or by the purge): say so on the overview."""
    flash(text, "warning")
    return redirect(url_for("staff.index"), code=303)


def _view(ident: Any) -> dict[str, Any]:
    """What the status block and the actions need; the same for the page and the live fragment."""
    svc = services()
    now = svc.clock.now()
    status = session_status(ident, svc.store, now)
    current = stage(ident, now)
    return {
        "ident": ident,
        "status": status,
        "stage": current,
        "actions": actions(ident, current),
        "link_usable": current in LINK_STAGES,
        "registration_problem": registration_problem(ident.registration_error)
        if current == "registration-failed"
        else None,
        "can_retry": "staff.retry_registration" in current_app.view_functions,  # issue 9: Opnieuw vastleggen
        "Flow": Flow,
        "SessionState": SessionState,
    }


@bp.get("/sessions/<session_id>")
@staff_required
def detail(session_id: str) -> Any:
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone()
    view = _view(ident)
    url = citizen_url(ident)
    qr = segno.make(url, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")
    # §2.3 with a BRP configured: naam, geboortedatum and adres for the BSN (page only, not the polled fragment).
    brp = getattr(svc, "brp", None)
    brp_result = (
        brp.lookup(ident.bsn, gebruiker=g.staff["id"])
        if brp is not None and ident.flow is Flow.MUTUAL and ident.bsn is not None
        else None
    )
    return render_template(
        "staff/session.html", url=url, qr=qr, code=grouped(view["status"]["code"]), brp=brp_result, **view
    )


@bp.get("/sessions/<session_id>/status.json")
def status_json(session_id: str) -> Any:
    if staff_user() is None:
        return jsonify({"error": "login required"}), 401
    g.staff = staff_user()
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return jsonify({"id": session_id, "progress": "gone"}), 404
    return jsonify(session_status(ident, svc.store, svc.clock.now()))


@bp.get("/sessions/<session_id>/status.html")
@staff_required
def status_fragment(session_id: str) -> Any:
    """The status block and the actions alone, for the live update (same templates as the page: one set of texts)."""
    ident = _own(session_id)
    if ident is None:
        return render_template("staff/_gone.html"), 200  # erased: the live block says so instead of failing
    return render_template("staff/_live.html", **_view(ident))


@bp.post("/sessions/<session_id>/registration/retry")
@staff_required
def retry_registration(session_id: str) -> Any:
    """ "Opnieuw vastleggen": a failed registration continues from its last completed step."""
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone_to_overview(_("Deze sessie bestaat niet meer."))
    try:
        registration.resume(ident.id, store=svc.store, clock=svc.clock, actor=g.staff["id"])
    except registration.NotResumable as exc:
        text = (
            _("Het bewijs is na 24 uur gewist. Start een nieuwe sessie om de inwoner opnieuw te identificeren.")
            if exc.reason == "proof-erased"
            else _("Er is niets opnieuw vast te leggen: het vastleggen is bezig of al gelukt.")
        )
        return render_template(
            "message.html",
            title=_("Opnieuw vastleggen kan niet"),
            text=text,
            status=409,
            back=url_for("staff.detail", session_id=ident.id),
        ), 409
    common.audit(svc.store, svc.clock, ident, actor=g.staff["id"], event="registration-resumed")
    flash(_("Het vastleggen gaat verder waar het stopte."), "ok")
    return redirect(url_for("staff.detail", session_id=ident.id), code=303)


@bp.post("/sessions/<session_id>/voltooien")
@staff_required
def complete(session_id: str) -> Any:
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone_to_overview(_("Deze sessie bestaat niet meer."))
    try:
        # ``_own`` admits a session whose time ran out after the login: the page still shows that login (and
        # Voltooien) until the purge erases it, and Voltooien finishes it, erasing the BSN now.
        outcome = lifecycle.finish(
            ident, owner_id=g.staff["id"], store=svc.store, clock=svc.clock, settings=svc.settings
        )
    except DomainError:
        abort(409)
    if outcome == "completed" and ident.flow is Flow.MUTUAL:  # the one flow that showed staff a BSN
        flash(_("Afgerond. Het BSN en de andere gegevens van deze sessie zijn gewist."), "ok")
    elif outcome == "completed":
        flash(
            _("Afgerond. De identificatie van %(tijd)s staat als afgerond in het overzicht.", tijd=_hhmm(ident)), "ok"
        )
    else:
        flash(_("De link is ingetrokken. De inwoner kan er niet meer mee inloggen."), "ok")
        return redirect(url_for("staff.detail", session_id=ident.id), code=303)
    return redirect(url_for("staff.index"), code=303)


def _hhmm(ident: Any) -> str:
    from zoneinfo import ZoneInfo

    return str(ident.created_at.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M"))


@bp.post("/sessions/<session_id>/intrekken")
@staff_required
def withdraw(session_id: str) -> Any:
    """Link intrekken: the link dies at once; the page stays and shows the withdrawn state."""
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone_to_overview(_("Deze sessie bestaat niet meer."))
    try:
        lifecycle.withdraw(ident, owner_id=g.staff["id"], store=svc.store, clock=svc.clock)
    except DomainError:
        flash(_("Deze link kan niet meer worden ingetrokken: de inwoner heeft al ingelogd."), "warning")
        return redirect(url_for("staff.detail", session_id=ident.id), code=303)
    flash(_("De link is ingetrokken. De inwoner kan er niet meer mee inloggen."), "ok")
    return redirect(url_for("staff.detail", session_id=ident.id), code=303)


@bp.route("/sessions/<session_id>/nieuwe-link", methods=["GET", "POST"])
@staff_required
def new_link(session_id: str) -> Any:
    """Nieuwe link: the same flow, zaak and level in a new session. §2.2 asks for the BSN again (never stored).
    A still-working old link is withdrawn, so only one link is live."""
    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone_to_overview(_("Deze sessie bestaat niet meer. Maak hieronder een nieuwe link."))
    if request.method == "GET":
        if ident.flow is not Flow.KNOWN_CITIZEN:
            abort(405)  # the other flows need nothing new: their button posts at once
        return render_template("staff/new_link.html", ident=ident, error=None)
    try:
        fresh = lifecycle.start(
            ident.flow,
            bsn=normalise_bsn(request.form.get("bsn", "")),
            zaak=ident.zaak_identificatie if ident.flow is not Flow.NEW_CITIZEN else None,
            register=ident.register,
            min_level=ident.min_level,
            owner_id=g.staff["id"],
            owner_name=g.staff["name"],
            store=svc.store,
            clock=svc.clock,
            settings=svc.settings,
        )
    except InvalidBsn:
        error = _("Dit is geen geldig burgerservicenummer. Een BSN heeft 9 cijfers en voldoet aan de elfproef.")
        return render_template("staff/new_link.html", ident=ident, error=error), 400
    if stage(ident, svc.clock.now()) in LINK_STAGES:
        lifecycle.withdraw(ident, owner_id=g.staff["id"], store=svc.store, clock=svc.clock)
    flash(_("Er is een nieuwe link gemaakt. Zet deze link in de chat; de vorige link werkt niet meer."), "ok")
    return redirect(url_for("staff.detail", session_id=fresh.id), code=303)


def normalise_bsn(raw: str) -> str:
    """A BSN as typed or pasted: spaces (also non-breaking), dots and dashes are dropped ("999 993 653")."""
    return re.sub(r"[\s.\-\u2010-\u2015]", "", raw or "")


# -- §2.1 code confirmation (flows/confirmation.py) ------------------------------------------------------


@bp.post("/sessions/<session_id>/code-bevestiging")
@staff_required
def confirm_code(session_id: str) -> Any:
    """ "Code klopt" / "Code klopt niet" after the citizen read the code aloud; the worker puts it on the zaak."""
    from ..flows import confirmation

    svc = services()
    ident = _own(session_id)
    if ident is None:
        return _gone_to_overview(_("Deze sessie bestaat niet meer."))
    answer = request.form.get("uitkomst", "")
    if answer not in ("klopt", "klopt-niet"):
        abort(400)
    try:
        confirmation.confirm(
            ident,
            matches=answer == "klopt",
            actor_id=g.staff["id"],
            actor_name=g.staff["name"],
            store=svc.store,
            clock=svc.clock,
        )
    except DomainError:
        abort(409)
    return redirect(url_for("staff.detail", session_id=ident.id), code=303)
