"""Flask blueprints: citizen, staff, digid, api, health. Views parse, call a flow, map errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from babel import Locale
from flask import Flask, Response, g, render_template, request, url_for
from flask.globals import _cv_request  # the request context itself: cheaper than the request proxy
from flask.typing import ResponseReturnValue
from flask_babel import Babel
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from . import i18n, security
from .cookie_session import CookieSessionsForPages
from .i18n import gettext as _

if TYPE_CHECKING:
    from ..app import Services

log = logging.getLogger(__name__)

LANGUAGES = ("nl", "en")
WEB_DIR = Path(__file__).resolve().parent


_LOCALES = {lang: Locale.parse(lang) for lang in LANGUAGES}


def select_locale() -> Locale:
    """The ``lang`` cookie, else the browser's preference, else Dutch; as the (shared) babel Locale itself,
    which flask-babel takes as it is instead of parsing the name again."""
    chosen = request.cookies.get("lang")
    if chosen not in LANGUAGES:
        chosen = request.accept_languages.best_match(LANGUAGES) or "nl"
    return _LOCALES[chosen]


# URLs built once per mount point (``request.script_root``) with url_for, then reused: url_for costs more than
# the rest of a link's rendering, and the pages show several.
_static_urls: dict[tuple[str, str], str] = {}
_built: dict[tuple[str, str, str], tuple[str, str]] = {}
_HOLE = "ZGWID-HOLE"
PATH_SAFE = "!$&'()*+,/:;=@"  # werkzeug's path converter (BaseConverter.to_url)
QUERY_SAFE = "!$'()*,/:;?@"  # werkzeug's query string (werkzeug.urls._urlencode: urlencode, quote_plus)


def static_url(filename: str) -> str:
    """``url_for('static', …)`` once per file (and mount point): the pages link five assets each."""
    key = (_cv_request.get().request.script_root, filename)
    url = _static_urls.get(key)
    if url is None:
        url = _static_urls[key] = url_for("static", filename=filename)
    return url


def _around(endpoint: str, name: str) -> tuple[str, str]:
    """The URL of ``endpoint`` before and after its one variable ``name``."""
    key = (_cv_request.get().request.script_root, endpoint, name)
    parts = _built.get(key)
    if parts is None:
        values: dict[str, Any] = {name: _HOLE}
        before, _hole, after = url_for(endpoint, **values).partition(_HOLE)
        parts = _built[key] = (before, after)
    return parts


def session_url(endpoint: str, session_id: str) -> str:
    """``url_for(endpoint, session_id=session_id)`` for a citizen's page: the id quoted as werkzeug does it."""
    before, after = _around(endpoint, "session_id")
    return before + quote(session_id, safe=PATH_SAFE) + after


def language_url(lang: str) -> str:
    """``url_for('set_language', lang=lang, next=<this page>)``, the link of the language switch."""
    before, after = _around("set_language", "lang")
    here = quote_plus(_cv_request.get().request.full_path.rstrip("?"), safe=QUERY_SAFE)  # as urlencode does
    return f"{before}{quote(lang, safe=PATH_SAFE)}{after}?next={here}"


