"""Attacks on the DigiD login through the real web path (notes §8.1–3, 18, 21–23; R5, R12–R14, R17, R18).

The adapter-level catalogue lives in test_saml_attacks.py; here every attack goes through Flask: the
citizen's browser (test client with cookies), our ACS, the real SAML SP, the DigiD simulator on the
back channel, and the SQL store. Each ends with no identification and the right page or 4xx, never a 500.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from lxml import etree
from requests.adapters import BaseAdapter

from demo_driver import API_KEY, BASE_URL, Citizen, Staff, csrf, demo_app, path_of
from zgw_identificatie.adapters.digid.artifact import make_artifact
from zgw_identificatie.adapters.digid.config import simulator_idp_entity_id
from zgw_identificatie.adapters.digid.keys import read_pem, simulator_key_files
from zgw_identificatie.app import create_app, services_of
from zgw_identificatie.demo import DemoInProduction
from zgw_identificatie.demo.digid_simulator import DigidMessages
from zgw_identificatie.demo.wsgi_transport import WSGITransport
from zgw_identificatie.domain.sessions import SessionReason, SessionState
from zgw_identificatie.settings import ConfigError, load_settings
from zgw_identificatie.web.digid import LOGIUS_ERROR

BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CANCELLED = "U heeft het inloggen met DigiD gestopt"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol"}


@pytest.fixture
def app(tmp_path):
    # Rate limits have their own tests; these make more requests from one address than a citizen would.
    return demo_app(tmp_path, rate_limit_citizen="1000/minute")


def api_start(app, flow="known-citizen"):
    body = {"flow": flow, "bsn": BSN} if flow == "known-citizen" else {"flow": flow}
    resp = app.test_client().post("/api/v1/sessions", json=body, headers=AUTH)
    assert resp.status_code == 201
    return resp.get_json()["id"]


def front_channel(citizen: Citizen, sid: str, *, action: str = "inloggen", bsn: str = BSN) -> tuple[str, str]:
    """Open the link, go to the simulator, log in; returns DigiD's (SAMLart, RelayState), not yet delivered."""
    page = citizen.to_simulator(sid)
    form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S).group(0)
    data = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
    data.update({"bsn": bsn, "loa": "midden", "action": action})
    back = citizen.client.post(path_of(re.search(r'action="([^"]*)"', form).group(1)), data=data)
    assert back.status_code == 302
    query = parse_qs(urlsplit(back.location).query)
    return query["SAMLart"][0], query["RelayState"][0]


def acs(client, **params: str):
    return client.get("/digid/acs?" + urlencode(params))


def assert_logius_page(resp, status: int = 400) -> None:
    assert resp.status_code == status, resp.status_code
    assert LOGIUS_ERROR in resp.text
    assert "Location" not in resp.headers
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["Cache-Control"] == "no-store"


def assert_not_identified(app, sid: str) -> None:
    """No identification: the session is not authenticated, holds no code from DigiD and no BSN."""
    ident = services_of(app).store.get(sid)
    if ident is not None:
        assert ident.state not in (SessionState.AUTHENTICATED, SessionState.COMPLETED), ident.state
        assert ident.citizen_code is None or (ident.flow.value == "new-citizen" and ident.authenticated_at is None)
        assert ident.bsn is None and ident.authenticated_at is None
    events = services_of(app).store.list_audit(session_id=sid)
    assert not [e for e in events if e.event == "digid-login" and e.outcome == "ok"]


# -- the binding: only GET ?SAMLart=…&RelayState=… (R5) --------------------------------------------------


