"""The ZGW HTTP clients (adapters/zgw) against recorded Open Zaak answers.

Every request the clients send is validated against the official OpenAPI documents found through
``third_party.SPECS_DIR`` (Zaken 1.5.1, Documenten 1.4.3 and Catalogi 1.3.1 from VNG; requests only, so
the Catalogi 1.3.1 response-typing bugs of ZGW-CHEATSHEET §9 do not matter). Answers are the
recordings in ``third_party.RECORDINGS_DIR`` (host ``127.0.0.1:8000``) or shaped like them. Without
them this module is not imported: one item skips, or fails under CI=true (tests/conftest.py).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import responses
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest

import third_party
from zgw_identificatie.adapters.zgw import CatalogueRefs, ZgwHttpRegistry, ZgwJwtAuth, build_registry
from zgw_identificatie.adapters.zgw.registry import check_access, document_identificatie
from zgw_identificatie.domain.bsn import Bsn
from zgw_identificatie.domain.errors import RegistrationFailed, RegistryUnavailable, ZaakNotFound
from zgw_identificatie.settings import ConfigError, Settings

SPECS = third_party.SPECS_DIR
FIXTURES = third_party.RECORDINGS_DIR

BASE = "http://127.0.0.1:8000"
ZAKEN = BASE + "/zaken/api/v1/"
DOCUMENTEN = BASE + "/documenten/api/v1/"
CATALOGI = BASE + "/catalogi/api/v1/"
SECRET = "test-secret-that-is-long-enough-for-hs256"
RSIN = "002220647"
BSN = "999993653"  # the BSN of the recording
SPEC_FILES = {
    "zaken": "zaken-api-1.5.1.yaml",
    "documenten": "documenten-api-1.4.3.yaml",
    "catalogi": "catalogi-api-1.3.1.yaml",
}


def recorded(step: str) -> dict[str, Any]:
    path = next(FIXTURES.glob(f"{step}-*.json"))
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def answer(step: str) -> Any:
    return copy.deepcopy(recorded(step)["response"]["json"])


ZAAK = answer("01")
ZAAKTYPE = answer("10")
ROLTYPEN = answer("11")
STATUSTYPEN = answer("12")
IOTYPE_URL = ZAAKTYPE["informatieobjecttypen"][0]
CATALOGUS = {
    "url": ZAAKTYPE["catalogus"],
    "domein": "SMOKE",
    "rsin": RSIN,
    "zaaktypen": [ZAAKTYPE["url"]],
    "informatieobjecttypen": [IOTYPE_URL],
    "besluittypen": [],
}
IOTYPE = {
    "url": IOTYPE_URL,
    "catalogus": ZAAKTYPE["catalogus"],
    "omschrijving": "Bewijs identificatie",
    "vertrouwelijkheidaanduiding": "vertrouwelijk",
    "beginGeldigheid": "2026-01-01",
    "eindeGeldigheid": None,
    "concept": False,
    "zaaktypen": [ZAAKTYPE["url"]],
}
ZIOT = {
    "url": CATALOGI + "zaaktype-informatieobjecttypen/0b8e",
    "zaaktype": ZAAKTYPE["url"],
    "informatieobjecttype": IOTYPE_URL,
    "volgnummer": 1,
    "richting": "intern",
    "statustype": None,
}
REFS = CatalogueRefs(
    zaaktype_url=ZAAKTYPE["url"],
    roltype_url=ROLTYPEN["results"][1]["url"],
    statustype_url=STATUSTYPEN["results"][2]["url"],
    informatieobjecttype_url=IOTYPE_URL,
)


def page(*results: Any, next_url: str | None = None) -> dict[str, Any]:
    return {"count": len(results), "next": next_url, "previous": None, "results": list(results)}


@pytest.fixture(scope="module")
def specs() -> dict[str, OpenAPI]:
    loaded = {}
    for api, name in SPEC_FILES.items():
        with (SPECS / name).open(encoding="utf-8") as fh:
            document = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        document["servers"] = [{"url": f"{BASE}/{api}/api/v1"}]
        loaded[api] = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))
    return loaded


@pytest.fixture
def api(specs: dict[str, OpenAPI]) -> Iterator[responses.RequestsMock]:
    """A responses mock; after the test, every request sent is validated against its OpenAPI document."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        for call in mock.calls:
            prepared = call.request
            api_name = urlsplit(prepared.url).path.split("/")[1]
            specs[api_name].validate_request(RequestsOpenAPIRequest(prepared))


