"""Web hardening: CSRF tokens, security headers, idle time-outs, staff login and API keys.

Sources: NCSC ICT-beveiligingsrichtlijnen voor webapplicaties (U/WA.03–05), OWASP CSRF cheat sheet
(synchronizer token), DigiD notes R15/R27 (15 minutes idle, no-store, no-referrer).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for

from .. import request_context

if TYPE_CHECKING:
    from ..app import Services

F = TypeVar("F", bound=Callable[..., Any])

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'{style_extra}; img-src 'self' data:{img_extra}; "
    "font-src 'self'{style_extra}; connect-src 'self'; form-action 'self' {form_action}; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def services() -> Services:
    return current_app.extensions["zgwid"]


def csrf_token() -> str:
    token = session.get("_csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["_csrf"] = token
    return str(token)


def check_csrf() -> None:
    """Synchronizer token on every form POST (OWASP); the API uses keys, not cookies, so it is exempt."""
    sent = request.form.get("csrf_token", "")
    expected = session.get("_csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="CSRF token missing or wrong")


def hash_secret_sha256(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def api_client() -> dict[str, Any]:
    """The API client for a request's ``Authorization: Bearer <key>`` or ``X-Api-Key`` header, or 401.

    ``acts_for_staff``: the client may name the behandelaar it acts for; ``team``: it sees all sessions it
    started, not only those of the behandelaar in ``X-Behandelaar-Id`` (see README "API")."""
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("X-Api-Key", "")
    if key:
        digest = hash_secret_sha256(key)
        for client_id, client in services().settings.api_keys.items():
            if hmac.compare_digest(str(client.get("key_hash", "")), digest):
                return {
                    "id": f"api:{client_id}",
                    "name": client.get("name", client_id),
                    "behandelaar": client.get("behandelaar", client.get("name", client_id)),
                    "acts_for_staff": client.get("acts_for_staff") is True,
                    "team": client.get("team") is True,
                }
    from .api import ApiError

    raise ApiError(401, "Unauthorized", "A valid API key is required (Authorization: Bearer <key>).")


def staff_user() -> dict[str, str] | None:
    user = session.get("staff")
    if not user:
        return None
    idle = services().settings.staff_idle_minutes * 60
    now = time.time()
    too_old = now - float(session.get("staff_since", 0)) > services().settings.staff_max_hours * 3600
    seen = float(session.get("staff_seen", 0))
    if now - seen > idle or too_old:
        session.clear()  # idle time-out and an absolute cap: a copied cookie does not live forever
        return None
    refresh_seen(session, "staff_seen", seen, now)
    return dict(user)


# The "last seen" time in the cookie is renewed at most once a minute. Renewing it on every request
# rewrote the cookie on every poll of the live status (each second), and a poll answered after a later
# request (the POST behind "Voltooien", a log-out) put the older cookie back: its flash message was lost,
# or the log-out undone. Idle time-outs are minutes long, so they may now end up to a minute early.
SEEN_REFRESH_SECONDS = 60


def refresh_seen(cookie: Any, key: str, seen: float, now: float) -> None:
    if now - seen >= SEEN_REFRESH_SECONDS:
        cookie[key] = now


def login_staff(user_id: str, name: str) -> None:
    lang = session.get("lang")
    session.clear()  # a new session id at login (fixation)
    if lang:
        session["lang"] = lang
    session["staff"] = {"id": user_id, "name": name}
    session["staff_seen"] = session["staff_since"] = time.time()
    session.permanent = False


def staff_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = staff_user()
        if user is None:
            if request.method == "GET" and not request.path.endswith(".json"):
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            abort(401)
        g.staff = user
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def init_app(app: Flask, svc: Services) -> None:
    sso = svc.settings.base_url if svc.settings.digid.simulator else svc.settings.digid.idp_sso_url
    form_action = " ".join(sorted({_origin(sso)} - {""}))
    # A municipality's theme CSS and logo may live on its own site: allow exactly those origins.
    style_extra = "".join(" " + o for o in sorted({_origin(svc.settings.theme_css_url)} - {""}))
    img_extra = "".join(
        " " + o for o in sorted({_origin(svc.settings.logo_url), _origin(svc.settings.favicon_url)} - {""})
    )
    csp = CSP.format(form_action=form_action, style_extra=style_extra, img_extra=img_extra)
    # The embeddable staff panel: backoffices at these origins may frame the staff pages (and only those).
    frame_origins = sorted({_origin(o) for o in svc.settings.staff_frame_ancestors} - {""})
    staff_csp = csp.replace("frame-ancestors 'none'", "frame-ancestors " + " ".join(["'self'", *frame_origins]))
    if frame_origins and svc.settings.base_url.startswith("https://"):
        # A frame on another site only gets the staff login cookie with SameSite=None (CSRF tokens still apply).
        app.config["SESSION_COOKIE_SAMESITE"] = "None"

    @app.before_request
    def _request_id() -> None:
        g.request_id = request_context.accept(request.headers.get(request_context.HEADER))
        # The API authenticates with keys, not cookies; the simulator and sandbox stand in for other
        # parties (DigiD, the zaaksysteem) whose requests carry no token of ours.
        if request.method == "POST" and not request.path.startswith(("/api/", "/demo/", "/sandbox/")):
            check_csrf()

    # The headers every answer gets, built once per kind of answer (framable staff panel, static file,
    # https), with their lower-case names to see whether a view set one of them itself.
    common = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    hsts = [("Strict-Transport-Security", "max-age=31536000; includeSubDomains")]
    no_store = [("Cache-Control", "no-store")]

    def headers_for(framable: bool, static: bool, https: bool) -> tuple[list[tuple[str, str]], frozenset[str]]:
        wanted = [
            ("Content-Security-Policy", staff_csp if framable else csp),
            *([] if framable else [("X-Frame-Options", "DENY")]),  # no list of origins: CSP says it for the panel
            *common,
            *(hsts if https else []),
            *([] if static else no_store),
        ]
        return wanted, frozenset(name.lower() for name, _value in wanted)

    fixed = {key: headers_for(*key) for key in itertools.product((False, True), repeat=3)}

    @app.after_request
    def _headers(resp: Response) -> Response:
        path = request.path
        headers = resp.headers
        wanted, names = fixed[
            (
                bool(frame_origins) and path.startswith("/staff/"),
                path.startswith("/static/"),
                svc.settings.base_url.startswith("https://"),
            )
        ]
        present = headers._list  # werkzeug's own list of (name, value) pairs
        if names.isdisjoint(name.lower() for name, _value in present):
            # The usual case: the view set none of them. Appended to the list as they are: Headers.extend
            # would check every fixed name and value for line breaks again on every answer.
            present.extend(wanted)
        else:
            for name, value in wanted:
                if name in ("Content-Security-Policy", "Cache-Control"):
                    headers.setdefault(name, value)  # a view's own policy stands (the favicon may be cached)
                else:
                    headers[name] = value
        headers["X-Request-Id"] = g.get("request_id", "")
        return resp


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
