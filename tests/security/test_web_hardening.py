"""Web hardening over HTTP (notes R15, R27; NCSC U/WA.03–05): CSRF, headers, CSP, cookies, idle
time-outs and rate limits, against the demo app with the real SAML simulator and the ZGW sandbox."""

from __future__ import annotations

import re
import secrets
import time
import types
from pathlib import Path

import pytest

from demo_driver import API_KEY, OTHER_API_KEY, Citizen, Staff, csrf, demo_app
from zgw_identificatie.web import citizen as citizen_module
from zgw_identificatie.web import security

BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SRC = Path(__file__).resolve().parents[2] / "src" / "zgw_identificatie"
UNPROTECTED_POST_PREFIXES = ("/api/", "/demo/", "/sandbox/")


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path)


def client_at(app, address: str):
    """A browser at another client address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def link() -> str:
    return "/i/" + secrets.token_urlsafe(24)


def api_start(app, body, key=API_KEY):
    return app.test_client().post("/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"})


class Clock:
    """A stand-in for the ``time`` module of one web module: real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def later(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(security, "time", types.SimpleNamespace(time=clock.time))
    monkeypatch.setattr(citizen_module, "time", types.SimpleNamespace(time=clock.time))
    return clock


# -- CSRF ------------------------------------------------------------------------------------------------


def form_post_rules(app):
    """Every POST route of ours that a browser form reaches (the API, simulator and sandbox are not)."""
    rules = [r for r in app.url_map.iter_rules() if "POST" in (r.methods or set())]
    return [r for r in rules if not r.rule.startswith(UNPROTECTED_POST_PREFIXES)]


def concrete(rule, session_id: str) -> str:
    return re.sub(r"<[^>]+>", session_id, rule.rule)


def test_the_form_routes_are_the_ones_we_know(app):
    """The CSRF tests below cover every form POST; a new one must show up here (and is then covered)."""
    endpoints = {r.endpoint for r in form_post_rules(app)}
    assert {
        "staff.login",
        "staff.logout",
        "staff.create",
        "staff.complete",
        "staff.withdraw",
        "staff.new_link",
        "citizen.login",
        "citizen.logout",
    } <= endpoints


@pytest.mark.parametrize("token", ["missing", "wrong", "empty"])
def test_every_form_post_without_the_right_csrf_token_is_refused_with_400(app, token):
    """OWASP synchronizer token: staff (logged in) and citizen (with a session cookie) both get 400."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    citizen = Citizen.new(app)
    assert citizen.open(sid).status_code == 200  # the citizen's browser now holds a CSRF token
    data = {"flow": "mutual", "username": "sanne", "password": "x"}
    if token == "wrong":
        data["csrf_token"] = secrets.token_urlsafe(32)
    elif token == "empty":
        data["csrf_token"] = ""
    before = len(app.extensions["zgwid"].store.list_for_owner("local:sanne", limit=100))
    for rule in form_post_rules(app):
        for client in (staff.client, citizen.client, app.test_client()):
            resp = client.post(concrete(rule, sid), data=data)
            assert resp.status_code == 400, (rule.rule, resp.status_code)
            assert "Er ging iets mis met uw verzoek" in resp.text
    assert len(app.extensions["zgwid"].store.list_for_owner("local:sanne", limit=100)) == before
    assert staff.status(sid)["progress"] == "opened"  # not completed, not revoked


def test_a_csrf_token_of_another_browser_is_refused(app):
    """The token is bound to the browser session: Sanne's token does not work in Ahmed's browser."""
    sanne, ahmed = Staff.login(app, "sanne"), Staff.login(app, "ahmed")
    token = csrf(sanne.client.get("/staff/").text)
    resp = ahmed.client.post("/staff/sessions", data={"csrf_token": token, "flow": "mutual"})
    assert resp.status_code == 400


def test_the_api_needs_no_csrf_token_but_a_key(app):
    """The API authenticates with a key, not a cookie: no CSRF token, and no key → 401."""
    assert api_start(app, {"flow": "mutual"}).status_code == 201
    assert app.test_client().post("/api/v1/sessions", json={"flow": "mutual"}).status_code == 401


# -- security headers and CSP ----------------------------------------------------------------------------


def every_page_type(app):
    """(name, response) for each kind of page and document the service serves."""
    staff = Staff.login(app)
    sid = staff.start("known-citizen", bsn=BSN)
    citizen = Citizen.new(app)
    start = citizen.open(sid)
    to_digid = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True)
    other = Staff.login(app).start("new-citizen")
    done = Citizen.new(app)
    result = done.login(other)
    cli = app.test_client()
    static = cli.get("/static/app.css")
    static.get_data()
    static.close()
    return [
        ("staff login", cli.get("/staff/login")),
        ("staff index", staff.client.get("/staff/")),
        ("staff session", staff.client.get(f"/staff/sessions/{sid}")),
        ("staff status fragment", staff.client.get(f"/staff/sessions/{sid}/status.html")),
        ("staff status json", staff.client.get(f"/staff/sessions/{sid}/status.json")),
        ("citizen start", start),
        ("citizen to digid", to_digid),
        ("citizen result", result),
        ("not found page", cli.get("/i/doesnotexist")),
        ("digid error page", cli.get("/digid/acs?SAMLart=x&RelayState=y")),
        ("sp metadata", cli.get("/digid/metadata")),
        ("api json", cli.get(f"/api/v1/sessions/{sid}", headers=AUTH)),
        ("api problem", cli.get("/api/v1/sessions/x")),
        ("openapi", cli.get("/api/v1/openapi.json")),
        ("health", cli.get("/health/live")),
        ("static", static),
        ("redirect", cli.get("/")),
    ]


def csp_directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_page_type_has_strict_security_headers_and_a_csp_without_inline_script(app):
    """nosniff, DENY, no-referrer, no-store (not on static), and a CSP that allows no inline code."""
    for name, resp in every_page_type(app):
        h = resp.headers
        assert resp.status_code < 500, name
        assert h["X-Content-Type-Options"] == "nosniff", name
        assert h["X-Frame-Options"] == "DENY", name
        assert h["Referrer-Policy"] == "no-referrer", name
        assert "camera=()" in h["Permissions-Policy"], name
        assert h["X-Request-Id"], name
        if name != "static":
            assert h["Cache-Control"] == "no-store", name
        csp = csp_directives(h["Content-Security-Policy"])
        assert csp["default-src"] == ["'self'"], name
        assert csp["script-src"] == ["'self'"], name
        assert csp["style-src"] == ["'self'"], name
        assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], name
        assert csp["base-uri"] == ["'none'"], name
        assert not any("unsafe" in v or v == "*" for values in csp.values() for v in values), name
        assert "Strict-Transport-Security" not in h, f"{name}: HSTS over plain http is pointless"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on…= event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_has_inline_script_or_style():
    """The CSP allows neither, so a template that had them would break silently; catch it here."""
    templates = [p for p in SRC.rglob("*.html")]
    assert len(templates) >= 10
    sources = [(str(p.relative_to(SRC)), p.read_text(encoding="utf-8")) for p in templates]
    from zgw_identificatie.demo import digid_simulator

    sources.append(("demo/digid_simulator.py LOGIN_PAGE", digid_simulator.LOGIN_PAGE))
    for name, text in sources:
        for pattern, what in INLINE:
            assert not pattern.search(text), f"{name}: {what}"


def test_no_rendered_page_has_inline_script_or_style(app):
    """The same check on the HTML that is actually served (macros and includes expanded)."""
    for name, resp in every_page_type(app):
        if resp.mimetype != "text/html":
            continue
        for pattern, what in INLINE:
            assert not pattern.search(resp.text), f"{name}: {what}"


def test_the_csp_lets_forms_post_only_to_ourselves_and_digid(tmp_path):
    """form-action: 'self' plus the DigiD SSO origin (the simulator is ourselves)."""
    app = demo_app(tmp_path)
    csp = csp_directives(app.test_client().get("/staff/login").headers["Content-Security-Policy"])
    assert csp["form-action"][0] == "'self'" and all(
        v.startswith(("'self'", "http://testserver.local")) for v in csp["form-action"]
    )


def test_hsts_and_secure_cookies_when_the_base_url_is_https(tmp_path):
    """HSTS on every response, and the session cookie Secure, HttpOnly, SameSite=Lax."""
    app = demo_app(tmp_path / "https")
    app.extensions["zgwid"].settings.base_url = "https://testserver.local"
    app.config["SESSION_COOKIE_SECURE"] = True
    cli = app.test_client()
    resp = cli.get("/staff/login", base_url="https://testserver.local")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_https_app_configuration_sets_the_secure_cookie_flag(tmp_path):
    """create_app itself derives SESSION_COOKIE_SECURE from an https base_url."""
    from zgw_identificatie.app import create_app
    from zgw_identificatie.testing.settings import make_settings

    app = create_app(make_settings(tmp_path, base_url="https://zgwid.example"))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    resp = app.test_client().get("/staff/login", base_url="https://zgwid.example")
    assert "Strict-Transport-Security" in resp.headers
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_every_cookie_we_set_is_httponly_and_samesite(app):
    """Session cookie, DigiD login-flow cookie (path /digid/), language cookie."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    citizen = Citizen.new(app)
    start = citizen.open(sid)
    hand_off = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True)
    cookies = hand_off.headers.getlist("Set-Cookie") + start.headers.getlist("Set-Cookie")
    cookies += app.test_client().get("/taal/en").headers.getlist("Set-Cookie")
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"zgwid", "zgwid_login", "lang"} <= names
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    login_cookie = next(c for c in cookies if c.startswith("zgwid_login="))
    assert "Path=/digid/" in login_cookie and "Max-Age=900" in login_cookie


