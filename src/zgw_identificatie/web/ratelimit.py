"""Rate limits on the endpoints an attacker can use to guess or to flood (NCSC U/WA.05, OWASP ASVS 2.2.1).

Which limit, counted per what:

* starting a session: ``rate_limit_start`` per behandelaar (staff form) and per API client (API);
* the staff login form: ``rate_limit_citizen`` per client IP (password guessing);
* opening a citizen link, starting a DigiD login and the ACS: ``rate_limit_citizen`` per client IP
  (shared by the three), plus ``rate_limit_citizen`` per link on opening it and starting a login;
* every API call: ``rate_limit_api`` per API client (shared by all operations).

The client IP is ``request.remote_addr``; behind a proxy ``app.py`` applies ProxyFix with
``trusted_proxies`` hops, so a spoofed ``X-Forwarded-For`` is ignored. Counters live in memory per
process, or in Redis when ``rate_limit_storage`` is ``redis://…`` so that every instance shares them.
If Redis goes away, the limiter falls back to per-process memory instead of failing requests.

A breach raises werkzeug's ``TooManyRequests``; the HTTPException handler in ``web/__init__.py``
turns it into the "Te veel pogingen" page or, under ``/api/``, a 429 problem+json. The limiter
adds ``Retry-After`` to both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, request, session
from flask_limiter import Limiter
from limits import parse

if TYPE_CHECKING:
    from ..settings import Settings

KEY_PREFIX = "zgwid"


def client_ip() -> str:
    """The client's address as ProxyFix left it (only ``trusted_proxies`` hops are believed)."""
    return "ip:" + (request.remote_addr or "unknown")


def staff_key() -> str:
    """The logged-in behandelaar; without one (the view will refuse anyway) the client IP."""
    user = session.get("staff")
    return f"staff:{user['id']}" if isinstance(user, dict) and user.get("id") else client_ip()


def api_key() -> str:
    """The API client authenticated by the blueprint's before_request; otherwise the client IP."""
    client = g.get("api_client")
    return str(client["id"]) if client else client_ip()


def link_key() -> str:
    """The citizen link (session id) in the URL: limits hammering one link from many addresses.

    Hashed, because flask-limiter logs the key on a breach and a link is a capability."""
    link = str((request.view_args or {}).get("session_id", ""))
    return "link:" + hashlib.sha256(link.encode()).hexdigest()[:32]


def init_app(app: Flask, settings: Settings) -> Limiter:
    @app.after_request  # registered before the limiter's own hook, so it runs after it
    def _retry_after_only_on_429(resp: Response) -> Response:
        if resp.status_code not in (429, 503):
            resp.headers.pop("Retry-After", None)
        return resp

    limiter = Limiter(
        client_ip,
        app=app,
        storage_uri=settings.rate_limit_storage,
        strategy="moving-window",
        key_prefix=KEY_PREFIX,
        headers_enabled=True,
        in_memory_fallback_enabled=True,
    )
    citizen_ip = limiter.shared_limit(settings.rate_limit_citizen, scope="citizen", key_func=client_ip)
    per_link = limiter.shared_limit(settings.rate_limit_citizen, scope="link", key_func=link_key)
    api_calls = limiter.shared_limit(settings.rate_limit_api, scope="api", key_func=api_key)
    plan: dict[str, list[Callable[[Any], Any]]] = {
        "staff.login": [limiter.limit(settings.rate_limit_citizen, key_func=client_ip, methods=["POST"])],
        "staff.create": [limiter.limit(settings.rate_limit_start, key_func=staff_key)],
        "staff.new_link": [limiter.limit(settings.rate_limit_start, key_func=staff_key, methods=["POST"])],
        "citizen.start": [citizen_ip, per_link],
        "citizen.login": [citizen_ip, per_link],
        "digid.acs": [citizen_ip],
        "api.create_session": [api_calls, limiter.limit(settings.rate_limit_start, key_func=api_key)],
        "api.get_session": [api_calls],
        "api.complete_session": [api_calls],
        "api.openapi": [limiter.limit(settings.rate_limit_api, key_func=client_ip)],
    }
    app.extensions["zgwid_limiter"] = limiter
    for endpoint, decorators in plan.items():
        view = app.view_functions[endpoint]
        for decorate in decorators:
            view = decorate(view)
        app.view_functions[endpoint] = view
    return limiter


def allow_failed_api_key() -> bool:
    """Count a request with a missing or wrong API key against its address; False past ``rate_limit_api_auth_failures``.

    The API's own limits are per client and need a valid key, so guessing keys is limited here."""
    limiter: Limiter = current_app.extensions["zgwid_limiter"]
    limit = parse(current_app.extensions["zgwid"].settings.rate_limit_api_auth_failures)
    return bool(limiter.limiter.hit(limit, "api-auth-failure", client_ip()))