def test_a_saml_response_posted_to_the_acs_is_refused(app):
    """The POST binding is not ours: no CSRF token → 400; nothing is processed."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    front_channel(citizen, sid)
    resp = citizen.client.post("/digid/acs", data={"SAMLResponse": "PHNhbWxwOlJlc3BvbnNlLz4=", "RelayState": "x"})
    assert resp.status_code in (400, 405)
    assert_not_identified(app, sid)


def test_a_saml_response_posted_with_a_csrf_token_is_still_refused(app):
    sid = api_start(app)
    citizen = Citizen.new(app)
    token = csrf(citizen.open(sid).text)
    resp = citizen.client.post("/digid/acs", data={"SAMLResponse": "PHg+", "csrf_token": token})
    assert resp.status_code == 405
    assert_not_identified(app, sid)


def test_a_saml_response_in_the_query_is_refused_even_with_a_valid_artifact(app):
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=relay, SAMLResponse="PHg+"))
    assert_not_identified(app, sid)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"RelayState": "RELAY"}, id="no-SAMLart"),
        pytest.param({"SAMLart": "", "RelayState": "RELAY"}, id="empty-SAMLart"),
        pytest.param({"SAMLart": "A" * 10240, "RelayState": "RELAY"}, id="10kB-SAMLart"),
        pytest.param({"SAMLart": "A" * 201, "RelayState": "RELAY"}, id="201-byte-SAMLart"),
        pytest.param({"SAMLart": "!!!not*base64!!!", "RelayState": "RELAY"}, id="garbage-SAMLart"),
        pytest.param({"SAMLart": "AAQAAA==", "RelayState": "RELAY"}, id="short-SAMLart"),
        pytest.param({"SAMLart": "ARTIFACT\x00", "RelayState": "RELAY"}, id="nul-byte"),
        pytest.param({"SAMLart": "ARTIFACT"}, id="no-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": ""}, id="empty-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "https://evil.example/"}, id="off-site-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "//evil.example"}, id="scheme-relative-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "javascript:alert(1)"}, id="javascript-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "/staff/"}, id="local-path-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "R" * 81}, id="81-byte-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "é" * 41}, id="82-utf8-byte-RelayState"),
        pytest.param({"SAMLart": "ARTIFACT", "RelayState": "RELAY" + "x" * 5000}, id="5kB-RelayState"),
    ],
)
def test_missing_oversized_garbage_or_foreign_parameters_give_the_logius_page(app, params):
    """§8.1/§8.21: with this browser's valid login flow, any bad parameter → 400 Logius page, no redirect."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    real = {k: v.replace("ARTIFACT", artifact).replace("RELAY", relay) for k, v in params.items()}
    resp = acs(citizen.client, **real)
    assert_logius_page(resp)
    assert_not_identified(app, sid)
    for bad in ('href="https://evil', 'href="//evil', 'href="javascript:', 'action="https://evil'):
        assert bad not in resp.text


def test_after_a_refused_acs_call_the_browser_session_is_ended(app):
    """R18: the local session ends on every failure (the CSRF token no longer works)."""
    sid = api_start(app, "mutual")
    citizen = Citizen.new(app)
    token = csrf(citizen.open(sid).text)
    artifact, _ = front_channel(citizen, sid)
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState="wrong"))
    assert citizen.client.post(f"/i/{sid}/login", data={"csrf_token": token}).status_code == 400
    assert "zgwid_login=;" in acs(citizen.client, SAMLart=artifact, RelayState="x").headers.get("Set-Cookie", "")


# -- binding to the browser and to the flow (R12, R13) -----------------------------------------------------