def test_the_login_flow_cookie_is_secure_with_https(tmp_path):
    app = demo_app(tmp_path)
    app.extensions["zgwid"].settings.base_url = "https://testserver.local"
    sid = api_start(app, {"flow": "mutual"}).get_json()["id"]
    cli = app.test_client()
    start = cli.get(f"/i/{sid}", base_url="https://testserver.local")
    resp = cli.post(
        f"/i/{sid}/login",
        data={"csrf_token": csrf(start.text)},
        base_url="https://testserver.local",
        follow_redirects=True,
    )
    login_cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("zgwid_login="))
    assert "Secure" in login_cookie


def test_the_language_switch_never_redirects_off_site(app):
    from urllib.parse import urlsplit

    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        resp = app.test_client().get("/taal/nl", query_string={"next": target})
        assert resp.status_code == 302
        parts = urlsplit(resp.location)
        assert parts.netloc in ("", "testserver.local") and parts.scheme in ("", "http"), target
        assert not resp.location.startswith("//") and "\\" not in resp.location, target


def test_the_staff_login_never_redirects_off_site(app):
    cli = app.test_client()
    page = cli.get("/staff/login")
    resp = cli.post(
        "/staff/login?next=//evil.example/x",
        data={"csrf_token": csrf(page.text), "username": "sanne", "password": "correct horse battery staple"},
    )
    assert resp.status_code == 302 and "evil" not in resp.location