def make_settings(**zgw: Any) -> Settings:
    settings = Settings(rsin=RSIN, gemeente_naam="Gemeente Voorbeeld")
    settings.zgw.zaken_url = ZAKEN
    settings.zgw.documenten_url = DOCUMENTEN
    settings.zgw.catalogi_url = CATALOGI
    settings.zgw.secret = SECRET
    settings.zgw.sandbox = False
    settings.zgw.informatieobjecttype_omschrijving = "Bewijs identificatie"
    settings.zgw.zaaktype_identificatie = ZAAKTYPE["identificatie"]
    for key, value in zgw.items():
        setattr(settings.zgw, key, value)
    return settings


def registry() -> ZgwHttpRegistry:
    return ZgwHttpRegistry(make_settings(), REFS)


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def catalogue_answers(mock: responses.RequestsMock, **overrides: Any) -> None:
    answers: dict[str, Any] = {
        "catalogussen": page(CATALOGUS),
        "zaaktypen": page(ZAAKTYPE),
        "roltypen": ROLTYPEN,
        "statustypen": STATUSTYPEN,
        "informatieobjecttypen": page(IOTYPE),
        "zaaktype-informatieobjecttypen": page(ZIOT),
    }
    answers.update(overrides)
    for resource, body in answers.items():
        if isinstance(body, int):
            mock.get(
                CATALOGI + resource,
                status=body,
                json={"code": "x", "title": "t", "status": body, "detail": "", "instance": "urn:uuid:1"},
            )
        else:
            mock.get(CATALOGI + resource, json=body)


# --- auth -----------------------------------------------------------------------------------------


def test_every_token_carries_the_zgw_claims_and_expires_after_five_minutes() -> None:
    """HS256 with iss, iat, exp = iat + 300, client_id, user_id and user_representation."""
    auth = ZgwJwtAuth(
        "zgw-identificatie", SECRET, user_id="jdv", user_representation="Jan de Vries", now=lambda: 1_800_000_000.7
    )
    token = auth.token()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims == {
        "iss": "zgw-identificatie",
        "iat": 1_800_000_000,
        "exp": 1_800_000_300,
        "client_id": "zgw-identificatie",
        "user_id": "jdv",
        "user_representation": "Jan de Vries",
    }


def test_a_fresh_token_is_minted_for_every_request(api: responses.RequestsMock) -> None:
    """Two requests a while apart carry tokens with their own iat."""
    clock = iter([1_800_000_000.0, 1_800_003_700.0])
    reg = registry()
    reg.zaken.session.auth = ZgwJwtAuth(
        "zgw-identificatie", SECRET, user_id="u", user_representation="u", now=lambda: next(clock)
    )
    api.get(ZAKEN + "statussen", json=page())
    reg.find_status(zaak_url=ZAAK["url"])
    reg.find_status(zaak_url=ZAAK["url"])
    iats = [
        jwt.decode(
            c.request.headers["Authorization"].split()[1],
            SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )["iat"]
        for c in api.calls
    ]
    assert iats == [1_800_000_000, 1_800_003_700]


# --- catalogue ------------------------------------------------------------------------------------


def test_the_catalogue_resolves_to_the_urls_valid_today(api: responses.RequestsMock) -> None:
    """Catalogus by RSIN, zaaktype by identificatie, initiator roltype, first statustype, linked iotype."""
    catalogue_answers(api)
    reg = build_registry(make_settings(), today=date(2026, 11, 29))
    assert reg.refs.zaaktype_url == ZAAKTYPE["url"]
    assert reg.refs.roltype_url.endswith("b1372798-0e68-41bc-af16-0afce9348c74")  # omschrijvingGeneriek initiator
    assert reg.refs.statustype_url.endswith("d9c80879-61c7-4041-875b-bc1399bef09c")  # volgnummer 1
    assert reg.refs.informatieobjecttype_url == IOTYPE_URL
    zaaktype_query = parse_qs(urlsplit(api.calls[1].request.url).query)
    assert zaaktype_query["identificatie"] == [ZAAKTYPE["identificatie"]]
    assert zaaktype_query["datumGeldigheid"] == ["2026-11-29"]