def test_the_relay_state_of_another_flow_is_refused(app):
    """Two logins in one browser: the artifact of flow 2 with the RelayState of flow 1 → refused."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    _, first_relay = front_channel(citizen, sid)
    artifact, second_relay = front_channel(citizen, sid)
    assert first_relay != second_relay
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=first_relay))
    assert_not_identified(app, sid)


def test_the_relay_state_of_another_browser_is_refused(app):
    sid = api_start(app)
    alice, mallory = Citizen.new(app), Citizen.new(app)
    artifact, _ = front_channel(alice, sid)
    _, mallory_relay = front_channel(mallory, api_start(app))
    assert_logius_page(acs(alice.client, SAMLart=artifact, RelayState=mallory_relay))
    assert_not_identified(app, sid)


def test_login_csrf_an_attackers_artifact_in_the_victims_browser_is_refused(app):
    """§8.3: Mallory logs in with her own BSN and makes Alice's browser deliver it (with or without
    Alice's own login flow); Alice's session is never identified as Mallory."""
    alice_sid = api_start(app)
    mallory = Citizen.new(app)
    artifact, relay = front_channel(mallory, api_start(app), bsn="999990019")
    fresh_browser = Citizen.new(app)
    assert_logius_page(acs(fresh_browser.client, SAMLart=artifact, RelayState=relay))
    alice = Citizen.new(app)
    front_channel(alice, alice_sid)  # Alice has her own login flow in this browser
    assert_logius_page(acs(alice.client, SAMLart=artifact, RelayState=relay))
    assert_not_identified(app, alice_sid)


def test_an_artifact_with_the_right_relay_state_but_from_another_flow_is_refused(app):
    """Mallory's artifact with Alice's RelayState and cookie: InResponseTo is Mallory's AuthnRequest → refused."""
    alice_sid, mallory_sid = api_start(app), api_start(app)
    mallory = Citizen.new(app)
    mallory_artifact, _ = front_channel(mallory, mallory_sid, bsn="999990019")
    alice = Citizen.new(app)
    alice.to_simulator(alice_sid)
    flow_relay = _relay_of_last_login(alice, alice_sid)
    assert_logius_page(acs(alice.client, SAMLart=mallory_artifact, RelayState=flow_relay))
    assert_not_identified(app, alice_sid)


def _relay_of_last_login(citizen: Citizen, sid: str) -> str:
    start = citizen.open(sid)
    hand_off = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(start.text)}, follow_redirects=True)
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', hand_off.text))["RelayState"]


def test_a_replayed_artifact_is_refused_and_does_not_undo_the_login(app):
    """§8.2: the second delivery (same browser, or another) is refused; the first login stands."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    first = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert first.status_code == 303
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=relay))
    assert_logius_page(acs(Citizen.new(app).client, SAMLart=artifact, RelayState=relay))
    assert services_of(app).store.get(sid).state is SessionState.AUTHENTICATED


def test_a_replayed_login_flow_cookie_with_a_fresh_artifact_is_refused(app):
    """The login flow is consumed at the first ACS call, even when that call failed."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    cookie = citizen.client.get_cookie("zgwid_login", path="/digid/").value
    assert_logius_page(acs(citizen.client, SAMLart="A" * 300, RelayState=relay))
    other = Citizen.new(app)
    other.client.set_cookie("zgwid_login", cookie, path="/digid/")
    assert_logius_page(acs(other.client, SAMLart=artifact, RelayState=relay))
    assert_not_identified(app, sid)


