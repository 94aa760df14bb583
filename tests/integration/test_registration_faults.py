"""The registration against the ZGW sandbox through the real HTTP clients, with injected faults.

The sandbox runs in-process (``SandboxTransport``); a "timeout" or "drop" fault lets the sandbox do
the work and then loses the answer, exactly the case the ``find_*`` lookups exist for.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from flask import Flask
from pypdf import PdfReader
from requests.adapters import BaseAdapter

from zgw_identificatie.adapters.proof_pdf import ReportlabProofRenderer
from zgw_identificatie.adapters.zgw import ZgwHttpRegistry, build_registry
from zgw_identificatie.demo.zgw_sandbox import ZgwSandbox, create_sandbox_blueprint, sandbox_api_roots, sandbox_http
from zgw_identificatie.domain.registration import Registration
from zgw_identificatie.domain.sessions import RegistrationState
from zgw_identificatie.flows.registration import (
    NotResumable,
    ZaakNotUsable,
    check_existing_zaak,
    process_due,
    resume,
    run_registration,
    start_registration,
)
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.builders import a_proof, a_session
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.store import InMemorySessionStore
from zgw_identificatie.testing.zgw import FakeProofRenderer

BASE = "http://zgwid.test"
BSN = "111222333"
WRITE_PATHS = {
    "zaak": "/zaken/api/v1/zaken",
    "rol": "/zaken/api/v1/rollen",
    "status": "/zaken/api/v1/statussen",
    "document": "/documenten/api/v1/enkelvoudiginformatieobjecten",
    "link": "/zaken/api/v1/zaakinformatieobjecten",
}


@dataclass
class Stack:
    clock: FixedClock
    settings: Settings
    sandbox: ZgwSandbox
    registry: ZgwHttpRegistry
    store: InMemorySessionStore
    renderer: FakeProofRenderer | ReportlabProofRenderer
    sandbox_app: Flask

    def start(self, existing_zaak: str | None = None) -> Registration:
        now = self.clock.now()
        session = a_session(now, id="sess-faults-0001", gemeente=self.settings.gemeente_naam)
        self.store.add(session)
        proof = a_proof(
            now - timedelta(minutes=1),
            bsn=BSN,
            gemeente=self.settings.gemeente_naam,
            zaak_identificatie=existing_zaak or "",
            session_id=session.id,
        )
        return start_registration(session, proof, existing_zaak=existing_zaak, store=self.store, clock=self.clock)

    def run(self, reg: Registration) -> Registration:
        return run_registration(
            reg,
            store=self.store,
            registry=self.registry,
            renderer=self.renderer,
            clock=self.clock,
            settings=self.settings,
        )

    def process(self) -> int:
        return process_due(
            store=self.store,
            registry=self.registry,
            renderer=self.renderer,
            clock=self.clock,
            settings=self.settings,
            limit=10,
        )

    def current(self, reg: Registration) -> Registration:
        found = self.store.get_registration(reg.id)
        assert found is not None
        return found

    def counts(self) -> dict[str, int]:
        kinds = ["zaken", "rollen", "statussen", "enkelvoudiginformatieobjecten", "zaakinformatieobjecten"]
        return {kind: len(self.sandbox.all(kind)) for kind in kinds}


def make_stack(*, renderer: FakeProofRenderer | ReportlabProofRenderer | None = None, **zgw: object) -> Stack:
    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    settings = Settings()
    settings.zgw.secret = "sandbox-test-secret-0123456789abcdef"
    for key, value in zgw.items():
        setattr(settings.zgw, key, value)
    app = Flask(__name__)
    blueprint = create_sandbox_blueprint(settings, clock=clock)
    app.register_blueprint(blueprint, url_prefix="/sandbox")
    registry = build_registry(
        settings, http=sandbox_http(app, BASE), roots=sandbox_api_roots(BASE), today=clock.now().date()
    )
    return Stack(
        clock, settings, blueprint.sandbox, registry, InMemorySessionStore(), renderer or FakeProofRenderer(), app
    )


ONE_OF_EACH = {"zaken": 1, "rollen": 1, "statussen": 1, "enkelvoudiginformatieobjecten": 1, "zaakinformatieobjecten": 1}


def test_a_registration_without_faults_records_one_of_everything_with_a_real_pdf() -> None:
    """Zaak, initiator rol, first status, the proof PDF and its link; the PDF names the zaak."""
    stack = make_stack(renderer=ReportlabProofRenderer())
    done = stack.run(stack.start())
    assert done.state is RegistrationState.DONE
    assert stack.counts() == ONE_OF_EACH
    zaak = stack.sandbox.all("zaken")[0]
    assert done.zaak_identificatie == zaak["identificatie"] == "ZAAK-2026-0000000001"
    assert zaak["kenmerken"] == [{"kenmerk": done.id, "bron": "zgw-identificatie"}]
    rol = stack.sandbox.all("rollen")[0]
    assert rol["betrokkeneIdentificatie"]["inpBsn"] == BSN
    assert rol["omschrijvingGeneriek"] == "initiator"
    document = stack.sandbox.all("enkelvoudiginformatieobjecten")[0]
    assert stack.sandbox.blobs[document["url"]].startswith(b"%PDF")
    text = PdfReader(io.BytesIO(stack.sandbox.blobs[document["url"]])).pages[0].extract_text()
    assert "ZAAK-2026-0000000001" in text
    assert document["indicatieGebruiksrecht"] is False


@pytest.mark.parametrize("kind", ["timeout", "503", "drop"])
@pytest.mark.parametrize("step", list(WRITE_PATHS))
def test_a_fault_at_any_write_step_recovers_to_exactly_one_of_everything(step: str, kind: str) -> None:
    """After a time-out, a 503 or a dropped connection the retry finishes without duplicates."""
    stack = make_stack()
    stack.sandbox.faults.add(WRITE_PATHS[step], kind)
    first = stack.run(stack.start())
    assert first.state is RegistrationState.RETRYING
    assert first.uncertain_step == step
    assert first.attempts == 1
    stack.clock.advance(seconds=2)
    assert stack.process() == 1
    done = stack.current(first)
    assert done.state is RegistrationState.DONE, done.error
    assert stack.counts() == ONE_OF_EACH
    assert done.proof is None


def test_a_fault_that_repeats_is_retried_with_growing_delays_until_it_clears() -> None:
    """Three 503s on the document upload: retries at +2, +4, +8 seconds, then done."""
    stack = make_stack()
    stack.sandbox.faults.add(WRITE_PATHS["document"], "503", times=3)
    reg = stack.run(stack.start())
    delays = []
    while reg.state is RegistrationState.RETRYING:
        delays.append((reg.next_attempt_at - stack.clock.now()).total_seconds())
        stack.clock.current = reg.next_attempt_at
        stack.process()
        reg = stack.current(reg)
    assert delays == [2, 4, 8]
    assert reg.state is RegistrationState.DONE
    assert stack.counts() == ONE_OF_EACH


def test_a_time_out_before_the_server_acted_creates_the_resource_on_retry() -> None:
    """A lost request (not processed) is found missing and created once."""
    stack = make_stack()
    stack.sandbox.faults.add(WRITE_PATHS["rol"], "timeout", processed=False)
    reg = stack.run(stack.start())
    stack.clock.advance(seconds=2)
    stack.process()
    assert stack.current(reg).state is RegistrationState.DONE
    assert stack.counts() == ONE_OF_EACH


def test_a_refusal_fails_with_its_reasons_and_is_not_retried() -> None:
    """A 400 (taal of two letters) → failed with invalidParams, one upload attempt only."""
    stack = make_stack(taal="nl")
    failed = stack.run(stack.start())
    assert failed.state is RegistrationState.FAILED
    assert [p[:2] for p in failed.invalid_params] == [("taal", "min_length")]
    assert failed.error is not None and failed.error.startswith("document:")
    stack.clock.advance(hours=2)
    assert stack.process() == 0
    uploads = [
        r for r in stack.sandbox.requests_seen if r == ("POST", "/documenten/api/v1/enkelvoudiginformatieobjecten")
    ]
    assert len(uploads) == 1
    session = stack.store.get(failed.session_id)
    assert session is not None and session.registration_state is RegistrationState.FAILED


def test_the_registration_attaches_to_an_existing_zaak_without_a_new_status() -> None:
    """With an existing zaak: no zaak created, no status set, rol and document linked to it."""
    stack = make_stack()
    existing = stack.sandbox.add_zaak("ZAAK-2026-0000000900")
    done = stack.run(stack.start(existing_zaak="ZAAK-2026-0000000900"))
    assert done.state is RegistrationState.DONE
    assert done.zaak_url is not None and done.zaak_url.endswith(existing["url"])
    assert stack.counts() == {
        "zaken": 1,
        "rollen": 1,
        "statussen": 0,
        "enkelvoudiginformatieobjecten": 1,
        "zaakinformatieobjecten": 1,
    }
    link = stack.sandbox.all("zaakinformatieobjecten")[0]
    assert link["zaak"] == existing["url"]


def test_an_unknown_existing_zaak_fails_the_registration() -> None:
    """A zaak identificatie the zaaksysteem does not know → failed, nothing created."""
    stack = make_stack()
    failed = stack.run(stack.start(existing_zaak="ZAAK-2026-0000000404"))
    assert failed.state is RegistrationState.FAILED
    assert stack.counts()["rollen"] == 0


def test_a_second_proof_on_the_same_existing_zaak_reuses_the_citizens_rol() -> None:
    """Open Zaak allows one initiator per zaak: a second identification adds a document, not a rol."""
    stack = make_stack()
    stack.sandbox.add_zaak("ZAAK-2026-0000000901")
    first = stack.run(stack.start(existing_zaak="ZAAK-2026-0000000901"))
    again = stack.run(stack.start(existing_zaak="ZAAK-2026-0000000901"))
    assert first.state is again.state is RegistrationState.DONE
    assert first.rol_url == again.rol_url
    assert stack.counts()["rollen"] == 1 and stack.counts()["zaakinformatieobjecten"] == 2


def test_no_bsn_ever_appears_in_a_url_sent_to_the_zaaksysteem() -> None:
    """Across a faulty run with lookups, the BSN travels only in a request body."""
    stack = make_stack()
    stack.sandbox.faults.add(WRITE_PATHS["rol"], "timeout")
    reg = stack.run(stack.start())
    stack.clock.advance(seconds=2)
    stack.process()
    assert stack.current(reg).state is RegistrationState.DONE
    seen = stack.sandbox.requests_seen
    assert any("?" in path for _, path in seen)  # the lookups were made, with their query strings
    assert not any(BSN in path for _, path in seen)


# --- issue 9: resumable registrations, every failure an attempt, the behandelaar in the JWT ------------


class Deny(BaseAdapter):
    """Answers ``POST <path>`` with Open Zaak's 403 (the Applicatie lacks a scope) while ``on``; everything
    else goes to the sandbox. The request never reaches the sandbox, as with a real refusal."""

    def __init__(self, inner: BaseAdapter, path: str) -> None:
        super().__init__()
        self.inner, self.path, self.on = inner, path, True

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self.on and request.method == "POST" and urlsplit(request.url or "").path.endswith(self.path):
            response = requests.Response()
            response.status_code = 403
            response.headers["Content-Type"] = "application/problem+json"
            response._content = json.dumps(
                {
                    "type": "https://zaken.test/ref/fouten/PermissionDenied/",
                    "code": "permission_denied",
                    "title": "U heeft geen toestemming om deze actie uit te voeren.",
                    "status": 403,
                    "detail": "U heeft geen toestemming om deze actie uit te voeren.",
                    "instance": "urn:uuid:403",
                }
            ).encode()
            response.request, response.url = request, request.url
            return response
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        self.inner.close()


def deny(stack: Stack, path: str) -> Deny:
    session = stack.registry.zaken.session
    prefix = BASE + "/sandbox/"
    adapter = Deny(session.get_adapter(prefix + "zaken/api/v1/"), path)
    session.mount(prefix, adapter)
    return adapter


def test_a_403_at_the_rol_step_leaves_a_resumable_registration_that_resume_finishes_once() -> None:
    """Issue 9 #1: the zaak stays known, the citizen sees no zaaknummer, and after the operator fixed the
    Applicatie, resume continues at the rol: exactly one zaak, rol, status, document and link."""
    stack = make_stack()
    refusal = deny(stack, "/rollen")
    failed = stack.run(stack.start())
    assert failed.state is RegistrationState.FAILED
    assert failed.error is not None and failed.error.startswith("rol:") and "403" in failed.error
    assert failed.zaak_url is not None and failed.rol_url is None
    assert failed.proof is not None  # kept, so the registration can be finished
    assert stack.counts() == {**ONE_OF_EACH, "rollen": 0, "statussen": 0, "enkelvoudiginformatieobjecten": 0,
                              "zaakinformatieobjecten": 0}  # fmt: skip
    session = stack.store.get(failed.session_id)
    assert session is not None and session.registration_state is RegistrationState.FAILED

    refusal.on = False  # the Applicatie got zaken.bijwerken
    reopened = resume(failed.session_id, store=stack.store, clock=stack.clock, actor="jdv")
    assert reopened.state is RegistrationState.PENDING and reopened.attempts == 0 and reopened.error is None
    assert reopened.zaak_url == failed.zaak_url
    assert stack.process() == 1
    done = stack.current(failed)
    assert done.state is RegistrationState.DONE, done.error
    assert done.zaak_url == failed.zaak_url
    assert stack.counts() == ONE_OF_EACH
    zaak_posts = [r for r in stack.sandbox.requests_seen if r == ("POST", "/zaken/api/v1/zaken")]
    assert len(zaak_posts) == 1
    session = stack.store.get(failed.session_id)
    assert session is not None and session.registration_state is RegistrationState.DONE
    with pytest.raises(NotResumable) as again:
        resume(failed.session_id, store=stack.store, clock=stack.clock, actor="jdv")
    assert again.value.reason == "not-failed"


def test_two_resumes_racing_reopen_once_and_the_lease_runs_the_registration_once() -> None:
    stack = make_stack()
    refusal = deny(stack, "/rollen")
    failed = stack.run(stack.start())
    refusal.on = False
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def resume_and_process() -> None:
        barrier.wait()
        try:
            resume(failed.session_id, store=stack.store, clock=stack.clock, actor="jdv")
            outcomes.append("resumed")
        except NotResumable as exc:
            outcomes.append(exc.reason)
        stack.process()

    threads = [threading.Thread(target=resume_and_process) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("resumed") == 1
    assert stack.current(failed).state is RegistrationState.DONE
    assert stack.counts() == ONE_OF_EACH
    rol_posts = [r for r in stack.sandbox.requests_seen if r == ("POST", "/zaken/api/v1/rollen")]
    assert len(rol_posts) == 1


def test_a_registration_without_its_proof_cannot_be_resumed() -> None:
    stack = make_stack()
    deny(stack, "/rollen")
    failed = stack.run(stack.start())
    stack.store.registrations[failed.id] = replace(failed, proof=None)  # as the purge does after a day
    with pytest.raises(NotResumable) as refused:
        resume(failed.session_id, store=stack.store, clock=stack.clock, actor="jdv")
    assert refused.value.reason == "proof-erased"


def test_every_zgw_request_of_a_registration_names_the_behandelaar_in_the_jwt() -> None:
    """Issue 9 #5: Open Zaak's audit trail takes gebruikersId/gebruikersWeergave from these claims."""
    stack = make_stack()
    claims: list[dict[str, Any]] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        token = str(response.request.headers["Authorization"]).removeprefix("Bearer ")
        claims.append(jwt.decode(token, stack.settings.zgw.secret, algorithms=["HS256"]))

    for client in (stack.registry.zaken, stack.registry.documenten, stack.registry.catalogi):
        client.session.hooks["response"].append(record)
    reg = stack.start()
    assert (reg.user_id, reg.user_representation) == ("jdv", "Jan de Vries")
    assert stack.run(reg).state is RegistrationState.DONE
    assert len(claims) >= 5
    assert {(c["user_id"], c["user_representation"]) for c in claims} == {("jdv", "Jan de Vries")}
    assert {c["client_id"] for c in claims} == {stack.settings.zgw.client_id}
    # outside a registration the service speaks for itself
    claims.clear()
    stack.registry.find_status(zaak_url=str(reg.zaak_url or stack.current(reg).zaak_url))
    assert claims and claims[0]["user_id"] == stack.settings.zgw.client_id