def test_a_configured_catalogus_url_is_read_instead_of_searched_by_rsin(api: responses.RequestsMock) -> None:
    """ZGWID_ZGW_CATALOGUS_URL is fetched directly."""
    catalogue_answers(api)
    api.get(CATALOGUS["url"], json=CATALOGUS)
    build_registry(make_settings(catalogus_url=CATALOGUS["url"]), today=date(2026, 11, 29))
    assert not any("catalogussen?" in c.request.url for c in api.calls)


CONCEPT_ZAAKTYPE = {**ZAAKTYPE, "concept": True}
CONCEPT_IOTYPE = {**IOTYPE, "concept": True}


@pytest.mark.parametrize(
    ("overrides", "setting", "words"),
    [
        ({"catalogussen": page()}, "ZGWID_RSIN", "no catalogus"),
        ({"zaaktypen": page()}, "ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE", "valid on 2026-11-29"),
        ({"zaaktypen": page(CONCEPT_ZAAKTYPE)}, "ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE", "not published"),
        ({"roltypen": page()}, "ZGWID_ZGW_ROLTYPE_OMSCHRIJVING_GENERIEK", "no roltype"),
        ({"statustypen": page()}, "ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE", "no statustypen"),
        ({"informatieobjecttypen": page()}, "ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING", "no informatieobjecttype"),
        (
            {"informatieobjecttypen": page(CONCEPT_IOTYPE)},
            "ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING",
            "not published",
        ),
        ({"zaaktype-informatieobjecttypen": page()}, "ZGWID_ZGW_INFORMATIEOBJECTTYPE_OMSCHRIJVING", "not linked"),
        ({"catalogussen": 403}, "ZGWID_ZGW_SECRET", "refused our credentials"),
    ],
)
def test_a_catalogue_problem_names_the_setting_to_fix(
    api: responses.RequestsMock, overrides: dict[str, Any], setting: str, words: str
) -> None:
    """Each missing or unpublished catalogue entry raises ConfigError naming its ZGWID_ setting."""
    catalogue_answers(api, **overrides)
    with pytest.raises(ConfigError) as caught:
        build_registry(make_settings(), today=date(2026, 11, 29))
    assert setting in str(caught.value)
    assert words in str(caught.value)


def test_an_unknown_catalogus_url_names_its_setting(api: responses.RequestsMock) -> None:
    """A 404 on the configured catalogus URL names ZGWID_ZGW_CATALOGUS_URL."""
    api.get(
        CATALOGUS["url"],
        status=404,
        json={"code": "not_found", "title": "Niet gevonden.", "status": 404, "detail": "", "instance": "urn:uuid:2"},
    )
    with pytest.raises(ConfigError, match="ZGWID_ZGW_CATALOGUS_URL"):
        build_registry(make_settings(catalogus_url=CATALOGUS["url"]), today=date(2026, 11, 29))


# --- writes ---------------------------------------------------------------------------------------


def test_create_zaak_sends_the_required_fields_the_marker_and_the_crs_headers(api: responses.RequestsMock) -> None:
    """Z1: bronorganisatie, verantwoordelijkeOrganisatie, zaaktype, startdatum, kenmerken; Accept/Content-Crs."""
    api.post(ZAKEN + "zaken", status=201, json=ZAAK, headers={"Location": ZAAK["url"]})
    ref = registry().create_zaak(
        marker="3f2a9c",
        startdatum=date(2026, 11, 29),
        omschrijving="Identificatie met DigiD tijdens videogesprek",
        toelichting="t",
    )
    assert (ref.url, ref.identificatie) == (ZAAK["url"], "ZAAK-2026-0000000003")
    request = api.calls[0].request
    assert request.headers["Accept-Crs"] == "EPSG:4326"
    assert request.headers["Content-Crs"] == "EPSG:4326"
    assert request.headers["Authorization"].startswith("Bearer ")
    body = sent_json(api.calls[0])
    assert body["bronorganisatie"] == body["verantwoordelijkeOrganisatie"] == RSIN
    assert body["zaaktype"] == ZAAKTYPE["url"]
    assert body["startdatum"] == "2026-11-29"
    assert body["kenmerken"] == [{"bron": "zgw-identificatie", "kenmerk": "3f2a9c"}]