def test_a_forged_artifact_for_digid_gets_request_denied_and_the_logius_page(app):
    """§8.1: a well-formed artifact DigiD never issued → Requester/RequestDenied → generic page."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    _, relay = front_channel(citizen, sid)
    forged = make_artifact(simulator_idp_entity_id(BASE_URL))
    assert_logius_page(acs(citizen.client, SAMLart=forged, RelayState=relay))
    assert_not_identified(app, sid)
    assert Citizen.new(app).open(sid).status_code == 409  # R18: a failed login ends the identification


# -- call-link abuse (§8.22) -------------------------------------------------------------------------------


def test_an_expired_link_starts_no_login(app):
    sid = api_start(app)
    citizen = Citizen.new(app)
    token = csrf(citizen.open(sid).text)
    store = services_of(app).store
    s = store.get(sid)
    store.update(replace(s, expires_at=s.created_at - timedelta(seconds=1)))
    assert citizen.open(sid).status_code == 410
    resp = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": token}, follow_redirects=True)
    assert [r.status_code for r in resp.history] == [303]  # the hand-off page checks the link
    assert (
        resp.status_code == 410 and "verlopen" in resp.text and "zgwid_login" not in resp.headers.get("Set-Cookie", "")
    )


def test_a_link_that_expires_during_the_digid_login_is_not_identified_and_says_the_link_expired(app):
    """Not a DigiD error, so not Logius' sentence: the citizen reads that the link expired; staff see why."""
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    store = services_of(app).store
    s = store.get(sid)
    store.update(replace(s, expires_at=s.created_at - timedelta(seconds=1)))
    resp = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert resp.status_code == 410
    assert "Deze link is verlopen" in resp.text and "terwijl u bij DigiD aan het inloggen was" in resp.text
    assert "Vraag de medewerker in het videogesprek om een nieuwe link." in resp.text
    assert LOGIUS_ERROR not in resp.text and "Location" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    assert_not_identified(app, sid)
    failed = store.get(sid)
    assert failed.state is SessionState.FAILED and failed.reason is SessionReason.EXPIRED_DURING_LOGIN
    assert failed.ended_at is not None
    # the browser session ended, and the login flow is used up: the same artifact again is the Logius page
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=relay))


def test_a_too_low_level_says_logius_sentence_and_which_level_this_call_needs(app):
    """Guide §2.4: Logius' sentence verbatim, then the level this call needs and how to get it."""
    resp = app.test_client().post(
        "/api/v1/sessions", json={"flow": "known-citizen", "bsn": BSN, "level": "substantieel"}, headers=AUTH
    )
    sid = resp.get_json()["id"]
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)  # the simulator logs in at Midden: lower than asked
    page = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert_logius_page(page)
    assert "Voor dit gesprek is DigiD met het niveau Substantieel nodig." in page.text
    assert "DigiD app met ID-check" in page.text
    ident = services_of(app).store.get(sid)
    assert ident.state is SessionState.FAILED and ident.reason is SessionReason.LEVEL_TOO_LOW
    again = Citizen.new(app).open(sid)
    assert again.status_code == 409 and "Uw DigiD-niveau is te laag voor dit gesprek" in again.text
    assert "Substantieel" in again.text and "Met deze link is al ingelogd" not in again.text


def test_no_authn_context_from_digid_is_recorded_as_a_too_low_level(app):
    sid = api_start(app)
    serve_status(app, "Responder", "NoAuthnContext")
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    page = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert_logius_page(page)
    assert "Voor dit gesprek is DigiD met het niveau Midden nodig." in page.text
    assert services_of(app).store.get(sid).reason is SessionReason.LEVEL_TOO_LOW


def test_other_digid_errors_are_recorded_as_digid_errors_and_the_link_says_so(app):
    sid = api_start(app)
    serve_status(app, "Requester", "RequestDenied")
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    page = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert_logius_page(page)
    assert "niveau" not in page.text
    assert services_of(app).store.get(sid).reason is SessionReason.DIGID_ERROR
    again = Citizen.new(app).open(sid)
    assert again.status_code == 409 and "Inloggen met deze link is niet gelukt" in again.text


def test_a_used_link_starts_no_second_login(app):
    sid = api_start(app)
    Citizen.new(app).login(sid, bsn=BSN)
    again = Citizen.new(app)
    assert again.open(sid).status_code == 409
    token = csrf(again.open(api_start(app)).text)
    resp = again.client.post(f"/i/{sid}/login", data={"csrf_token": token}, follow_redirects=True)
    assert resp.status_code == 409 and "zgwid_login" not in resp.headers.get("Set-Cookie", "")


def test_a_second_login_flow_on_the_same_link_cannot_overwrite_the_first_identification(app):
    """Two browsers start a login on one link; the first to return wins, the second is refused."""
    sid = api_start(app)
    first, second = Citizen.new(app), Citizen.new(app)
    a_artifact, a_relay = front_channel(first, sid)
    b_artifact, b_relay = front_channel(second, sid, bsn="999990019")
    assert acs(first.client, SAMLart=a_artifact, RelayState=a_relay).status_code == 303
    assert_logius_page(acs(second.client, SAMLart=b_artifact, RelayState=b_relay))
    status = app.test_client().get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()
    assert status["codeMatch"] is True  # still the first citizen's login