def register_web(app: Flask, services: Services) -> None:
    from . import api, citizen, digid, health, oidc, presenters, staff

    # Templates compiled once per language (web/i18n.py); before anything creates the environment.
    assert "jinja_env" not in app.__dict__, "register_web comes before any use of app.jinja_env"
    app.jinja_environment = i18n.LocalisedEnvironment
    # The pages live next to the blueprints (web/templates, web/static), not next to app.py.
    Babel(
        app,
        locale_selector=select_locale,
        default_locale="nl",
        default_translation_directories=str(WEB_DIR.parent / "translations"),
    )
    i18n.install(app)
    app.jinja_env.globals.update(
        settings=services.settings,
        csrf_token=security.csrf_token,
        LANGUAGES=LANGUAGES,
        static_url=static_url,
        session_url=session_url,
        language_url=language_url,
    )
    app.session_interface = CookieSessionsForPages()
    app.jinja_env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    app.add_template_filter(presenters.grouped, "grouped")

    @app.template_filter("local_time")
    def local_time(value: object, fmt: str = "%H:%M") -> str:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        if not isinstance(value, datetime):
            return ""
        return value.astimezone(ZoneInfo("Europe/Amsterdam")).strftime(fmt)

    @app.context_processor
    def _locale() -> dict[str, object]:
        return {"current_locale": i18n.page_language() or "nl"}

    app.register_blueprint(citizen.bp)
    app.register_blueprint(digid.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    security.init_app(app, services)

    @app.get("/")
    def index() -> Response:
        from flask import redirect

        return redirect(url_for("staff.index"))  # type: ignore[return-value]

    favicon_bytes = (WEB_DIR / "static" / "favicon.ico").read_bytes()

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """Browsers ask for /favicon.ico by themselves: the municipality's icon, or the neutral default."""
        from flask import redirect

        if services.settings.favicon_url:
            return redirect(services.settings.favicon_url)  # type: ignore[return-value]
        resp = Response(favicon_bytes, mimetype="image/vnd.microsoft.icon")
        resp.cache_control.max_age = 86400
        resp.cache_control.public = True
        return resp

    @app.get("/taal/<lang>")
    def set_language(lang: str) -> Response:
        from flask import redirect

        target = request.args.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        resp = redirect(target)
        if lang in LANGUAGES:
            resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True, secure=request.is_secure)
        return resp  # type: ignore[return-value]

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        # A rate-limit breach (web/ratelimit.py) says when to come back; the page and the problem say it too.
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if isinstance(retry_after, int) and retry_after > 0 else {}
        if request.path.startswith("/api/"):
            resp, status = api.problem(exc.code or 500, exc.name, exc.description or exc.name)
            return resp, status, headers
        titles = {
            400: _("Er ging iets mis met uw verzoek"),
            403: _("Geen toegang"),
            404: _("Pagina niet gevonden"),
            405: _("Dit kan hier niet"),
            413: _("Het verzoek is te groot"),
            429: _("Te veel pogingen"),
        }
        texts = {
            400: _("Het verzoek kon niet worden verwerkt. Ga terug en probeer het opnieuw."),
            403: _("U heeft geen toegang tot deze pagina."),
            404: _("Deze pagina bestaat niet (meer). Controleer de link die u heeft gekregen."),
            405: _("Ga terug en probeer het opnieuw."),
            413: _("Het verzoek is te groot."),
            429: _("U heeft het te vaak geprobeerd. Wacht een minuut en probeer het dan opnieuw."),
        }
        code = exc.code or 500
        return (
            render_template(
                "message.html",
                title=titles.get(code, _("Er ging iets mis")),
                text=texts.get(code, _("Probeer het later opnieuw.")),
                status=code,
            ),
            code,
            headers,
        )

    @app.errorhandler(sa_exc.OperationalError)
    def database_unavailable(exc: sa_exc.OperationalError) -> ResponseReturnValue:
        """The database is away for a moment (restart, fail-over): say so and when to retry, not 'error'."""
        log.error("database unavailable on %s %s (ref %s)", request.method, request.path, g.get("request_id", "-"))
        if request.path.startswith("/api/"):
            resp, _status = api.problem(503, "Service Unavailable", "The service is briefly unavailable; retry.")
        else:
            resp = app.make_response(
                (
                    render_template(
                        "message.html",
                        title=_("Even niet beschikbaar"),
                        text=_(
                            "Deze dienst is even niet beschikbaar. Probeer het over een minuut opnieuw; uw link blijft "
                            "geldig."
                        ),
                        status=503,
                    ),
                    503,
                )
            )
        resp.headers["Retry-After"] = "30"
        return resp, 503

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error on %s %s (ref %s)", request.method, request.path, g.get("request_id", "-"))
        if request.path.startswith("/api/"):
            return api.problem(500, "Internal Server Error", "An unexpected error occurred.")
        return render_template(
            "message.html",
            title=_("Er ging iets mis"),
            text=_("Er ging iets mis aan onze kant. Probeer het later opnieuw."),
            status=500,
        ), 500