def test_staff_login_rotates_the_session(app):
    """Session fixation: the CSRF token of the anonymous session does not survive the login."""
    cli = app.test_client()
    page = cli.get("/staff/login")
    before = csrf(page.text)
    cli.post(
        "/staff/login", data={"csrf_token": before, "username": "sanne", "password": "correct horse battery staple"}
    )
    after = csrf(cli.get("/staff/").text)
    assert after != before


# -- idle time-outs --------------------------------------------------------------------------------------


def test_the_staff_session_idles_out_after_staff_idle_minutes(app, later):
    """30 minutes without a request → back to the login page; activity keeps it alive."""
    staff = Staff.login(app)
    later.offset = 29 * 60
    assert staff.client.get("/staff/").status_code == 200  # activity: the idle clock restarts
    later.offset = 29 * 60 + 29 * 60
    assert staff.client.get("/staff/").status_code == 200
    later.offset += 31 * 60
    resp = staff.client.get("/staff/")
    assert resp.status_code == 302 and "/staff/login" in resp.location
    assert staff.client.get("/staff/sessions/x/status.json").status_code == 401


def test_live_status_polls_do_not_rewrite_the_login_cookie(app, later):
    """The staff page polls its status every second. Were each poll to send a new cookie, one answered after
    a later request (Voltooien, a log-out) would put the older cookie back: the flash lost, the log-out
    undone. The last-seen time is renewed at most once a minute, so polls send no cookie in between."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    for seconds in (1, 20, 59):
        later.offset = seconds
        poll = staff.client.get(f"/staff/sessions/{sid}/status.json")
        assert poll.status_code == 200 and "Set-Cookie" not in poll.headers, seconds
    later.offset = 61
    renewed = staff.client.get(f"/staff/sessions/{sid}/status.json")
    assert "zgwid=" in renewed.headers.get("Set-Cookie", "")  # a minute on: the idle clock moves on


def test_a_poll_answered_after_the_log_out_does_not_log_the_behandelaar_in_again(app, later):
    staff = Staff.login(app)
    sid = staff.start("mutual")
    later.offset = 30
    in_flight = staff.client.get(f"/staff/sessions/{sid}/status.json")  # sent before the log-out, answered after
    page = staff.client.get("/staff/")
    assert staff.client.post("/staff/logout", data={"csrf_token": csrf(page.text)}).status_code in (302, 303)
    assert "Set-Cookie" not in in_flight.headers  # so it has no older cookie to put back
    assert staff.client.get("/staff/").status_code == 302


def test_the_staff_session_ends_after_staff_max_hours_even_when_active(tmp_path, later):
    """An absolute cap: a copied staff cookie stops working after the working day, however busy."""
    app = demo_app(tmp_path, staff_max_hours=1)
    staff = Staff.login(app)
    for minutes in (20, 40, 59):
        later.offset = minutes * 60
        assert staff.client.get("/staff/").status_code == 200
    later.offset = 61 * 60
    resp = staff.client.get("/staff/")
    assert resp.status_code == 302 and "/staff/login" in resp.location


def test_the_citizen_session_idles_out_after_at_most_15_minutes(app, later):
    """DigiD norm: the result page is gone 15 minutes after the citizen's last request."""
    assert app.extensions["zgwid"].settings.citizen_idle_minutes <= 15
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    citizen = Citizen.new(app)
    assert citizen.login(sid, bsn=BSN).status_code == 200
    later.offset = 14 * 60
    assert citizen.client.get(f"/i/{sid}/klaar").status_code == 200
    later.offset = 14 * 60 + 15 * 60 + 1
    assert citizen.client.get(f"/i/{sid}/klaar").status_code == 404
    again = citizen.client.get(f"/i/{sid}")
    assert again.status_code == 409  # the session was ended, and the link is used