def test_a_revoked_link_starts_no_login_and_an_open_login_flow_dies_with_it(app):
    """The behandelaar clicks "Link intrekken" (Voltooien before the login) → link dead, ACS refused."""
    staff = Staff.login(app)
    sid = staff.start("known-citizen", bsn=BSN)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    assert staff.complete(sid) == 303
    assert services_of(app).store.get(sid).state == "withdrawn"
    assert citizen.open(sid).status_code == 409
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=relay))
    withdrawn = [e for e in services_of(app).store.list_audit(session_id=sid) if e.event == "withdrawn"]
    assert withdrawn
    assert services_of(app).store.get(sid).state == "withdrawn"  # the refused ACS did not turn it into a failure


def test_a_citizen_logged_in_for_call_y_cannot_see_the_result_of_call_x(app):
    """The result page is bound to the session the browser logged in for."""
    x, y = api_start(app), api_start(app)
    citizen = Citizen.new(app)
    assert citizen.login(y, bsn=BSN).status_code == 200
    assert citizen.client.get(f"/i/{x}/klaar").status_code == 404
    start = citizen.open(x)
    assert start.status_code == 200 and "Inloggen met DigiD" in start.text  # x needs its own login
    assert_not_identified(app, x)


def test_the_result_is_visible_only_to_the_owning_behandelaar(app):
    sid = Staff.login(app, "sanne").start("mutual")
    Citizen.new(app).login(sid, bsn=BSN)
    ahmed = Staff.login(app, "ahmed")
    for path in (f"/staff/sessions/{sid}", f"/staff/sessions/{sid}/status.json", f"/staff/sessions/{sid}/status.html"):
        resp = ahmed.client.get(path)
        assert resp.status_code == 404 and BSN not in resp.text
    other_api = app.test_client().get(f"/api/v1/sessions/{sid}", headers=AUTH)
    assert other_api.status_code == 404 and BSN not in other_api.text


# -- DigiD status codes (§8.18, R17, R18) ------------------------------------------------------------------


def test_a_cancel_at_digid_returns_to_the_start_page_and_the_link_still_works(app):
    sid = api_start(app)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid, action="annuleren")
    resp = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert resp.status_code == 303 and path_of(resp.location) == f"/i/{sid}"
    page = citizen.client.get(f"/i/{sid}")
    assert CANCELLED in page.text
    assert_not_identified(app, sid)
    assert services_of(app).store.get(sid).state is SessionState.OPENED


class RewritingArs(BaseAdapter):
    """DigiD's artifact resolution service with a chosen answer: the simulator resolves the artifact,
    then the answer is re-issued (signed with the simulator's IdP key) with another status."""

    def __init__(self, app, top: str, sub: str | None, message: str | None, *, with_response: bool = True) -> None:
        super().__init__()
        self.inner = WSGITransport(app)
        settings = services_of(app).settings
        files = simulator_key_files(settings.instance_path)
        self.messages = DigidMessages(
            idp_entity_id=simulator_idp_entity_id(settings.base_url),
            sp_entity_id=settings.sp_entity_id,
            key_pem=read_pem(files.idp_key),
            cert_pem=read_pem(files.idp_cert),
        )
        self.status, self.message, self.with_response = (top, sub), message, with_response
        self.acs_url = settings.base_url.rstrip("/") + "/digid/acs"

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        real = self.inner.send(request, **kwargs)
        root = etree.fromstring(real.content)
        resolve_id = root.xpath("//samlp:ArtifactResponse/@InResponseTo", namespaces=NS)[0]
        request_id = root.xpath("//samlp:Response/@InResponseTo", namespaces=NS)[0]
        from zgw_identificatie.testing.clock import FixedClock

        now = FixedClock().now()
        response = self.messages.response(
            now=now,
            in_response_to=request_id,
            acs_url=self.acs_url,
            assertion=None,
            status=self.status,
            status_message=self.message,
        )
        body = self.messages.artifact_response(
            now=now, in_response_to=resolve_id, response=response if self.with_response else None
        )
        out = requests.Response()
        out.status_code, out.headers, out.request, out.url = 200, real.headers, request, request.url
        import io

        out.raw = io.BytesIO(body)
        return out

    def close(self) -> None:
        pass