def test_a_catalogue_that_no_longer_resolves_is_a_recorded_attempt_with_backoff() -> None:
    """Issue 9 #2: a ConfigError while running (zaaktype gone) is retried like an outage, its error stored."""
    stack = make_stack()
    stack.settings.zgw.zaaktype_identificatie = "GONE"
    stack.registry = build_registry(
        stack.settings,
        http=sandbox_http(stack.sandbox_app, BASE),
        roots=sandbox_api_roots(BASE),
        resolve_now=False,
        today=stack.clock.now().date(),
    )
    reg = stack.run(stack.start())
    assert reg.state is RegistrationState.RETRYING and reg.attempts == 1
    assert reg.error is not None and "ZGWID_ZGW_ZAAKTYPE_IDENTIFICATIE" in reg.error
    session = stack.store.get(reg.session_id)
    assert session is not None and session.registration_error == reg.error


def test_the_zaak_check_at_start_reads_on_behalf_of_the_behandelaar_and_tells_the_reasons_apart() -> None:
    stack = make_stack()
    users: list[str] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        token = str(response.request.headers["Authorization"]).removeprefix("Bearer ")
        users.append(jwt.decode(token, stack.settings.zgw.secret, algorithms=["HS256"])["user_id"])

    stack.registry.zaken.session.hooks["response"].append(record)
    zaak = stack.sandbox.add_zaak("ZAAK-2026-0000000777")
    found = check_existing_zaak(
        "ZAAK-2026-0000000777", registry=stack.registry, settings=stack.settings, user=("jdv", "Jan de Vries")
    )
    assert found.url.endswith(zaak["url"]) and users == ["jdv"]
    with pytest.raises(ZaakNotUsable) as unknown:
        check_existing_zaak("ZAAK-2026-0000000404", registry=stack.registry, settings=stack.settings)
    assert unknown.value.reason == "unknown"
    with stack.sandbox._lock:
        zaak["einddatum"] = "2026-11-01"
    with pytest.raises(ZaakNotUsable) as closed:
        check_existing_zaak("ZAAK-2026-0000000777", registry=stack.registry, settings=stack.settings)
    assert closed.value.reason == "closed"
    with stack.sandbox._lock:
        zaak["einddatum"], zaak["bronorganisatie"] = None, "123456782"
    with pytest.raises(ZaakNotUsable) as foreign:
        check_existing_zaak("ZAAK-2026-0000000777", registry=stack.registry, settings=stack.settings)
    assert foreign.value.reason == "other-bronorganisatie"
