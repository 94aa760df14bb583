"""The three flows end to end over HTTP: staff pages, citizen pages, the DigiD simulator, the sandbox."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from demo_driver import API_KEY, OTHER_API_KEY, Citizen, Staff, csrf, demo_app, run_worker
from zgw_identificatie.app import services_of
from zgw_identificatie.web.digid import LOGIUS_ERROR

BSN = "999993653"
OTHER_BSN = "999990019"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path)


def api_start(app, body, key=API_KEY):
    return app.test_client().post("/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("script_root", ["", "/identificatie"])
def test_the_citizen_url_in_the_answer_is_the_url_of_the_start_page(app, script_root):
    """presenters.citizen_url spells the link out instead of asking the URL map: it must stay what url_for
    builds, also when the service runs under a path prefix (SCRIPT_NAME)."""
    from flask import url_for

    client = app.test_client()
    env = {"SCRIPT_NAME": script_root}
    created = client.post("/api/v1/sessions", json={"flow": "mutual"}, headers=AUTH, environ_overrides=env)
    sid = created.get_json()["id"]
    status = client.get(f"/api/v1/sessions/{sid}", headers=AUTH, environ_overrides=env).get_json()
    base = services_of(app).settings.base_url.rstrip("/")
    with app.test_request_context(environ_overrides=env):
        expected = base + url_for("citizen.start", session_id=sid)
    assert script_root in expected
    assert created.get_json()["citizenUrl"] == status["citizenUrl"] == expected


def test_known_citizen_with_the_same_bsn_gets_the_same_code_and_the_api_says_they_match(app):
    """§2.2 over HTTP: API start → link → simulator login with the same BSN → equal codes, codeMatch true."""
    created = api_start(app, {"flow": "known-citizen", "bsn": BSN})
    assert created.status_code == 201
    body = created.get_json()
    assert BSN not in created.location and BSN not in body["citizenUrl"] and len(body["code"]) == 6
    result = Citizen.new(app).login(body["id"], bsn=BSN)
    assert result.status_code == 200
    shown = body["code"][:3] + " " + body["code"][3:]
    assert shown in result.text
    status = app.test_client().get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert status["codeMatch"] is True and status["progress"] == "match" and status["level"] == "midden"
    assert "bsn" not in status


def test_known_citizen_with_another_bsn_gets_another_code_and_the_api_says_no_match(app):
    """A different DigiD BSN → a different code on the citizen's page, codeMatch false."""
    body = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()
    result = Citizen.new(app).login(body["id"], bsn=OTHER_BSN)
    assert body["code"][:3] + " " + body["code"][3:] not in result.text
    status = app.test_client().get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert status["codeMatch"] is False and status["progress"] == "mismatch"


def test_cancel_at_digid_returns_to_the_start_page_with_a_cancel_message_and_allows_a_retry(app):
    """Logius T7: AuthnFailed → back at the start page, 'geannuleerd', the link still works."""
    staff = Staff.login(app)
    sid = staff.start("known-citizen", bsn=BSN)
    citizen = Citizen.new(app)
    resp = citizen.digid(sid, action="annuleren")
    assert resp.status_code == 303 and resp.location.endswith(f"/i/{sid}")
    page = citizen.client.get(f"/i/{sid}")
    assert page.status_code == 200 and "utrecht-alert--warning" in page.text
    assert "Inloggen met DigiD" in page.text
    assert citizen.login(sid, bsn=BSN).status_code == 200
    assert staff.status(sid)["progress"] == "match"


def test_a_level_below_the_required_one_shows_the_logius_sentence_and_ends_the_session(app):
    """Basis when Midden is required → Logius' fixed text; the link is dead afterwards."""
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    citizen = Citizen.new(app)
    resp = citizen.digid(sid, loa="basis")
    assert resp.status_code == 400 and LOGIUS_ERROR in resp.text
    assert Citizen.new(app).open(sid).status_code == 409


def test_a_higher_level_than_required_is_accepted(app):
    """Substantieel for a Midden flow is fine."""
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    Citizen.new(app).login(sid, bsn=BSN, loa="substantieel")
    status = app.test_client().get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()
    assert status["level"] == "substantieel" and status["codeMatch"] is True