def serve_status(app, top, sub=None, message=None, **kw):
    http = services_of(app).idp._http
    http.mount(BASE_URL + "/demo/digid/resolve", RewritingArs(app, top, sub, message, **kw))


@pytest.mark.parametrize("message", [None, "Authentication cancelled"])
def test_authn_failed_from_digid_is_the_cancel_page_with_and_without_a_status_message(app, message):
    sid = api_start(app)
    serve_status(app, "Responder", "AuthnFailed", message)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    resp = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert resp.status_code == 303 and path_of(resp.location) == f"/i/{sid}"
    assert CANCELLED in citizen.client.get(f"/i/{sid}").text
    assert_not_identified(app, sid)


@pytest.mark.parametrize(
    ("top", "sub"),
    [
        ("Responder", "NoAuthnContext"),
        ("Requester", "RequestDenied"),
        ("Responder", "RequestDenied"),
        ("Requester", "NoSupportedIDP"),
        ("Requester", "RequestUnsupported"),
        ("Responder", "AuthnFailedButUnknown"),
        ("Requester", "AuthnFailed"),
        ("Responder", None),
        ("Success", None),
    ],
)
def test_every_other_digid_status_is_the_logius_page_and_ends_the_identification(app, top, sub):
    """R18: the fixed Logius sentence, 400, no identification, the link is dead (a new one is needed)."""
    sid = api_start(app)
    serve_status(app, top, sub, "details that must not be shown")
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    resp = acs(citizen.client, SAMLart=artifact, RelayState=relay)
    assert_logius_page(resp)
    assert "details that must not be shown" not in resp.text
    assert_not_identified(app, sid)
    assert services_of(app).store.get(sid).state is SessionState.FAILED
    assert Citizen.new(app).open(sid).status_code == 409


def test_success_without_a_response_the_expired_artifact_case_is_the_logius_page(app):
    sid = api_start(app)
    serve_status(app, "Success", None, with_response=False)
    citizen = Citizen.new(app)
    artifact, relay = front_channel(citizen, sid)
    assert_logius_page(acs(citizen.client, SAMLart=artifact, RelayState=relay))
    assert_not_identified(app, sid)


# -- the simulator and the sandbox never run in production (§8.23, R28) -------------------------------------


def production_environ(**extra: str) -> dict[str, str]:
    from zgw_identificatie.adapters.crypto import generate_key

    strong = "p" * 40
    env = {
        "ZGWID_ENV": "production",
        "ZGWID_BASE_URL": "https://id.gemeente.example",
        "ZGWID_SECRET_KEY": strong,
        "ZGWID_CODE_KEY": strong + "c",
        "ZGWID_AUDIT_HASH_KEY": strong + "a",
        "ZGWID_ENCRYPTION_KEYS": generate_key(),
        "ZGWID_DATABASE_URL": "postgresql+psycopg://u@db.invalid/zgwid",
        "ZGWID_DIGID_SIMULATOR": "false",
        "ZGWID_DIGID_IDP_ENTITY_ID": "https://was.digid.nl/saml/idp/metadata",
        "ZGWID_DIGID_IDP_SSO_URL": "https://digid.nl/saml/idp/request_authentication",
        "ZGWID_DIGID_IDP_ARS_URL": "https://was.digid.nl/saml/idp/resolve_artifact",
        "ZGWID_DIGID_IDP_CERT_FILES": "/certs/digid.pem",
        "ZGWID_DIGID_SP_KEY_FILE": "/certs/sp.key",
        "ZGWID_DIGID_SP_CERT_FILE": "/certs/sp.crt",
        "ZGWID_ZGW_SANDBOX": "false",
        "ZGWID_ZGW_ZAKEN_URL": "https://oz.example/zaken/api/v1/",
        "ZGWID_ZGW_DOCUMENTEN_URL": "https://oz.example/documenten/api/v1/",
        "ZGWID_ZGW_CATALOGI_URL": "https://oz.example/catalogi/api/v1/",
        "ZGWID_ZGW_SECRET": "zgw-secret-for-production",
    }
    env.update(extra)
    return env