def test_add_initiator_sends_the_bsn_only_in_the_body_with_a_roltoelichting(api: responses.RequestsMock) -> None:
    """Z4: natuurlijk_persoon, inpBsn, roltype, roltoelichting always present."""
    api.get(ZAAK["url"], json=answer("05"), headers={"Content-Crs": "EPSG:4326"})
    api.post(ZAKEN + "rollen", status=201, json=answer("02"))
    url = registry().add_citizen_rol(zaak_url=ZAAK["url"], bsn=Bsn(BSN), toelichting="Geïdentificeerd met DigiD")
    assert url == answer("02")["url"]
    assert api.calls[0].request.headers["Accept-Crs"] == "EPSG:4326"  # the zaak, to learn its zaaktype
    body = sent_json(api.calls[1])
    assert body == {
        "zaak": ZAAK["url"],
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": REFS.roltype_url,
        "roltoelichting": "Geïdentificeerd met DigiD",
        "betrokkeneIdentificatie": {"inpBsn": BSN},
    }
    assert all(BSN not in c.request.url for c in api.calls)


def test_an_existing_zaak_of_another_zaaktype_version_gets_that_versions_roltype(
    api: responses.RequestsMock,
) -> None:
    """The initiator roltype is looked up for the zaaktype the existing zaak really has."""
    old_zaaktype = CATALOGI + "zaaktypen/0ld"
    old_roltype = {**ROLTYPEN["results"][1], "url": CATALOGI + "roltypen/0ld", "zaaktype": old_zaaktype}
    api.get(ZAAK["url"], json={**answer("05"), "zaaktype": old_zaaktype}, headers={"Content-Crs": "EPSG:4326"})
    api.get(CATALOGI + "roltypen", json=page(old_roltype))
    api.post(ZAKEN + "rollen", status=201, json=answer("02"))
    registry().add_citizen_rol(zaak_url=ZAAK["url"], bsn=Bsn(BSN), toelichting="t")
    assert sent_json(api.calls[2])["roltype"] == old_roltype["url"]


def test_set_first_status_sends_the_first_statustype_and_a_utc_time(api: responses.RequestsMock) -> None:
    """Z5: statustype of volgnummer 1 and datumStatusGezet."""
    api.post(ZAKEN + "statussen", status=201, json=answer("13"))
    registry().set_first_status(
        zaak_url=ZAAK["url"],
        when=datetime(2026, 11, 29, 22, 29, 29, tzinfo=UTC),
        toelichting="Identificatie vastgelegd",
    )
    body = sent_json(api.calls[0])
    assert body["statustype"] == REFS.statustype_url
    assert body["datumStatusGezet"] == "2026-11-29T22:29:29Z"


def test_upload_document_sends_a_findable_pdf_with_gebruiksrecht_false(api: responses.RequestsMock) -> None:
    """D1: identificatie from the marker, base64 inhoud, settings' taal and vertrouwelijkheid."""
    api.post(DOCUMENTEN + "enkelvoudiginformatieobjecten", status=201, json=answer("03"))
    pdf = b"%PDF-1.4 proof"
    registry().upload_document(
        marker="3f2a9c",
        titel="Bewijs",
        bestandsnaam="identificatie.pdf",
        inhoud=pdf,
        creatiedatum=date(2026, 11, 29),
        beschrijving="b",
    )
    body = sent_json(api.calls[0])
    assert body["identificatie"] == document_identificatie("3f2a9c") == "ZGWID-3f2a9c"
    assert body["bronorganisatie"] == RSIN
    assert body["auteur"] == "Gemeente Voorbeeld"
    assert (body["taal"], body["formaat"], body["vertrouwelijkheidaanduiding"]) == (
        "nld",
        "application/pdf",
        "vertrouwelijk",
    )
    assert body["inhoud"] == "JVBERi0xLjQgcHJvb2Y="
    assert body["bestandsomvang"] == len(pdf)
    assert body["indicatieGebruiksrecht"] is False
    assert body["informatieobjecttype"] == IOTYPE_URL


def test_link_document_creates_the_zaakinformatieobject(api: responses.RequestsMock) -> None:
    """Z6: zaak, informatieobject, titel."""
    api.post(ZAKEN + "zaakinformatieobjecten", status=201, json=answer("04"))
    document = answer("03")["url"]
    url = registry().link_document(zaak_url=ZAAK["url"], document_url=document, titel="Bewijs")
    assert url == answer("04")["url"]
    assert sent_json(api.calls[0]) == {"zaak": ZAAK["url"], "informatieobject": document, "titel": "Bewijs"}