def test_unknown_expired_and_used_links_get_clear_pages_and_start_no_login(app):
    """404 unknown, 410 expired, 409 used — and the login button is refused too."""
    assert Citizen.new(app).open("doesnotexist").status_code == 404
    sid = api_start(app, {"flow": "new-citizen"}).get_json()["id"]
    Citizen.new(app).login(sid)
    used = Citizen.new(app).open(sid)
    assert used.status_code == 409 and "al gebruikt" in used.text
    sid2 = api_start(app, {"flow": "mutual"}).get_json()["id"]
    store = services_of(app).store
    s = store.get(sid2)
    from dataclasses import replace

    store.update(replace(s, expires_at=s.created_at - timedelta(seconds=1)))
    expired = Citizen.new(app).open(sid2)
    assert expired.status_code == 410 and "verlopen" in expired.text
    citizen = Citizen.new(app)
    start = citizen.client.get("/i/doesnotexist")
    assert start.status_code == 404
    fresh = api_start(app, {"flow": "new-citizen"}).get_json()["id"]
    page = citizen.client.get(f"/i/{fresh}")  # any start page, for this browser's CSRF token
    posted = citizen.client.post(f"/i/{sid}/login", data={"csrf_token": csrf(page.text)})
    assert posted.status_code == 303 and posted.location.endswith(f"/i/{sid}/naar-digid")
    hand_off = citizen.client.get(posted.location)  # the link is checked on the hand-off page, once
    assert hand_off.status_code == 409 and "Met deze link is al ingelogd met DigiD." in hand_off.text
    assert "zgwid_login" not in hand_off.headers.get("Set-Cookie", "")
    unknown = citizen.client.post("/i/doesnotexist/login", data={"csrf_token": csrf(page.text)}, follow_redirects=True)
    assert unknown.status_code == 404 and "Deze link werkt niet" in unknown.text


def test_an_artifact_replayed_in_the_same_browser_is_refused(app):
    """The login flow cookie is single use: replaying DigiD's redirect gives the Logius page."""
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    citizen = Citizen.new(app)
    first = citizen.digid(sid)
    assert first.status_code == 303
    again = citizen.client.get(citizen.artifact_url)
    assert again.status_code == 400 and LOGIUS_ERROR in again.text


def test_an_artifact_delivered_to_another_browser_is_refused(app):
    """Login CSRF: the artifact of browser A used by browser B (no login flow cookie) → refused."""
    sid = api_start(app, {"flow": "known-citizen", "bsn": BSN}).get_json()["id"]
    citizen = Citizen.new(app)
    citizen.to_simulator(sid)
    page = citizen.to_simulator(sid)  # two flows; use the page of the second
    import re

    form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S).group(0)
    data = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))
    data.update({"bsn": BSN, "loa": "midden", "action": "inloggen"})
    back = citizen.client.post(re.search(r'action="([^"]*)"', form).group(1), data=data)
    other = app.test_client()
    resp = other.get(back.location.replace("http://testserver.local", ""))
    assert resp.status_code == 400 and LOGIUS_ERROR in resp.text
    assert app.test_client().get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()["state"] != "authenticated"


def test_staff_form_with_an_invalid_bsn_shows_a_dutch_field_error_and_does_not_echo_the_bsn(app):
    """400, an error next to the field, the typed value not put back in the page."""
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    resp = staff.client.post(
        "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": "123456789"}
    )
    assert resp.status_code == 400 and "geen geldig burgerservicenummer" in resp.text
    assert "123456789" not in resp.text and 'aria-invalid="true"' in resp.text


def test_new_citizen_gets_a_code_and_a_zaaknummer_and_the_zaak_has_the_rol_and_the_proof(app):
    """§2.1: DigiD → random code → zaak in the sandbox with the initiator rol (BSN) and a linked PDF."""
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    citizen = Citizen.new(app)
    pending = citizen.login(sid, bsn=BSN)
    assert "wordt aangemaakt" in pending.text and "data-refresh-link" in pending.text  # works without JS
    assert run_worker(app) >= 1
    status = staff.status(sid)
    assert status["registration"]["state"] == "done"
    zaak = status["zaak"]["identificatie"]
    page = citizen.client.get(f"/i/{sid}/klaar")
    assert zaak in page.text and status["code"][:3] + " " + status["code"][3:] in page.text
    backoffice = app.test_client().get("/sandbox/")
    assert zaak in backoffice.text and BSN in backoffice.text


