"""The API contract for zaaksystemen (issue 11): acting for a named behandelaar, list, withdraw, complete,
idempotent creates, answers that explain themselves, and the OpenAPI document that describes all of it."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from openapi_spec_validator import validate
from pypdf import PdfReader

from demo_driver import API_KEY, TEAM_API_KEY, TRUSTED_API_KEY, Citizen, Staff, demo_app, run_worker
from zgw_identificatie.app import services_of
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.web.openapi import OPENAPI, PROBLEM_TYPE_PREFIX, PROBLEM_TYPES

BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JAN = {"id": "zac:jdevries", "name": "Jan de Vries"}
ANNA = {"id": "zac:abakker", "name": "Anna Bakker"}


def trusted(behandelaar: dict[str, str] | None = None, key: str = TRUSTED_API_KEY) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if behandelaar:
        headers["X-Behandelaar-Id"] = behandelaar["id"]
    return headers


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path, clock=FixedClock(datetime.now(UTC)))


def create(app, body, headers=None):
    return app.test_client().post("/api/v1/sessions", json=body, headers=headers or AUTH)


# --- acting for a behandelaar ------------------------------------------------------------------------------


def test_a_mutual_session_for_a_named_behandelaar_shows_that_name_and_records_it_in_the_proof(app):
    """§2.3 through the API: the citizen reads the behandelaar's name (not the client's); the proof PDF
    has name and id; the session (what the registration's JWT is built from) carries both; audit too."""
    import jwt

    tokens: list[str] = []

    @app.before_request
    def _record_registration_jwts():
        from flask import request

        # the registration's own calls (the catalogue is resolved once, for all registrations)
        if request.path.startswith("/sandbox/") and "/api/v1/" in request.path and "/catalogi/" not in request.path:
            tokens.append(request.headers.get("Authorization", "").removeprefix("Bearer "))

    created = create(app, {"flow": "mutual", "register": True, "behandelaar": JAN}, trusted())
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["behandelaar"] == "Jan de Vries" and body["behandelaarId"] == "zac:jdevries"
    citizen = Citizen.new(app)
    assert "Jan de Vries van Gemeente Voorbeeld vraagt u in te loggen met DigiD" in citizen.open(body["id"]).text
    citizen.login(body["id"], bsn=BSN, loa="substantieel")
    session = services_of(app).store.get(body["id"])
    assert (session.owner_id, session.owner_name, session.client_id) == ("zac:jdevries", "Jan de Vries", "api:zac")
    assert run_worker(app) >= 1
    status = app.test_client().get(f"/api/v1/sessions/{body['id']}", headers=trusted(JAN)).get_json()
    assert status["registration"]["state"] == "done"
    assert status["zaak"]["identificatie"] and status["zaak"]["url"]
    assert len(status["documents"]) == 1
    # Open Zaak's audit trail names the person, not the API client: every registration call carries them.
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in tokens]  # the sandbox checked them
    assert len(claims) >= 5  # zaak, rol, status, document, link
    assert {(c["user_id"], c["user_representation"]) for c in claims} == {("zac:jdevries", "Jan de Vries")}
    sandbox = app.blueprints["sandbox"].sandbox
    document = status["documents"][0].split("/sandbox/", 1)[1]  # the sandbox keeps paths below its root
    text = PdfReader(io.BytesIO(sandbox.blobs[document])).pages[0].extract_text()
    assert "Jan de Vries" in text and "zac:jdevries" in text
    actors = {e.actor for e in services_of(app).store.list_audit(session_id=body["id"])}
    assert "zac:jdevries" in actors


def test_a_client_not_trusted_to_act_for_staff_gets_a_403_that_says_why(app):
    resp = create(app, {"flow": "mutual", "behandelaar": JAN})
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["type"] == PROBLEM_TYPE_PREFIX + "behandelaar-not-allowed"
    assert "acts_for_staff" in problem["detail"]
    assert services_of(app).store.list_sessions() == []