@pytest.mark.parametrize("variable", ["ZGWID_DIGID_SIMULATOR", "ZGWID_ZGW_SANDBOX"])
def test_production_settings_refuse_the_simulator_and_the_sandbox(variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(production_environ(**{variable: "true"}))


@pytest.mark.parametrize("section", ["digid", "zgw"])
def test_create_app_refuses_the_simulator_or_sandbox_in_production_even_unvalidated(tmp_path, section):
    """Defence in depth: settings that skipped validation still cannot start a stand-in."""
    settings = load_settings(production_environ(), validate=False, instance_path=str(tmp_path))
    if section == "digid":
        settings.digid.simulator = True
    else:
        settings.zgw.sandbox = True
    from zgw_identificatie.testing.digid import FakeIdentityProvider
    from zgw_identificatie.testing.store import InMemorySessionStore
    from zgw_identificatie.testing.zgw import FakeZaakRegistry

    with pytest.raises(DemoInProduction):
        create_app(
            settings,
            adapters={"store": InMemorySessionStore(), "idp": FakeIdentityProvider(), "registry": FakeZaakRegistry()},
        )


def test_a_production_app_has_no_demo_or_sandbox_routes(tmp_path):
    """§8.23: /demo/… and /sandbox/… are 404 (not 401, not 405): the routes do not exist."""
    from zgw_identificatie.adapters.proof_seal import generate_seal_certificate
    from zgw_identificatie.testing.digid import FakeIdentityProvider
    from zgw_identificatie.testing.store import InMemorySessionStore
    from zgw_identificatie.testing.zgw import FakeZaakRegistry

    key, cert = generate_seal_certificate("Gemeente zegel (test)")
    (tmp_path / "seal.key").write_bytes(key)
    (tmp_path / "seal.crt").write_bytes(cert)
    seal = {"ZGWID_SEAL_KEY_FILE": str(tmp_path / "seal.key"), "ZGWID_SEAL_CERT_FILE": str(tmp_path / "seal.crt")}
    settings = load_settings(production_environ(**seal), instance_path=str(tmp_path))
    app = create_app(
        settings,
        adapters={"store": InMemorySessionStore(), "idp": FakeIdentityProvider(), "registry": FakeZaakRegistry()},
    )
    assert not [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(("/demo", "/sandbox"))]
    cli = app.test_client()
    base = "https://id.gemeente.example"
    for method, path in [
        ("GET", "/demo/digid/metadata"),
        ("POST", "/demo/digid/sso"),
        ("GET", "/demo/digid/inloggen"),
        ("POST", "/demo/digid/login"),
        ("POST", "/demo/digid/resolve"),
        ("GET", "/sandbox/"),
        ("GET", "/sandbox/zaken/api/v1/zaken"),
    ]:
        resp = cli.open(path, method=method, base_url=base)
        assert resp.status_code in (404, 400), (path, resp.status_code)  # POST: CSRF refuses first
        if method == "GET":
            assert resp.status_code == 404, path
    assert cli.get("/staff/login", base_url=base).status_code == 200
    assert "Strict-Transport-Security" in cli.get("/staff/login", base_url=base).headers