def test_mutual_shows_the_behandelaar_to_the_citizen_and_the_bsn_to_the_behandelaar_then_erases(app):
    """§2.3: name on the citizen page, BSN and level to staff (page and JSON), Voltooien → BSN gone at once
    (a tombstone without personal data stays until expiry), the citizen link is dead."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    citizen = Citizen.new(app)
    start = citizen.open(sid)
    assert "Sanne de Vries van Gemeente Voorbeeld vraagt u in te loggen met DigiD" in start.text
    result = citizen.login(sid, bsn=BSN, loa="substantieel")
    assert "Sanne de Vries" in result.text and BSN not in result.text
    status = staff.status(sid)
    assert status["bsn"] == BSN and status["level"] == "substantieel"
    assert BSN in staff.client.get(f"/staff/sessions/{sid}").text
    engine = services_of(app).store.engine
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT bsn_enc FROM sessions WHERE id = :id"), {"id": sid}).scalar_one()
    assert BSN.encode() not in raw
    assert staff.complete(sid) == 303
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT state, bsn_enc FROM sessions WHERE id = :id"), {"id": sid}).one()
    assert tuple(row) == ("completed", None)
    assert "bsn" not in staff.status(sid) and BSN not in staff.client.get(f"/staff/sessions/{sid}").text
    dead = Citizen.new(app).open(sid)
    assert dead.status_code == 409 and BSN not in dead.text  # the link is used up
    events = services_of(app).store.list_audit(session_id=sid)
    erased = [e for e in events if e.event == "erased"]
    assert erased and erased[0].bsn_hash and BSN not in erased[0].bsn_hash


def test_a_behandelaar_cannot_see_another_behandelaars_session(app):
    """Ahmed gets a 404 for Sanne's session page, JSON and Voltooien."""
    sid = Staff.login(app, "sanne").start("mutual")
    ahmed = Staff.login(app, "ahmed")
    assert ahmed.client.get(f"/staff/sessions/{sid}").status_code == 404
    assert ahmed.client.get(f"/staff/sessions/{sid}/status.json").status_code == 404
    assert services_of(app).store.get(sid) is not None


def test_an_api_client_cannot_read_another_clients_session(app):
    """Sessions are visible only to the client that created them."""
    sid = api_start(app, {"flow": "mutual"}).get_json()["id"]
    other = app.test_client().get(f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {OTHER_API_KEY}"})
    assert other.status_code == 404


def test_the_api_mutual_flow_hands_over_the_bsn_and_complete_erases_it(app):
    """GET shows the BSN once logged in; POST complete → 204 and the BSN is gone; completing twice is a no-op."""
    body = api_start(app, {"flow": "mutual"}).get_json()
    assert body["behandelaar"] == "Team Burgerzaken"
    Citizen.new(app).login(body["id"], bsn=OTHER_BSN)
    client = app.test_client()
    assert client.get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()["bsn"] == OTHER_BSN
    assert client.post(f"/api/v1/sessions/{body['id']}/complete", headers=AUTH).status_code == 204
    after = client.get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert after["state"] == "completed" and "bsn" not in after and OTHER_BSN not in json.dumps(after)
    assert client.post(f"/api/v1/sessions/{body['id']}/complete", headers=AUTH).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"flow": "known-citizen", "bsn": "123456789"}, "bsn"),
        ({"flow": "known-citizen"}, "bsn"),
        ({"flow": "known-citizen", "bsn": 999993653}, "bsn"),
        ({"flow": "sideways"}, "flow"),
        ({"flow": "mutual", "level": "laag"}, "level"),
        ({"flow": "mutual", "zaak": "x" * 41}, "zaak"),
        ({"flow": "new-citizen", "bsn": BSN}, "bsn"),
        ({"flow": "mutual", "colour": "blue"}, "colour"),
        ({"flow": "mutual", "register": "yes"}, "register"),
    ],
)
def test_invalid_api_input_answers_400_with_the_field_named(app, body, field):
    """problem+json with invalidParams[0].name = the wrong field; never a 500."""
    resp = api_start(app, body)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["invalidParams"][0]["name"] == field


def test_the_api_refuses_requests_without_a_valid_key(app):
    """401 problem+json; the OpenAPI document itself is public."""
    client = app.test_client()
    assert client.post("/api/v1/sessions", json={"flow": "mutual"}).status_code == 401
    assert client.get("/api/v1/sessions/x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/v1/sessions", data="not json", headers=AUTH).status_code == 400
    assert client.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.")


def test_no_bsn_appears_in_any_log_record_or_url_during_all_flows(app, caplog):
    """Privacy by construction: DEBUG logging through every flow holds no BSN; no Location has one."""
    caplog.set_level(logging.DEBUG)
    locations = []
    staff = Staff.login(app)
    for flow, fields in [("known-citizen", {"bsn": BSN}), ("new-citizen", {}), ("mutual", {})]:
        sid = staff.start(flow, **fields)
        citizen = Citizen.new(app)
        resp = citizen.digid(sid, bsn=BSN)
        locations.append(resp.location or "")
        locations.append(citizen.artifact_url)
        run_worker(app)
        staff.status(sid)
        staff.complete(sid)
    api_start(app, {"flow": "known-citizen", "bsn": "123456789"})
    for record in caplog.records:
        assert BSN not in record.getMessage(), record.getMessage()
    assert all(BSN not in loc for loc in locations)
    assert caplog.records, "the flows logged nothing at all, so the check above proves nothing"