def test_the_citizen_session_has_an_absolute_cap_even_when_active(tmp_path, later):
    """R15: an idle time-out and an absolute cap; here session_minutes = 20, requests every 10 minutes."""
    app = demo_app(tmp_path, session_minutes=20)
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    citizen = Citizen.new(app)
    citizen.login(sid, bsn=BSN)
    for minutes in (10, 20):
        later.offset = minutes * 60 - 5
        assert citizen.client.get(f"/i/{sid}/klaar").status_code == 200
    later.offset = 20 * 60 + 5
    assert citizen.client.get(f"/i/{sid}/klaar").status_code == 404


def test_a_citizen_idle_time_out_above_15_minutes_is_refused(tmp_path):
    from zgw_identificatie.settings import ConfigError
    from zgw_identificatie.testing.settings import make_settings

    with pytest.raises(ConfigError, match="CITIZEN_IDLE_MINUTES"):
        make_settings(tmp_path, citizen_idle_minutes=16).validate()


# -- rate limits -----------------------------------------------------------------------------------------


def assert_people_page_429(resp):
    assert resp.status_code == 429
    assert "Te veel pogingen" in resp.text and resp.mimetype == "text/html"
    assert int(resp.headers["Retry-After"]) > 0


def assert_api_429(resp):
    assert resp.status_code == 429 and resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == 429 and body["title"]
    assert int(resp.headers["Retry-After"]) > 0


def test_the_staff_form_is_limited_per_behandelaar(tmp_path):
    """rate_limit_start per staff user: Sanne is stopped, Ahmed (same IP) is not."""
    app = demo_app(tmp_path, rate_limit_start="3/minute")
    sanne, ahmed = Staff.login(app, "sanne"), Staff.login(app, "ahmed")
    for _ in range(3):
        sanne.start("mutual")
    token = csrf(sanne.client.get("/staff/").text)
    assert_people_page_429(sanne.client.post("/staff/sessions", data={"csrf_token": token, "flow": "mutual"}))
    ahmed.start("mutual")


