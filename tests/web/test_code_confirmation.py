"""§2.1 over HTTP with the sealed proof: the sandbox gets a sealed PDF that verifies, and the behandelaar's
"Code klopt" becomes exactly one status on the zaak (also when the request and the worker run again).

The real app, the DigiD simulator and the ZGW sandbox in one process; a FixedClock shared by the app and
the sandbox so the confirmation's status is set later than the registration's first status.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from demo_driver import API_KEY, BASE_URL, PASSWORD, Citizen, Staff, csrf, run_worker
from zgw_identificatie.adapters.digid.keys import read_pem, simulator_key_files
from zgw_identificatie.adapters.proof_verify import verify_proof
from zgw_identificatie.app import create_app, services_of
from zgw_identificatie.domain.confirmation import ConfirmationState
from zgw_identificatie.domain.errors import RegistryUnavailable
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.settings import make_settings
from zgw_identificatie.web.security import hash_secret_sha256

BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        self.settings = make_settings(
            tmp_path,
            base_url=BASE_URL,
            staff_users={"sanne": {"name": "Sanne de Vries", "password_hash": generate_password_hash(PASSWORD)}},
            api_keys={
                "demo": {"key_hash": hash_secret_sha256(API_KEY), "name": "Demo", "behandelaar": "Team Burgerzaken"}
            },
        )
        self.app = create_app(self.settings, adapters={"clock": self.clock})
        self.services = services_of(self.app)
        self.sandbox = next(bp.sandbox for bp in self.app.blueprints.values() if hasattr(bp, "sandbox"))

    def identified(self, staff: Staff) -> str:
        """A §2.1 session whose citizen logged in and whose zaak is registered; returns its id."""
        sid = staff.start("new-citizen")
        Citizen.new(self.app).login(sid, bsn=BSN)
        assert run_worker(self.app) >= 1
        assert staff.status(sid)["registration"]["state"] == "done"
        self.clock.advance(seconds=5)
        return sid

    def statussen(self, omschrijving: str) -> list[dict[str, Any]]:
        types = {t["url"] for t in self.sandbox.all("statustypen") if t["omschrijving"] == omschrijving}
        return [s for s in self.sandbox.all("statussen") if s["statustype"].split("/api/v1/")[-1] in _tails(types)]


def _tails(urls: set[str]) -> set[str]:
    return {u.split("/api/v1/")[-1] for u in urls}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def confirm_on_page(staff: Staff, sid: str, answer: str) -> Any:
    page = staff.client.get(f"/staff/sessions/{sid}")
    return staff.client.post(
        f"/staff/sessions/{sid}/code-bevestiging", data={"csrf_token": csrf(page.text), "uitkomst": answer}
    )


def test_the_zaak_gets_a_sealed_proof_with_the_right_size_and_integrity_that_verifies(world: World) -> None:
    staff = Staff.login(world.app)
    world.identified(staff)
    [document] = world.sandbox.all("enkelvoudiginformatieobjecten")
    pdf = _download(world)
    assert document["bestandsomvang"] == len(pdf)
    assert document["integriteit"] == {
        "algoritme": "sha_256",
        "waarde": hashlib.sha256(pdf).hexdigest(),
        "datum": document["integriteit"]["datum"],
    }
    digid_cert = read_pem(simulator_key_files(world.settings.instance_path).idp_cert)
    seal_cert = (Path(world.settings.instance_path) / "seal" / "seal.crt").read_bytes()
    verdict = verify_proof(pdf, digid_certs=[digid_cert], seal_certs=[seal_cert])
    assert verdict.ok, verdict.reason
    registration = world.services.store.registration_for_session(
        world.services.store.list_for_owner("local:sanne")[0].id
    )
    assert registration is not None and registration.proof is None  # the payload (BSN, assertion) is erased


def _download(world: World) -> bytes:
    staff_client = world.app.test_client()
    html = staff_client.get("/sandbox/").get_data(as_text=True)
    link = re.search(r'href="(/sandbox/documenten/[^"]+\.pdf)"', html)
    assert link is not None
    return staff_client.get(link.group(1)).data


def test_code_klopt_on_the_staff_page_sets_one_status_naming_the_behandelaar(world: World) -> None:
    staff = Staff.login(world.app)
    sid = world.identified(staff)
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert "Code klopt niet" in page and 'value="klopt"' in page
    assert "Vraag de inwoner de code voor te lezen." in page
    assert confirm_on_page(staff, sid, "klopt").status_code == 303
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert "Uw oordeel: de code klopt." in page and "Wordt in de zaak vastgelegd." in page
    assert "Vraag de inwoner de code voor te lezen." not in page  # asked and answered: the next step is Voltooien
    assert "Klik op Voltooien als u klaar bent." in page
    assert 'value="klopt"' not in page  # answered: no buttons any more
    assert world.statussen("Identiteit vastgesteld") == []  # the worker sets it, not the request

    run_worker(world.app)
    [status] = world.statussen("Identiteit vastgesteld")
    assert "Sanne de Vries" in status["statustoelichting"] and "local:sanne" in status["statustoelichting"]
    assert "Code klopt" in status["statustoelichting"]
    assert BSN not in status["statustoelichting"]
    assert "Staat in de zaak." in staff.client.get(f"/staff/sessions/{sid}").text
    assert staff.status(sid)["confirmation"]["state"] == "done"

    # again: the same click, the worker again → still one status; the other answer is refused
    assert confirm_on_page(staff, sid, "klopt").status_code == 303
    run_worker(world.app)
    assert len(world.statussen("Identiteit vastgesteld")) == 1
    assert confirm_on_page(staff, sid, "klopt-niet").status_code == 409
    assert world.statussen("Identiteit niet vastgesteld") == []

    events = [(e.event, e.outcome, e.actor) for e in world.services.store.list_audit(session_id=sid)]
    assert ("code-confirmed", "code-klopt", "local:sanne") in events
    assert ("code-confirmation-on-zaak", "code-klopt", "worker") in events
    assert sum(1 for e in events if e[0] == "code-confirmed") == 1


def test_code_klopt_niet_tells_the_behandelaar_not_to_go_on(world: World) -> None:
    staff = Staff.login(world.app)
    sid = world.identified(staff)
    assert confirm_on_page(staff, sid, "klopt-niet").status_code == 303
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert "Uw oordeel: de code klopt NIET." in page
    assert "Ga niet verder op basis van deze identificatie." in page
    assert "Vraag de inwoner de code voor te lezen." not in page


def test_the_api_confirms_once_and_answers_200_on_a_retry(world: World) -> None:
    api = world.app.test_client()
    created = api.post("/api/v1/sessions", json={"flow": "new-citizen"}, headers=AUTH).get_json()
    sid = created["id"]
    assert created["confirmation"] is None
    too_early = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": False}, headers=AUTH)
    assert too_early.status_code == 409 and too_early.mimetype == "application/problem+json"
    Citizen.new(world.app).login(sid, bsn=BSN)
    run_worker(world.app)
    world.clock.advance(seconds=5)

    first = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": False}, headers=AUTH)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["codeMatches"] is False and first.get_json()["behandelaar"] == "Team Burgerzaken"
    again = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": False}, headers=AUTH)
    assert again.status_code == 200
    other = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": True}, headers=AUTH)
    assert other.status_code == 409
    bad = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": "ja"}, headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["invalidParams"][0]["name"] == "codeMatches"
    run_worker(world.app)
    run_worker(world.app)
    [status] = world.statussen("Identiteit niet vastgesteld")
    assert "Team Burgerzaken" in status["statustoelichting"] and "NIET gelijk" in status["statustoelichting"]
    assert world.statussen("Identiteit vastgesteld") == []
    got = api.get(f"/api/v1/sessions/{sid}", headers=AUTH)
    session = got.get_json()
    assert session["confirmation"]["state"] == "done" and session["confirmation"]["statusUrl"]
    for response in (too_early, first, again, other, bad, got):
        documented(api, response)  # every answer as the OpenAPI document says


def documented(client: Any, response: Any) -> None:
    import json

    from openapi_core import Config, OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    doc = client.get("/api/v1/openapi.json").get_json()
    request = MockRequest(BASE_URL, response.request.method.lower(), response.request.path)
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    OpenAPI.from_dict(doc, config=config).validate_response(
        request, MockResponse(response.data, status_code=response.status_code, content_type=response.mimetype)
    )


def test_known_citizen_and_mutual_have_no_code_confirmation(world: World) -> None:
    api = world.app.test_client()
    for body in ({"flow": "known-citizen", "bsn": BSN}, {"flow": "mutual"}):
        sid = api.post("/api/v1/sessions", json=body, headers=AUTH).get_json()["id"]
        answer = api.post(f"/api/v1/sessions/{sid}/confirmation", json={"codeMatches": True}, headers=AUTH)
        assert answer.status_code == 409
        assert "new-citizen" in answer.get_json()["detail"]


def test_a_lost_answer_from_the_zaaksysteem_does_not_set_a_second_status(world: World) -> None:
    """The status is created but the answer never arrives (the worker crashed): the next attempt finds it."""
    staff = Staff.login(world.app)
    sid = world.identified(staff)
    confirm_on_page(staff, sid, "klopt")
    registry = world.services.registry
    real_add = registry.add_status

    def add_then_lose(**kwargs: Any) -> str:
        real_add(**kwargs)
        raise RegistryUnavailable("connection dropped after the status was created")

    registry.add_status = add_then_lose  # type: ignore[method-assign]
    try:
        run_worker(world.app)
    finally:
        registry.add_status = real_add  # type: ignore[method-assign]
    stored = world.services.store.confirmation_for_session(sid)
    assert stored is not None and stored.state is ConfirmationState.PENDING and stored.uncertain
    world.clock.advance(minutes=1)
    run_worker(world.app)
    assert len(world.statussen("Identiteit vastgesteld")) == 1
    stored = world.services.store.confirmation_for_session(sid)
    assert stored is not None and stored.state is ConfirmationState.DONE and stored.status_url
