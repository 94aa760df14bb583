"""A zaaksysteem starts a §2.3 session through the API for a named behandelaar: the citizen reads that name."""

from __future__ import annotations

import pytest
from browser_support import PHONE, STAFF_USER, Browsers, DemoServer, check_page
from playwright.sync_api import expect

from zgw_identificatie.app import services_of
from zgw_identificatie.web.security import hash_secret_sha256

pytestmark = pytest.mark.browser

BSN = "999993653"
KEY = "zac-browser-test-key-0123456789"


def test_a_mutual_session_created_for_a_named_behandelaar_shows_that_name_to_the_citizen(
    browsers: Browsers, demo_server: DemoServer
) -> None:
    settings = services_of(demo_server.app).settings
    settings.api_keys["zac"] = {"key_hash": hash_secret_sha256(KEY), "name": "ZAC", "acts_for_staff": True}
    created = demo_server.app.test_client().post(
        "/api/v1/sessions",
        json={"flow": "mutual", "behandelaar": {"id": f"local:{STAFF_USER}", "name": "Jan de Vries"}},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()

    citizen = browsers.open(viewport=PHONE)
    citizen.goto(body["citizenUrl"])
    expect(citizen.locator("[data-requester]")).to_have_text(
        "Jan de Vries van Gemeente Voorbeeld vraagt u in te loggen met DigiD."
    )
    check_page(citizen, "citizen-mutual-start-api-behandelaar")
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("DigiD-simulator")
    citizen.get_by_label("Burgerservicenummer").fill(BSN)
    citizen.get_by_role("button", name="Inloggen", exact=True).click()
    knows = citizen.get_by_text("Jan de Vries van Gemeente Voorbeeld weet nu wie u bent.", exact=False)
    expect(knows).to_be_visible()
    assert BSN not in citizen.content()
    status = demo_server.app.test_client().get(
        f"/api/v1/sessions/{body['id']}",
        headers={"Authorization": f"Bearer {KEY}", "X-Behandelaar-Id": f"local:{STAFF_USER}"},
    )
    assert status.get_json()["state"] == "authenticated" and status.get_json()["bsn"] == BSN