def test_the_staff_login_form_is_limited_per_ip(tmp_path):
    """Password guessing: rate_limit_citizen per client address on POST /staff/login."""
    app = demo_app(tmp_path, rate_limit_citizen="3/minute")
    cli = app.test_client()
    token = csrf(cli.get("/staff/login").text)
    for _ in range(3):
        assert (
            cli.post("/staff/login", data={"csrf_token": token, "username": "sanne", "password": "guess"}).status_code
            == 401
        )
    assert_people_page_429(
        cli.post("/staff/login", data={"csrf_token": token, "username": "sanne", "password": "guess"})
    )
    assert cli.get("/staff/login").status_code == 200  # the form itself still shows
    other = client_at(app, "192.0.2.7")
    token = csrf(other.get("/staff/login").text)
    assert (
        other.post("/staff/login", data={"csrf_token": token, "username": "sanne", "password": "guess"}).status_code
        == 401
    )


def test_api_session_starts_are_limited_per_api_client(tmp_path):
    app = demo_app(tmp_path, rate_limit_start="2/minute")
    for _ in range(2):
        assert api_start(app, {"flow": "mutual"}).status_code == 201
    assert_api_429(api_start(app, {"flow": "mutual"}))
    assert api_start(app, {"flow": "mutual"}, key=OTHER_API_KEY).status_code == 201


def test_api_calls_are_limited_per_api_client_across_operations(tmp_path):
    app = demo_app(tmp_path, rate_limit_api="4/minute")
    sid = api_start(app, {"flow": "mutual"}).get_json()["id"]
    cli = app.test_client()
    for _ in range(3):
        assert cli.get(f"/api/v1/sessions/{sid}", headers=AUTH).status_code == 200
    assert_api_429(cli.get(f"/api/v1/sessions/{sid}", headers=AUTH))
    assert_api_429(cli.post(f"/api/v1/sessions/{sid}/complete", headers=AUTH))
    other = {"Authorization": f"Bearer {OTHER_API_KEY}"}
    assert cli.get(f"/api/v1/sessions/{sid}", headers=other).status_code == 404


def test_opening_links_is_limited_per_client_ip(tmp_path):
    """Guessing links from one address: rate_limit_citizen; another address is not affected."""
    app = demo_app(tmp_path, rate_limit_citizen="5/minute")
    cli = app.test_client()
    for _ in range(5):
        assert cli.get(f"/i/{secrets.token_urlsafe(24)}").status_code == 404
    assert_people_page_429(cli.get(f"/i/{secrets.token_urlsafe(24)}"))
    other = client_at(app, "198.51.100.9")
    assert other.get(f"/i/{secrets.token_urlsafe(24)}").status_code == 404


def test_starting_digid_logins_counts_towards_the_same_per_ip_limit(tmp_path):
    """Open + login start + ACS share one per-address budget."""
    app = demo_app(tmp_path, rate_limit_citizen="4/minute")
    sid = api_start(app, {"flow": "mutual"}).get_json()["id"]
    cli = app.test_client()
    token = csrf(cli.get(f"/i/{sid}").text)
    assert cli.post(f"/i/{sid}/login", data={"csrf_token": token}).status_code == 303
    assert cli.post(f"/i/{sid}/login", data={"csrf_token": token}).status_code == 303
    assert cli.get("/digid/acs?SAMLart=x&RelayState=y").status_code == 400
    assert_people_page_429(cli.get("/digid/acs?SAMLart=x&RelayState=y"))
    assert_people_page_429(cli.get(f"/i/{sid}"))


def test_one_link_is_limited_per_link_from_many_addresses(tmp_path):
    """A link hammered from many addresses (a botnet) is limited on its own too."""
    app = demo_app(tmp_path, rate_limit_citizen="3/minute")
    sid = api_start(app, {"flow": "mutual"}).get_json()["id"]
    for i in range(3):
        assert client_at(app, f"203.0.113.{i}").get(f"/i/{sid}").status_code == 200
    assert_people_page_429(client_at(app, "203.0.113.50").get(f"/i/{sid}"))
    fresh = api_start(app, {"flow": "mutual"}).get_json()["id"]
    assert client_at(app, "203.0.113.51").get(f"/i/{fresh}").status_code == 200


