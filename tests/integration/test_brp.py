"""BRP Personen bevragen v2 adapter: requests and mocked answers validated against the API's OpenAPI
description (tests/fixtures/brp), failures shown as "not available", and the staff page over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from demo_driver import Citizen, Staff, demo_app
from zgw_identificatie.adapters.brp import FIELDS, HaalCentraalBrp, format_datum
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.settings import BrpSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "brp"
BRP_ROOT = "https://brp.example.nl/haalcentraal/api/brp"
BRP_URL = BRP_ROOT + "/personen"
BSN = "999993653"
API_KEY = "brp-test-api-key"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    document = yaml.safe_load((FIXTURES / "personen-raadplegen-subset.yaml").read_text(encoding="utf-8"))
    document["servers"] = [{"url": BRP_ROOT}]
    return OpenAPI.from_dict(
        document, config=Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    )


@pytest.fixture
def brp_api(spec: OpenAPI) -> Iterator[responses.RequestsMock]:
    """A responses mock; afterwards every request and every answer is validated against the description."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        for call in mock.calls:
            request = RequestsOpenAPIRequest(call.request)
            spec.validate_request(request)
            if isinstance(call.response, requests.Response):
                spec.validate_response(request, RequestsOpenAPIResponse(call.response))


def brp_settings(**overrides: Any) -> BrpSettings:
    settings = BrpSettings(
        url=BRP_URL,
        api_key=API_KEY,
        doelbinding="BRPACT-AlgemeneTaken",
        verwerking="Identificatie tijdens videogesprek",
        gebruiker="zgw-identificatie",
        timeout=3.5,
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


def test_the_request_carries_the_bsn_only_in_the_body_and_matches_the_api_description(brp_api):
    """POST to the configured URL, RaadpleegMetBurgerservicenummer, the minimal fields, purpose headers."""
    brp_api.post(BRP_URL, json=fixture("raadpleeg-binnenland.json"))
    HaalCentraalBrp(brp_settings()).lookup(Bsn(BSN), gebruiker="oidc:sanne")
    call = brp_api.calls[0]
    assert call.request.url == BRP_URL and BSN not in call.request.url
    assert json.loads(call.request.body) == {
        "type": "RaadpleegMetBurgerservicenummer",
        "fields": list(FIELDS),
        "burgerservicenummer": [BSN],
    }
    headers = call.request.headers
    assert headers["X-API-KEY"] == API_KEY
    assert headers["x-doelbinding"] == "BRPACT-AlgemeneTaken"
    assert headers["x-verwerking"] == "Identificatie tijdens videogesprek"
    assert headers["x-gebruiker"] == "oidc:sanne"
    assert all(BSN not in value for value in headers.values())
    assert call.request.req_kwargs["timeout"] == 3.5


def test_without_a_logged_in_behandelaar_the_default_gebruiker_is_sent(brp_api):
    """x-gebruiker falls back to the setting."""
    brp_api.post(BRP_URL, json=fixture("raadpleeg-binnenland.json"))
    HaalCentraalBrp(brp_settings()).lookup(BSN)
    assert brp_api.calls[0].request.headers["x-gebruiker"] == "zgw-identificatie"


def test_a_person_in_the_netherlands_gives_naam_geboortedatum_and_adres(brp_api):
    """volledigeNaam, langFormaat of the date, the address lines for an envelope."""
    brp_api.post(BRP_URL, json=fixture("raadpleeg-binnenland.json"))
    result = HaalCentraalBrp(brp_settings()).lookup(BSN)
    assert result.found
    assert result.persoon.naam == "Suzanne de Groot-van Dijk"
    assert result.persoon.geboortedatum == "7 maart 1984"
    assert result.persoon.adresregels == ("Kappeyne v d Cappellostr 26A-3", "1234 AA  NOOTDORP")


def test_an_address_abroad_ends_with_the_country(brp_api):
    """adresregel3 and land for a person living abroad (RNI)."""
    brp_api.post(BRP_URL, json=fixture("raadpleeg-buitenland.json"))
    result = HaalCentraalBrp(brp_settings()).lookup(BSN)
    assert result.persoon.adresregels == ("Rue de la Loi 16", "1000 Bruxelles", "Brussel", "België")
    assert result.persoon.geboortedatum == "november 1979"


def test_no_person_for_the_bsn_is_not_found_not_an_error(brp_api):
    """An empty personen list → not-found."""
    brp_api.post(BRP_URL, json=fixture("raadpleeg-niet-gevonden.json"))
    assert HaalCentraalBrp(brp_settings()).lookup(BSN).status == "not-found"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 400, "json": fixture("fout-400.json"), "content_type": "application/problem+json"},
        {
            "status": 500,
            "json": {"title": "Interne server fout.", "status": 500, "code": "serverError"},
            "content_type": "application/problem+json",
        },
        {"status": 200, "body": "<html>gateway</html>", "content_type": "application/json"},
        {"status": 302, "headers": {"Location": "https://login.example.nl/"}, "body": ""},
    ],
)
def test_error_answers_make_the_brp_unavailable_and_never_log_the_bsn(answer, caplog, spec):
    """4xx, 5xx, a body that is no JSON, a redirect to a login page → unavailable; no BSN in a log."""
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock:
        mock.post(BRP_URL, **answer)
        result = HaalCentraalBrp(brp_settings()).lookup(BSN)
        if answer["status"] in (400, 500):
            call = mock.calls[0]
            spec.validate_response(RequestsOpenAPIRequest(call.request), RequestsOpenAPIResponse(call.response))
    assert result.status == "unavailable" and result.persoon is None
    assert BSN not in caplog.text