# --- finds ----------------------------------------------------------------------------------------


def test_find_zaak_by_marker_follows_pagination_and_matches_the_kenmerk(api: responses.RequestsMock) -> None:
    """Z2 with bronorganisatie, zaaktype and startdatum; the match is on page 2."""
    other = {**ZAAK, "url": ZAKEN + "zaken/other", "kenmerken": [{"bron": "elders", "kenmerk": "3f2a9c"}]}
    ours = {**ZAAK, "kenmerken": [{"bron": "zgw-identificatie", "kenmerk": "3f2a9c"}]}

    def listing(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        body = page(ours) if query.get("page") == ["2"] else page(other, next_url=ZAKEN + "zaken?page=2&x=1")
        return 200, {"Content-Crs": "EPSG:4326"}, json.dumps(body)

    api.add_callback(responses.GET, ZAKEN + "zaken", callback=listing)
    ref = registry().find_zaak_by_marker(marker="3f2a9c", startdatum=date(2026, 11, 29))
    assert ref is not None and ref.url == ZAAK["url"]
    first = parse_qs(urlsplit(api.calls[0].request.url).query)
    assert first == {"bronorganisatie": [RSIN], "zaaktype": [ZAAKTYPE["url"]], "startdatum": ["2026-11-29"]}
    assert all(c.request.headers["Accept-Crs"] == "EPSG:4326" for c in api.calls)


def test_find_zaak_by_marker_returns_none_when_no_zaak_carries_it(api: responses.RequestsMock) -> None:
    """No kenmerk match → None (so the zaak will be created)."""
    api.get(ZAKEN + "zaken", json=page(ZAAK))
    assert registry().find_zaak_by_marker(marker="3f2a9c", startdatum=date(2026, 11, 29)) is None


def test_find_zaak_returns_the_zaak_with_that_identificatie(api: responses.RequestsMock) -> None:
    """Z2 by identificatie and bronorganisatie."""
    api.get(ZAKEN + "zaken", json=page(answer("05")))
    ref = registry().find_zaak("ZAAK-2026-0000000003")
    assert ref.url == ZAAK["url"]
    query = parse_qs(urlsplit(api.calls[0].request.url).query)
    assert query == {"identificatie": ["ZAAK-2026-0000000003"], "bronorganisatie": [RSIN]}


def test_find_zaak_raises_zaak_not_found_for_an_unknown_identificatie(api: responses.RequestsMock) -> None:
    """An empty list → ZaakNotFound."""
    api.get(ZAKEN + "zaken", json=page())
    with pytest.raises(ZaakNotFound):
        registry().find_zaak("ZAAK-2026-0000009999")


def test_find_initiator_matches_the_bsn_locally_never_in_the_url(api: responses.RequestsMock) -> None:
    """The rollen of the zaak are listed and compared here, so the BSN is not in an access log."""
    api.get(ZAKEN + "rollen", json=answer("09"))
    reg = registry()
    assert reg.find_citizen_rol(zaak_url=ZAAK["url"], bsn=Bsn(BSN)) == answer("02")["url"]
    assert reg.find_citizen_rol(zaak_url=ZAAK["url"], bsn=Bsn("111222333")) is None
    assert all(BSN not in c.request.url for c in api.calls)


def test_find_status_document_and_link_return_what_exists(api: responses.RequestsMock) -> None:
    """find_status (paginated), find_document (identificatie filter), find_link (plain array)."""
    api.get(ZAKEN + "statussen", json=page(answer("13")))
    document = {**answer("07"), "identificatie": "ZGWID-3f2a9c"}
    api.get(DOCUMENTEN + "enkelvoudiginformatieobjecten", json=page(document))
    api.get(ZAKEN + "zaakinformatieobjecten", json=answer("06"))
    reg = registry()
    assert reg.find_status(zaak_url=ZAAK["url"]) == answer("13")["url"]
    assert reg.find_document(marker="3f2a9c") == document["url"]
    assert reg.find_link(zaak_url=ZAAK["url"], document_url=document["url"]) == answer("06")[0]["url"]
    query = parse_qs(urlsplit(api.calls[1].request.url).query)
    assert query == {"identificatie": ["ZGWID-3f2a9c"], "bronorganisatie": [RSIN]}


# --- errors ---------------------------------------------------------------------------------------


def test_a_400_becomes_registration_failed_with_the_invalid_params(api: responses.RequestsMock) -> None:
    """The recorded ValidationError's invalidParams are kept; nothing is retried."""
    recording = recorded("17")["response"]
    api.post(ZAKEN + "zaken", status=400, json=recording["json"])
    with pytest.raises(RegistrationFailed) as caught:
        registry().create_zaak(marker="m", startdatum=date(2026, 11, 29), omschrijving="o", toelichting="t")
    assert {p["name"] for p in caught.value.invalid_params} == {
        "bronorganisatie",
        "zaaktype",
        "verantwoordelijkeOrganisatie",
        "startdatum",
    }
    assert "400" in str(caught.value)
    assert len(api.calls) == 1


def test_a_403_for_a_bad_jwt_is_a_refusal_not_an_outage(api: responses.RequestsMock) -> None:
    """The recorded invalid-jwt-signature answer → RegistrationFailed."""
    api.get(ZAKEN + "statussen", status=403, json=recorded("18")["response"]["json"])
    with pytest.raises(RegistrationFailed, match="invalid-jwt-signature"):
        registry().find_status(zaak_url=ZAAK["url"])


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"code": "error"}},
        {"status": 502, "body": "Bad gateway"},
        {"status": 503, "json": {"code": "unavailable"}},
        {"status": 429, "json": {"code": "throttled"}},
        {"body": requests.ReadTimeout("read timed out")},
        {"body": requests.ConnectTimeout("connect timed out")},
        {"body": requests.ConnectionError("connection reset")},
    ],
)
def test_outages_become_registry_unavailable(api: responses.RequestsMock, failure: dict[str, Any]) -> None:
    """Time-outs, connection errors, 429 and 5xx are transient."""
    api.post(ZAKEN + "statussen", **failure)
    with pytest.raises(RegistryUnavailable):
        registry().set_first_status(zaak_url=ZAAK["url"], when=datetime(2026, 11, 29, tzinfo=UTC), toelichting="t")
    assert [c.request.method for c in api.calls] == ["POST"]


