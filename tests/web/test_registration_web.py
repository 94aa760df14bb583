"""Issue 9 over HTTP: a zaaknummer is checked before a link exists, and a failed registration is finished
with "Opnieuw vastleggen" (staff page) or POST /registration/retry (API); the citizen sees the zaaknummer
only when the proof is recorded."""

from __future__ import annotations

import pytest

from demo_driver import API_KEY, Citizen, Staff, csrf, demo_app, run_worker
from zgw_identificatie.app import services_of

AUTH = {"Authorization": f"Bearer {API_KEY}"}
BSN = "999993653"
KINDS = ("zaken", "rollen", "statussen", "enkelvoudiginformatieobjecten", "zaakinformatieobjecten")


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path)


def sessions_of(app, owner):
    return list(services_of(app).store.list_for_owner(owner))


def test_an_unknown_zaaknummer_is_a_form_error_and_no_link_is_made(app):
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    resp = staff.client.post(
        "/staff/sessions",
        data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": BSN, "zaak": "ZAAK-2026-0000000404"},
    )
    assert resp.status_code == 400
    assert "Het zaaksysteem kent geen zaak met dit zaaknummer" in resp.text
    assert BSN not in resp.text
    assert sessions_of(app, "local:sanne") == []


def test_an_unknown_zaaknummer_is_a_precise_422_on_the_api(app):
    resp = app.test_client().post(
        "/api/v1/sessions", json={"flow": "mutual", "zaak": "ZAAK-2026-0000000404"}, headers=AUTH
    )
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["invalidParams"] == [
        {"name": "zaak", "code": "unknown", "reason": "The Zaken API has no zaak with this identificatie."}
    ]
    assert sessions_of(app, "api:demo") == []


@pytest.mark.parametrize(
    ("change", "code"),
    [({"einddatum": "2026-11-01"}, "closed"), ({"bronorganisatie": "123456782"}, "other-bronorganisatie")],
)
def test_a_closed_zaak_or_one_of_another_organisation_is_refused_up_front(app, change, code):
    sandbox = app.blueprints["sandbox"].sandbox
    zaak = sandbox.add_zaak()
    with sandbox._lock:
        zaak.update(change)
    resp = app.test_client().post(
        "/api/v1/sessions", json={"flow": "mutual", "zaak": zaak["identificatie"]}, headers=AUTH
    )
    assert resp.status_code == 422
    assert resp.get_json()["invalidParams"][0]["code"] == code
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    form = staff.client.post(
        "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "mutual", "zaak": zaak["identificatie"]}
    )
    assert form.status_code == 400
    assert ("afgesloten" if code == "closed" else "andere organisatie") in form.text


def test_an_existing_open_zaak_of_ours_is_accepted(app):
    zaak = app.blueprints["sandbox"].sandbox.add_zaak()
    resp = app.test_client().post(
        "/api/v1/sessions", json={"flow": "mutual", "zaak": zaak["identificatie"]}, headers=AUTH
    )
    assert resp.status_code == 201


def test_a_failed_registration_is_finished_with_opnieuw_vastleggen_and_shown_to_the_citizen_only_then(tmp_path):
    app = demo_app(tmp_path, zgw__taal="nl")  # the document upload is refused (400): the operator must fix it
    sandbox = app.blueprints["sandbox"].sandbox
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    citizen = Citizen.new(app)
    citizen.login(sid, bsn=BSN)
    run_worker(app)
    status = staff.status(sid)
    assert status["registration"]["state"] == "failed" and status["registration"]["resumable"] is True
    zaak = status["zaak"]["identificatie"]
    result = citizen.client.get(f"/i/{sid}/klaar")
    assert zaak not in result.text and "niet gelukt" in result.text
    page = staff.client.get(f"/staff/sessions/{sid}")
    assert "Opnieuw vastleggen" in page.text

    services_of(app).settings.zgw.taal = "nld"  # fixed
    resp = staff.client.post(f"/staff/sessions/{sid}/registration/retry", data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 303
    assert staff.status(sid)["registration"]["state"] == "pending"
    assert zaak not in citizen.client.get(f"/i/{sid}/klaar").text
    assert run_worker(app) == 1
    status = staff.status(sid)
    assert status["registration"]["state"] == "done" and status["zaak"]["identificatie"] == zaak
    assert {kind: len(sandbox.all(kind)) for kind in KINDS} == dict.fromkeys(KINDS, 1)
    assert zaak in citizen.client.get(f"/i/{sid}/klaar").text
    assert "Opnieuw vastleggen" not in staff.client.get(f"/staff/sessions/{sid}").text
    again = staff.client.post(f"/staff/sessions/{sid}/registration/retry", data={"csrf_token": csrf(page.text)})
    assert again.status_code == 409


def test_the_api_resumes_a_failed_registration_and_refuses_one_that_did_not_fail(tmp_path):
    app = demo_app(tmp_path, zgw__taal="nl")
    client = app.test_client()
    created = client.post("/api/v1/sessions", json={"flow": "new-citizen"}, headers=AUTH)
    sid = created.get_json()["id"]
    early = client.post(f"/api/v1/sessions/{sid}/registration/retry", headers=AUTH)
    assert early.status_code == 409 and early.get_json()["invalidParams"][0]["code"] == "no-registration"
    Citizen.new(app).login(sid, bsn=BSN)
    run_worker(app)
    assert client.get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()["registration"]["state"] == "failed"
    services_of(app).settings.zgw.taal = "nld"
    resp = client.post(f"/api/v1/sessions/{sid}/registration/retry", headers=AUTH)
    assert resp.status_code == 202 and resp.get_json()["registration"]["state"] == "pending"
    twice = client.post(f"/api/v1/sessions/{sid}/registration/retry", headers=AUTH)
    assert twice.status_code == 409 and twice.get_json()["invalidParams"][0]["code"] == "not-failed"
    run_worker(app)
    assert client.get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()["registration"]["state"] == "done"


def test_a_bad_bsn_and_an_unknown_zaak_are_both_reported_at_once(app):
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    resp = staff.client.post(
        "/staff/sessions",
        data={
            "csrf_token": csrf(page.text),
            "flow": "known-citizen",
            "bsn": "123456789",
            "zaak": "ZAAK-2026-0000000404",
        },
    )
    assert resp.status_code == 400
    assert "Dit is geen geldig burgerservicenummer" in resp.text
    assert "Het zaaksysteem kent geen zaak met dit zaaknummer" in resp.text
    api = app.test_client().post(
        "/api/v1/sessions",
        json={"flow": "known-citizen", "bsn": "123456789", "zaak": "ZAAK-2026-0000000404"},
        headers=AUTH,
    )
    assert api.status_code == 400 and api.get_json()["invalidParams"][0]["name"] == "bsn"


def test_the_api_status_of_a_registered_session_reads_its_registration_once(tmp_path, monkeypatch):
    """The status block and the API's own fields (documents, zaak) share one read of the registration."""
    app = demo_app(tmp_path)
    client = app.test_client()
    sid = client.post("/api/v1/sessions", json={"flow": "new-citizen"}, headers=AUTH).get_json()["id"]
    Citizen.new(app).login(sid, bsn=BSN)
    run_worker(app)
    store = services_of(app).store
    reads: list[str] = []
    real = store.registration_for_session
    monkeypatch.setattr(
        store, "registration_for_session", lambda session_id: reads.append(session_id) or real(session_id)
    )
    body = client.get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()
    assert body["registration"]["state"] == "done" and body["documents"] and body["zaak"]["url"]
    assert reads == [sid]