@pytest.mark.parametrize("error", [requests.ConnectTimeout("slow"), requests.ConnectionError("refused")])
def test_network_failures_make_the_brp_unavailable(error, caplog):
    """Time-outs and refused connections → unavailable, no exception."""
    with responses.RequestsMock() as mock:
        mock.post(BRP_URL, body=error)
        assert HaalCentraalBrp(brp_settings()).lookup(BSN).status == "unavailable"
    assert BSN not in caplog.text


@pytest.mark.parametrize(
    ("datum", "text"),
    [
        ({"type": "Datum", "datum": "2001-12-31"}, "31 december 2001"),
        ({"type": "JaarMaandDatum", "jaar": 1950, "maand": 2}, "februari 1950"),
        ({"type": "JaarDatum", "jaar": 1931}, "1931"),
        ({"type": "DatumOnbekend", "onbekend": True}, "onbekend"),
        ({"type": "Datum", "datum": "2001-12-31", "langFormaat": "31 december 2001"}, "31 december 2001"),
        (None, None),
    ],
)
def test_the_polymorphic_date_becomes_dutch_text(datum, text):
    """Every date type of the API, with or without langFormaat."""
    assert format_datum(datum) == text


def test_the_fixtures_are_valid_answers(spec):
    """The stored answers satisfy the API description (so the mocks above are realistic)."""
    for name in ("raadpleeg-binnenland.json", "raadpleeg-buitenland.json", "raadpleeg-niet-gevonden.json"):
        with responses.RequestsMock() as mock:
            mock.post(BRP_URL, json=fixture(name))
            resp = requests.post(
                BRP_URL,
                json={"type": "RaadpleegMetBurgerservicenummer", "fields": ["naam"], "burgerservicenummer": [BSN]},
                timeout=1,
            )
            spec.validate_response(RequestsOpenAPIRequest(mock.calls[0].request), RequestsOpenAPIResponse(resp))


@pytest.fixture
def app(tmp_path):
    return demo_app(
        tmp_path,
        brp__url=BRP_URL,
        brp__api_key=API_KEY,
        brp__doelbinding="BRPACT-AlgemeneTaken",
        brp__verwerking="Identificatie tijdens videogesprek",
    )


def test_the_staff_page_shows_the_brp_data_of_an_authenticated_mutual_session(app, brp_api):
    """§2.3 with a BRP: after the DigiD login the behandelaar sees naam, geboortedatum and adres."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    waiting = staff.client.get(f"/staff/sessions/{sid}")
    assert 'data-brp="waiting"' in waiting.text and not brp_api.calls
    Citizen.new(app).login(sid, bsn=BSN)
    brp_api.post(BRP_URL, json=fixture("raadpleeg-binnenland.json"))
    page = staff.client.get(f"/staff/sessions/{sid}")
    assert page.status_code == 200
    assert "Suzanne de Groot-van Dijk" in page.text and "7 maart 1984" in page.text
    assert "Kappeyne v d Cappellostr 26A-3" in page.text
    call = brp_api.calls[0]
    assert json.loads(call.request.body)["burgerservicenummer"] == [BSN]
    assert call.request.headers["x-gebruiker"] == "local:sanne"
    assert staff.client.get(f"/staff/sessions/{sid}/status.html").status_code == 200
    assert len(brp_api.calls) == 1  # the polled status fragment does not ask the BRP


def test_a_brp_that_is_down_gives_a_notice_on_the_staff_page_not_a_500(app, brp_api):
    """503 from the gateway → the page says the BRP is not available; the BSN is still shown."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    Citizen.new(app).login(sid, bsn=BSN)
    brp_api.post(
        BRP_URL,
        status=503,
        json={"title": "Bronservice BRP is tijdelijk niet beschikbaar.", "status": 503, "code": "notAvailable"},
        content_type="application/problem+json",
    )
    page = staff.client.get(f"/staff/sessions/{sid}")
    assert page.status_code == 200 and "De BRP is nu niet beschikbaar" in page.text and BSN in page.text


def test_without_a_brp_url_there_is_no_brp_block_and_no_call(tmp_path):
    """Off by default: no lookup, no block."""
    app = demo_app(tmp_path)
    staff = Staff.login(app)
    sid = staff.start("mutual")
    Citizen.new(app).login(sid, bsn=BSN)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        page = staff.client.get(f"/staff/sessions/{sid}")
        assert not mock.calls
    assert page.status_code == 200 and "data-brp" not in page.text


def test_the_api_description_refuses_a_malformed_request(spec):
    """The validation has teeth: a BSN that is not nine digits, or no fields, is refused."""
    from openapi_core.validation.request.exceptions import InvalidRequestBody

    for body in (
        {"type": "RaadpleegMetBurgerservicenummer", "fields": ["naam"], "burgerservicenummer": ["12345"]},
        {"type": "RaadpleegMetBurgerservicenummer", "fields": [], "burgerservicenummer": [BSN]},
    ):
        prepared = requests.Request("POST", BRP_URL, json=body).prepare()
        with pytest.raises(InvalidRequestBody):
            spec.validate_request(RequestsOpenAPIRequest(prepared))