def test_a_bsn_echoed_by_the_server_does_not_reach_the_exception_or_the_log(
    api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """Nine-digit numbers in an error answer are masked."""
    caplog.set_level(logging.DEBUG)
    api.get(ZAAK["url"], json=answer("05"), headers={"Content-Crs": "EPSG:4326"})
    api.post(
        ZAKEN + "rollen",
        status=400,
        json={
            "type": "x",
            "code": "invalid",
            "title": f"BSN {BSN} ongeldig",
            "status": 400,
            "detail": "",
            "instance": "urn:uuid:3",
            "invalidParams": [{"name": "betrokkeneIdentificatie.inpBsn", "code": "invalid", "reason": f"{BSN} fout"}],
        },
    )
    with pytest.raises(RegistrationFailed) as caught:
        registry().add_citizen_rol(zaak_url=ZAAK["url"], bsn=Bsn(BSN), toelichting="t")
    assert BSN not in str(caught.value)
    assert BSN not in json.dumps(caught.value.invalid_params)
    assert BSN not in caplog.text


# --- check-config (issue 9 #3) --------------------------------------------------------------------


def test_check_access_reads_each_api_and_prints_what_it_resolved(api: responses.RequestsMock) -> None:
    catalogue_answers(api)
    api.get(ZAKEN + "zaken", json=page())
    api.get(DOCUMENTEN + "enkelvoudiginformatieobjecten", json=page())
    lines = check_access(build_registry(make_settings(), today=date(2026, 11, 29)))
    text = "\n".join(lines)
    assert ZAAKTYPE["url"] in text and IOTYPE_URL in text
    assert f"{ZAKEN} (read with zaken.lezen: ok)" in text
    assert f"{DOCUMENTEN} (read with documenten.lezen: ok)" in text
    reads = [urlsplit(c.request.url).path for c in api.calls if not c.request.url.startswith(CATALOGI)]
    assert reads == ["/zaken/api/v1/zaken", "/documenten/api/v1/enkelvoudiginformatieobjecten"]


@pytest.mark.parametrize(("api_name", "scope"), [("zaken", "zaken.lezen"), ("documenten", "documenten.lezen")])
def test_check_access_names_the_missing_scope(api: responses.RequestsMock, api_name: str, scope: str) -> None:
    catalogue_answers(api)
    denied = {
        "type": "x",
        "code": "permission_denied",
        "title": "U heeft geen toestemming om deze actie uit te voeren.",
        "status": 403,
        "detail": "",
        "instance": "urn:uuid:9",
    }
    if api_name == "zaken":
        api.get(ZAKEN + "zaken", status=403, json=denied)
    else:
        api.get(ZAKEN + "zaken", json=page())
        api.get(DOCUMENTEN + "enkelvoudiginformatieobjecten", status=403, json=denied)
    with pytest.raises(ConfigError, match=f"lacks the scope {scope}"):
        check_access(build_registry(make_settings(), today=date(2026, 11, 29)))


# --- §2.1 code confirmation: a later status of a configured statustype (flows/confirmation.py) -----------

IN_BEHANDELING = next(s for s in STATUSTYPEN["results"] if s["omschrijving"] == "In behandeling")


def confirmation_registry() -> ZgwHttpRegistry:
    return ZgwHttpRegistry(make_settings(statustype_code_klopt="In behandeling"), REFS)


def test_the_confirmation_status_has_the_configured_statustype_and_comes_after_the_latest(
    api: responses.RequestsMock,
) -> None:
    """The zaak's zaaktype → its statustypen by omschrijving; datumStatusGezet a second after the latest status
    when the confirmation's own time is not later (zaak + datumStatusGezet is unique, the latest is current)."""
    api.get(ZAAK["url"], json=answer("05"), headers={"Content-Crs": "EPSG:4326"})
    api.get(CATALOGI + "statustypen", json=STATUSTYPEN)
    api.get(ZAKEN + "statussen", json=page(answer("13")))  # set at 2026-11-29T21:29:29Z
    api.post(ZAKEN + "statussen", status=201, json={**answer("13"), "statustype": IN_BEHANDELING["url"]})
    url = confirmation_registry().add_status(
        zaak_url=ZAAK["url"],
        statustype_omschrijving="In behandeling",
        when=datetime(2026, 11, 29, 21, 29, 29, tzinfo=UTC),
        toelichting="Code klopt: behandelaar Sanne de Vries",
    )
    assert url == answer("13")["url"]
    body = sent_json(api.calls[-1])
    assert body["statustype"] == IN_BEHANDELING["url"]
    assert body["datumStatusGezet"] == "2026-11-29T21:29:30Z"
    assert body["statustoelichting"] == "Code klopt: behandelaar Sanne de Vries"
    assert parse_qs(urlsplit(api.calls[1].request.url).query)["zaaktype"] == [ZAAK["zaaktype"]]


def test_find_status_of_type_only_returns_a_status_of_that_statustype(api: responses.RequestsMock) -> None:
    api.get(ZAAK["url"], json=answer("05"), headers={"Content-Crs": "EPSG:4326"})
    api.get(CATALOGI + "statustypen", json=STATUSTYPEN)
    other = answer("13")
    ours = {**answer("13"), "url": ZAKEN + "statussen/ours", "statustype": IN_BEHANDELING["url"]}
    api.get(ZAKEN + "statussen", json=page(other))
    reg = confirmation_registry()
    assert reg.find_status_of_type(zaak_url=ZAAK["url"], statustype_omschrijving="In behandeling") is None
    api.replace(responses.GET, ZAKEN + "statussen", json=page(other, ours))
    assert reg.find_status_of_type(zaak_url=ZAAK["url"], statustype_omschrijving="In behandeling") == ours["url"]


def test_a_zaaktype_without_the_confirmation_statustype_fails_naming_the_setting(api: responses.RequestsMock) -> None:
    api.get(ZAAK["url"], json=answer("05"), headers={"Content-Crs": "EPSG:4326"})
    api.get(CATALOGI + "statustypen", json=STATUSTYPEN)
    with pytest.raises(RegistrationFailed, match="ZGWID_ZGW_STATUSTYPE_CODE_KLOPT") as caught:
        confirmation_registry().add_status(
            zaak_url=ZAAK["url"],
            statustype_omschrijving="Identiteit vastgesteld",
            when=datetime(2026, 11, 29, 22, tzinfo=UTC),
            toelichting="t",
        )
    assert caught.value.invalid_params[0]["code"] == "no-statustype"