def test_the_rate_limit_page_is_dutch_and_has_the_normal_headers(tmp_path):
    app = demo_app(tmp_path, rate_limit_citizen="1/minute")
    cli = app.test_client()
    cli.get("/i/x")
    resp = cli.get("/i/y")
    assert_people_page_429(resp)
    assert "Wacht een minuut" in resp.text
    assert resp.headers["X-Frame-Options"] == "DENY" and "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_retry_after_is_sent_only_on_429(tmp_path):
    app = demo_app(tmp_path)
    resp = app.test_client().get("/i/x")
    assert resp.status_code == 404 and "Retry-After" not in resp.headers


def test_a_spoofed_x_forwarded_for_is_ignored_without_trusted_proxies(tmp_path):
    """trusted_proxies = 0: the header is not believed, so rotating it does not escape the limit."""
    app = demo_app(tmp_path, rate_limit_citizen="2/minute")
    cli = app.test_client()
    for i in range(2):
        cli.get(link(), headers={"X-Forwarded-For": f"10.0.0.{i}"})
    assert cli.get(link(), headers={"X-Forwarded-For": "10.0.0.99"}).status_code == 429


def test_with_one_trusted_proxy_the_forwarded_address_is_the_client(tmp_path):
    """trusted_proxies = 1: ProxyFix takes the last X-Forwarded-For hop as the client address."""
    app = demo_app(tmp_path, rate_limit_citizen="2/minute", trusted_proxies=1)
    cli = app.test_client()
    for _ in range(2):
        cli.get(link(), headers={"X-Forwarded-For": "10.0.0.1"})
    assert cli.get(link(), headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429
    assert cli.get(link(), headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 404
    # a client cannot prepend its own hop: the proxy appends the real address last
    assert cli.get(link(), headers={"X-Forwarded-For": "10.0.0.3, 10.0.0.1"}).status_code == 429


def test_the_default_limits_allow_a_demo_walk_through(app):
    """Three flows, a cancel and a retry by one behandelaar and one citizen address: no 429."""
    staff = Staff.login(app)
    for flow in ("known-citizen", "new-citizen", "mutual"):
        sid = staff.start(flow, bsn=BSN) if flow == "known-citizen" else staff.start(flow)
        citizen = Citizen.new(app)
        citizen.digid(sid, action="annuleren")
        assert citizen.login(sid, bsn=BSN).status_code == 200
        assert staff.complete(sid) == 303


def redis_url() -> str:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 is not reachable ({exc}); the shared-limit test needs it")
    return "redis://127.0.0.1:6379"


def test_two_instances_share_their_limits_through_redis(tmp_path):
    """rate_limit_storage = redis://…: requests to instance A count on instance B (several replicas)."""
    url = redis_url()
    a = demo_app(tmp_path / "a", rate_limit_storage=url, rate_limit_citizen="4/minute")
    b = demo_app(tmp_path / "b", rate_limit_storage=url, rate_limit_citizen="4/minute")
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"  # no other run
    ca = client_at(a, address)
    cb = client_at(b, address)
    assert ca.get(link()).status_code == 404
    assert ca.get(link()).status_code == 404
    assert cb.get(link()).status_code == 404
    assert cb.get(link()).status_code == 404
    assert_people_page_429(ca.get(link()))
    assert_people_page_429(cb.get(link()))
    import redis

    keys = redis.Redis.from_url(url).keys("*zgwid*")
    assert keys, "the counters live in Redis"


def test_guessing_api_keys_is_limited_per_address(app):
    """Requests with a wrong key get 401, and after ten in a minute 429 with Retry-After."""
    client = app.test_client()
    statuses = [
        client.get("/api/v1/sessions/x", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(11)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    resp = client.get("/api/v1/sessions/x", headers={"Authorization": "Bearer guess"})
    assert resp.status_code == 429 and resp.headers["Retry-After"] and resp.mimetype == "application/problem+json"
