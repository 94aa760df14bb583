"""The demo ZGW sandbox answers like the recorded Open Zaak 1.30 exchanges."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from flask import Flask

import third_party
from zgw_identificatie.adapters.zgw import ZgwJwtAuth, build_registry
from zgw_identificatie.demo import DemoInProduction
from zgw_identificatie.demo.zgw_sandbox import (
    SandboxBlueprint,
    create_sandbox_blueprint,
    sandbox_api_roots,
    sandbox_http,
)
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock

BASE = "http://zgwid.test"
ROOTS = sandbox_api_roots(BASE)
SECRET = "sandbox-test-secret-0123456789abcdef"
FIXTURES = third_party.RECORDINGS_DIR


def make(page_size: int = 100) -> tuple[Flask, SandboxBlueprint, Settings]:
    settings = Settings()
    settings.zgw.secret = SECRET
    app = Flask(__name__)
    blueprint = create_sandbox_blueprint(
        settings, clock=FixedClock(datetime(2026, 11, 29, 14, tzinfo=UTC)), page_size=page_size
    )
    app.register_blueprint(blueprint, url_prefix="/sandbox")
    return app, blueprint, settings


def client(app: Flask, secret: str = SECRET) -> requests.Session:
    session = requests.Session()
    sandbox_http(app, BASE)(session)
    session.auth = ZgwJwtAuth("zgw-identificatie", secret, user_id="t", user_representation="t")
    session.headers["Accept"] = "application/json"
    return session


def recorded_keys(step: str) -> set[str]:
    third_party.require(third_party.RECORDINGS)
    path = next(FIXTURES.glob(f"{step}-*.json"))
    return set(json.loads(path.read_text())["response"]["json"])


def test_the_sandbox_refuses_to_run_in_production() -> None:
    """ZGWID_ENV=production → DemoInProduction."""
    with pytest.raises(DemoInProduction):
        create_sandbox_blueprint(Settings(env="production"))


def test_the_api_roots_sit_under_sandbox() -> None:
    """sandbox_api_roots gives the three roots below <base>/sandbox/."""
    assert ROOTS == {
        "zaken": "http://zgwid.test/sandbox/zaken/api/v1/",
        "documenten": "http://zgwid.test/sandbox/documenten/api/v1/",
        "catalogi": "http://zgwid.test/sandbox/catalogi/api/v1/",
    }


def test_zaken_without_accept_crs_answer_412() -> None:
    """Pitfall 3: the zaken resource needs Accept-Crs, even for a list."""
    app, _, _ = make()
    response = client(app).get(ROOTS["zaken"] + "zaken")
    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    assert "Accept-Crs" in response.json()["detail"]


def test_a_token_with_the_wrong_secret_answers_403_like_the_recording() -> None:
    """Fixture 18: invalid-jwt-signature with the Fout fields."""
    app, _, _ = make()
    response = client(app, secret="another-secret-0123456789abcdef-xyz").get(
        ROOTS["zaken"] + "zaken", headers={"Accept-Crs": "EPSG:4326"}
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "invalid-jwt-signature"
    assert set(body) == recorded_keys("18")


def test_missing_fields_answer_400_with_invalid_params_like_the_recording() -> None:
    """Fixture 17: the four required zaak fields, as ValidationError."""
    app, _, _ = make()
    response = client(app).post(
        ROOTS["zaken"] + "zaken",
        json={"omschrijving": "zonder zaaktype"},
        headers={"Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"},
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == recorded_keys("17")
    assert {p["name"] for p in body["invalidParams"]} == {
        "bronorganisatie",
        "zaaktype",
        "verantwoordelijkeOrganisatie",
        "startdatum",
    }


def test_created_zaken_look_like_open_zaak_zaken_with_generated_identificatie() -> None:
    """201 with Location, the recorded Zaak keys and ZAAK-<year>-<10 digits>."""
    app, blueprint, settings = make()
    zaaktype = ROOTS["catalogi"] + blueprint.sandbox.all("zaaktypen")[0]["url"].split("catalogi/api/v1/")[1]
    response = client(app).post(
        ROOTS["zaken"] + "zaken",
        headers={"Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"},
        json={
            "bronorganisatie": settings.rsin,
            "verantwoordelijkeOrganisatie": settings.rsin,
            "zaaktype": zaaktype,
            "startdatum": "2026-11-29",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == body["url"]
    assert response.headers["Content-Crs"] == "EPSG:4326"
    assert re.fullmatch(r"ZAAK-2026-\d{10}", body["identificatie"])
    assert set(body) == recorded_keys("01")


def test_lists_are_paginated_and_the_registry_follows_next() -> None:
    """{count, next, previous, results}; find_zaak_by_marker reads every page."""
    app, _, settings = make(page_size=2)
    registry = build_registry(settings, http=sandbox_http(app, BASE), roots=ROOTS, today=date(2026, 11, 29))
    refs = [
        registry.create_zaak(marker=f"m{n}", startdatum=date(2026, 11, 29), omschrijving="o", toelichting="t")
        for n in range(5)
    ]
    listing = client(app).get(ROOTS["zaken"] + "zaken", headers={"Accept-Crs": "EPSG:4326"}).json()
    assert set(listing) == {"count", "next", "previous", "results"}
    assert listing["count"] == 5 and len(listing["results"]) == 2 and listing["next"]
    found = registry.find_zaak_by_marker(marker="m4", startdatum=date(2026, 11, 29))
    assert found == refs[4]


def test_the_backoffice_page_lists_zaken_rollen_and_a_working_pdf_link() -> None:
    """Accessible plain HTML: lang nl, one h1, th scope, app.css; the BSN shown as the backoffice sees it."""
    app, _, settings = make()
    registry = build_registry(settings, http=sandbox_http(app, BASE), roots=ROOTS, today=date(2026, 11, 29))
    zaak = registry.create_zaak(
        marker="m", startdatum=date(2026, 11, 29), omschrijving="Identificatie", toelichting="t"
    )
    registry.add_citizen_rol(zaak_url=zaak.url, bsn=Bsn("111222333"), toelichting="t")
    document = registry.upload_document(
        marker="m",
        titel="Bewijs van identificatie",
        bestandsnaam="bewijs.pdf",
        inhoud=b"%PDF-1.4 test",
        creatiedatum=date(2026, 11, 29),
        beschrijving="",
    )
    registry.link_document(zaak_url=zaak.url, document_url=document, titel="Bewijs van identificatie")
    web = app.test_client()
    html = web.get("/sandbox/").get_data(as_text=True)
    assert '<html lang="nl">' in html
    assert html.count("<h1") == 1
    assert '<th scope="col">' in html and '<th scope="row">' in html
    assert 'href="/static/app.css"' in html
    assert zaak.identificatie in html and "111222333" in html
    link = re.search(r'href="(/sandbox/documenten/[^"]+\.pdf)"', html)
    assert link is not None
    pdf = web.get(link.group(1))
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data == b"%PDF-1.4 test"


def test_the_download_endpoint_returns_the_uploaded_bytes() -> None:
    """D3: GET …/{uuid}/download with a JWT gives the content back."""
    app, _, settings = make()
    registry = build_registry(settings, http=sandbox_http(app, BASE), roots=ROOTS, today=date(2026, 11, 29))
    url = registry.upload_document(
        marker="d", titel="t", bestandsnaam="a.pdf", inhoud=b"%PDF-x", creatiedatum=date(2026, 11, 29), beschrijving=""
    )
    session = client(app)
    body: dict[str, Any] = session.get(url).json()
    assert body["inhoud"].endswith("/download?versie=1")
    assert session.get(url + "/download").content == b"%PDF-x"