def test_a_trusted_client_must_name_the_behandelaar_and_each_behandelaar_sees_only_their_own(app):
    assert create(app, {"flow": "mutual"}, trusted()).status_code == 400  # who is in the call?
    jan = create(app, {"flow": "mutual", "behandelaar": JAN}, trusted()).get_json()["id"]
    anna = create(app, {"flow": "mutual", "behandelaar": ANNA}, trusted()).get_json()["id"]
    client = app.test_client()
    assert client.get(f"/api/v1/sessions/{jan}", headers=trusted(JAN)).status_code == 200
    assert client.get(f"/api/v1/sessions/{jan}", headers=trusted(ANNA)).status_code == 404
    assert client.delete(f"/api/v1/sessions/{jan}", headers=trusted(ANNA)).status_code == 404
    missing = client.get(f"/api/v1/sessions/{jan}", headers=trusted())
    assert missing.status_code == 400 and missing.get_json()["type"].endswith(":behandelaar-required")
    listed = client.get("/api/v1/sessions", headers=trusted(ANNA)).get_json()
    assert [s["id"] for s in listed["results"]] == [anna]
    # Another client (even one that acts for staff) never sees them.
    assert client.get(f"/api/v1/sessions/{jan}", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/sessions/{jan}", headers=trusted(JAN, TEAM_API_KEY)).status_code == 404


def test_a_team_client_sees_all_sessions_it_started_and_filters_by_behandelaar(app):
    headers = trusted(key=TEAM_API_KEY)
    jan = create(app, {"flow": "mutual", "behandelaar": JAN}, headers).get_json()["id"]
    anna = create(app, {"flow": "known-citizen", "bsn": BSN, "behandelaar": ANNA}, headers).get_json()["id"]
    client = app.test_client()
    everyone = client.get("/api/v1/sessions", headers=headers).get_json()["results"]
    assert {s["id"] for s in everyone} == {jan, anna}
    only_anna = client.get("/api/v1/sessions?behandelaar=zac:abakker", headers=headers).get_json()["results"]
    assert [s["id"] for s in only_anna] == [anna]


def test_a_session_for_a_behandelaar_whose_id_is_their_staff_login_is_on_their_staff_page(app):
    """The staff pages show a behandelaar their sessions, also those a zaaksysteem started for them."""
    sid = create(app, {"flow": "mutual", "behandelaar": {"id": "local:sanne", "name": "Sanne"}}, trusted()).get_json()
    staff = Staff.login(app, "sanne")
    assert staff.client.get(f"/staff/sessions/{sid['id']}").status_code == 200
    assert Staff.login(app, "ahmed").client.get(f"/staff/sessions/{sid['id']}").status_code == 404


# --- list --------------------------------------------------------------------------------------------------


def test_list_filters_by_state_flow_and_creation_time_and_pages_with_a_cursor(app):
    svc = services_of(app)
    ids = []
    for i in range(5):
        ids.append(create(app, {"flow": "mutual" if i % 2 else "known-citizen", "bsn": BSN} if i % 2 == 0 else {
            "flow": "mutual"}).get_json()["id"])  # fmt: skip
        svc.clock.advance(seconds=10)
    client = app.test_client()
    client.delete(f"/api/v1/sessions/{ids[1]}", headers=AUTH)
    seen, url = [], "/api/v1/sessions?limit=2"
    while url:
        page = client.get(url.replace("http://testserver.local", ""), headers=AUTH)
        assert page.status_code == 200
        body = page.get_json()
        assert len(body["results"]) <= 2
        seen += [s["id"] for s in body["results"]]
        url = body["next"]
    assert seen == list(reversed(ids))  # newest first, every session once
    withdrawn = client.get("/api/v1/sessions?state=withdrawn", headers=AUTH).get_json()["results"]
    assert [s["id"] for s in withdrawn] == [ids[1]]
    mutual = client.get("/api/v1/sessions?flow=mutual", headers=AUTH).get_json()["results"]
    assert {s["id"] for s in mutual} == {ids[1], ids[3]}
    created_at = [client.get(f"/api/v1/sessions/{i}", headers=AUTH).get_json()["createdAt"] for i in ids]
    window = client.get(
        "/api/v1/sessions", query_string={"createdAfter": created_at[1], "createdBefore": created_at[3]}, headers=AUTH
    ).get_json()["results"]
    assert [s["id"] for s in window] == [ids[2], ids[1]]
    bad = client.get("/api/v1/sessions?createdAfter=yesterday", headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["invalidParams"][0]["name"] == "createdAfter"
    assert client.get("/api/v1/sessions?cursor=%%%", headers=AUTH).status_code == 400


# --- withdraw and complete ---------------------------------------------------------------------------------


def test_delete_withdraws_the_link_at_once_and_the_citizen_is_told(app):
    body = create(app, {"flow": "mutual"}).get_json()
    citizen = Citizen.new(app)
    assert citizen.open(body["id"]).status_code == 200
    client = app.test_client()
    assert client.delete(f"/api/v1/sessions/{body['id']}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/v1/sessions/{body['id']}", headers=AUTH).status_code == 204  # idempotent
    after = client.get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert after["state"] == "withdrawn" and after["endedAt"]
    page = citizen.open(body["id"])
    assert page.status_code == 409 and "ingetrokken" in page.text.lower()
    complete = client.post(f"/api/v1/sessions/{body['id']}/complete", headers=AUTH)
    assert complete.status_code == 409 and complete.get_json()["type"].endswith(":invalid-state")


def test_delete_after_the_login_is_a_409_and_complete_is_the_same_for_every_flow(app):
    client = app.test_client()
    for flow in ("mutual", "known-citizen", "new-citizen"):
        body = create(app, {"flow": flow, "bsn": BSN} if flow == "known-citizen" else {"flow": flow}).get_json()
        Citizen.new(app).login(body["id"], bsn=BSN)
        refused = client.delete(f"/api/v1/sessions/{body['id']}", headers=AUTH)
        assert refused.status_code == 409 and "complete" in refused.get_json()["detail"]
        for _ in range(2):  # completing twice is a no-op
            assert client.post(f"/api/v1/sessions/{body['id']}/complete", headers=AUTH).status_code == 204
        after = client.get(f"/api/v1/sessions/{body['id']}", headers=AUTH)
        assert after.status_code == 200
        data = after.get_json()
        assert data["state"] == "completed" and "bsn" not in data and BSN not in after.text, flow
        assert services_of(app).store.get(body["id"]).bsn is None


# --- answers that explain themselves -----------------------------------------------------------------------


def test_a_level_below_the_flows_minimum_is_a_422_naming_the_minimum(app):
    resp = create(app, {"flow": "mutual", "level": "basis"})
    assert resp.status_code == 422
    problem = resp.get_json()
    assert problem["type"] == PROBLEM_TYPE_PREFIX + "level-below-minimum" and "midden" in problem["detail"]
    assert create(app, {"flow": "mutual", "level": "hoog"}).get_json()["minimumLevel"] == "hoog"


def test_a_401_names_the_bearer_scheme_and_every_problem_has_a_documented_type(app):
    client = app.test_client()
    resp = client.get("/api/v1/sessions")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.get_json()["type"] == PROBLEM_TYPE_PREFIX + "unauthorized"
    for resp in (
        resp,
        client.get("/api/v1/sessions/nope", headers=AUTH),
        create(app, {"flow": "nope"}),
        client.put("/api/v1/sessions/x", headers=AUTH),
    ):
        kind = resp.get_json()["type"].removeprefix(PROBLEM_TYPE_PREFIX)
        assert kind in PROBLEM_TYPES and kind in json.dumps(OPENAPI)


def test_state_is_one_documented_value_with_a_separate_detail(app):
    body = create(app, {"flow": "known-citizen", "bsn": BSN}).get_json()
    assert (body["state"], body["detail"]) == ("created", None)
    Citizen.new(app).digid(body["id"], action="annuleren")
    status = app.test_client().get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert (status["state"], status["detail"]) == ("opened", "cancelled")
    Citizen.new(app).login(body["id"], bsn="999990019")
    status = app.test_client().get(f"/api/v1/sessions/{body['id']}", headers=AUTH).get_json()
    assert (status["state"], status["detail"]) == ("authenticated", "code-mismatch")
    enum = OPENAPI["components"]["schemas"]["Session"]["properties"]["detail"]["enum"]
    assert "cancelled" in enum and "code-mismatch" in enum


def test_the_openapi_document_is_valid_and_covers_every_api_route(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(doc)  # openapi-spec-validator: raises on an invalid document
    documented = {
        ("/api/v1" + path.replace("{id}", "<session_id>"), method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented


# --- idempotent creates ------------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_give_the_same_session_and_another_body_a_422(app):
    key = {"Idempotency-Key": str(uuid.uuid4()), **AUTH}
    first = create(app, {"flow": "known-citizen", "bsn": BSN}, key)
    again = create(app, {"bsn": BSN, "flow": "known-citizen"}, key)  # same body, other key order
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = create(app, {"flow": "mutual"}, key)
    assert other.status_code == 422 and other.get_json()["type"].endswith(":idempotency-key-reused")
    assert len(services_of(app).store.list_sessions()) == 1
    # Keys are per client, and a fresh key makes a fresh session.
    assert (
        create(app, {"flow": "mutual"}, {**key, "Idempotency-Key": "other"}).get_json()["id"] != first.get_json()["id"]
    )
    # An invalid body takes no key: the corrected retry with the same key works.
    fresh = {"Idempotency-Key": "k2", **AUTH}
    assert create(app, {"flow": "nope"}, fresh).status_code == 400
    assert create(app, {"flow": "mutual"}, fresh).status_code == 201


def test_the_idempotency_key_is_not_stored_with_the_bsn_in_it(app):
    create(app, {"flow": "known-citizen", "bsn": BSN}, {"Idempotency-Key": "k", **AUTH})
    import hashlib

    import sqlalchemy as sa

    with services_of(app).store.engine.connect() as conn:
        (fingerprint,) = conn.execute(sa.text("SELECT fingerprint FROM idempotency_keys")).one()
    canonical = json.dumps({"bsn": BSN, "flow": "known-citizen"}, sort_keys=True, separators=(",", ":"))
    assert fingerprint != hashlib.sha256(canonical.encode()).hexdigest()  # keyed, not a plain hash


def test_an_idempotency_key_lives_as_long_as_its_session_and_is_purged_with_it(app):
    svc = services_of(app)
    key = {"Idempotency-Key": "k", **AUTH}
    first = create(app, {"flow": "mutual"}, key).get_json()["id"]
    svc.clock.advance(minutes=svc.settings.session_minutes - 1)
    assert create(app, {"flow": "mutual"}, key).get_json()["id"] == first
    svc.clock.advance(minutes=2)
    counts = svc.store.purge(svc.clock.now())
    assert counts["idempotency_keys"] == 1 and counts["sessions"] == 1
    assert create(app, {"flow": "mutual"}, key).get_json()["id"] != first


# --- the embeddable staff panel ----------------------------------------------------------------------------


def test_the_staff_pages_can_be_framed_by_the_configured_origins_only(tmp_path):
    app = demo_app(tmp_path, staff_frame_ancestors=["https://zaken.gemeente.nl/some/path"])
    staff = Staff.login(app)
    sid = staff.start("mutual")
    for path in (f"/staff/sessions/{sid}", f"/staff/sessions/{sid}/status.html"):
        resp = staff.client.get(path)
        assert resp.status_code == 200
        assert "frame-ancestors 'self' https://zaken.gemeente.nl;" in resp.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in resp.headers
    citizen = Citizen.new(app).open(sid)
    assert "frame-ancestors 'none'" in citizen.headers["Content-Security-Policy"]
    assert citizen.headers["X-Frame-Options"] == "DENY"


def test_without_configured_origins_no_page_can_be_framed(app):
    staff = Staff.login(app)
    resp = staff.client.get(f"/staff/sessions/{staff.start('mutual')}")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_a_panel_framed_from_another_site_keeps_the_staff_login_cookie_only_over_https(tmp_path):
    from zgw_identificatie.app import create_app
    from zgw_identificatie.testing.settings import make_settings

    def cookie(base_url: str, origins: list[str]) -> str:
        settings = make_settings(tmp_path / base_url[:5], base_url=base_url, staff_frame_ancestors=origins)
        resp = create_app(settings).test_client().get("/staff/login")
        return resp.headers["Set-Cookie"]

    assert "SameSite=None" in cookie("https://id.gemeente.nl", ["https://zaken.gemeente.nl"])
    assert "Secure" in cookie("https://id.gemeente.nl", ["https://zaken.gemeente.nl"])
    assert "SameSite=Lax" in cookie("https://id.gemeente.nl", [])
    assert "SameSite=Lax" in cookie("http://127.0.0.1:8000", ["http://127.0.0.1:9000"])
