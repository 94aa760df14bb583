"""The resumable registration (flows/registration.py) on the recording fakes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from zgw_identificatie.domain.errors import RegistrationFailed, RegistryUnavailable
from zgw_identificatie.domain.proof import ProofData
from zgw_identificatie.domain.registration import Registration
from zgw_identificatie.domain.sessions import IdentificationSession, RegistrationState
from zgw_identificatie.flows.registration import process_due, run_registration, start_registration
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.builders import a_proof, a_session
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.store import InMemorySessionStore
from zgw_identificatie.testing.zgw import FakeProofRenderer, FakeZaakRegistry

BSN = "111222333"


def make_session(clock: FixedClock, **changes: object) -> IdentificationSession:
    return a_session(clock.now(), id="sess-0123456789", **changes)


def make_proof(clock: FixedClock, zaak: str = "") -> ProofData:
    return a_proof(clock.now(), bsn=BSN, zaak_identificatie=zaak, session_id="sess-0123456789")


class World:
    def __init__(self, existing_zaak: str | None = None, max_attempts: int = 12) -> None:
        self.clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
        self.store = InMemorySessionStore()
        self.registry = FakeZaakRegistry()
        self.renderer = FakeProofRenderer()
        self.settings = Settings(registration_max_attempts=max_attempts)
        self.session = make_session(self.clock)
        self.store.add(self.session)
        self.reg = start_registration(
            self.session,
            make_proof(self.clock),
            existing_zaak=existing_zaak,
            store=self.store,
            clock=self.clock,
        )

    def run(self, reg: Registration | None = None) -> Registration:
        return run_registration(
            reg or self.current,
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

    @property
    def current(self) -> Registration:
        reg = self.store.get_registration(self.reg.id)
        assert reg is not None
        return reg

    def writes(self) -> list[str]:
        write_methods = {
            "create_zaak",
            "add_citizen_rol",
            "set_first_status",
            "upload_document",
            "link_document",
        }
        return [name for name, _ in self.registry.calls if name in write_methods]


def test_a_new_registration_creates_zaak_rol_status_document_and_link_in_that_order() -> None:
    """Every step runs once, in the documented order, and the registration ends done."""
    world = World()
    done = world.run()
    assert done.state is RegistrationState.DONE
    assert world.writes() == [
        "create_zaak",
        "add_citizen_rol",
        "set_first_status",
        "upload_document",
        "link_document",
    ]
    assert done.zaak_identificatie == "ZAAK-2026-0000000001"
    assert all([done.zaak_url, done.rol_url, done.status_url, done.document_url, done.link_url])


def test_each_created_url_is_stored_before_the_next_step_runs() -> None:
    """Each step is marked uncertain before its write and its URL stored after it: a crash loses nothing."""
    world = World()
    world.run()
    fields = ["zaak_url", "rol_url", "status_url", "document_url", "link_url"]
    seen = [(sum(getattr(r, f) is not None for f in fields), r.uncertain_step) for r in world.store.history]
    assert seen[:11] == [
        (0, None),
        (0, "zaak"),
        (1, None),
        (1, "rol"),
        (2, None),
        (2, "status"),
        (3, None),
        (3, "document"),
        (4, None),
        (4, "link"),
        (5, None),
    ]


def test_the_start_registration_is_persisted_pending_and_due_now() -> None:
    """start_registration stores a pending registration that the worker will pick up at once."""
    world = World()
    assert world.store.get_registration(world.reg.id) == world.reg
    assert world.reg.state is RegistrationState.PENDING
    assert world.reg.next_attempt_at == world.clock.now()
    assert len(world.reg.id) <= 34


def test_the_zaak_marker_and_the_document_marker_are_the_registration_id() -> None:
    """A retry can find the zaak and the document by the registration id."""
    world = World()
    world.run()
    assert world.registry.called("create_zaak")[0]["marker"] == world.reg.id
    assert world.registry.called("upload_document")[0]["marker"] == world.reg.id


def test_the_pdf_states_the_identificatie_of_the_zaak_just_created() -> None:
    """The proof is rendered after the zaak exists, with its identificatie."""
    world = World()
    world.run()
    assert [p.zaak_identificatie for p in world.renderer.rendered] == ["ZAAK-2026-0000000001"]
    document = next(iter(world.registry.documents.values()))
    assert document["bestandsnaam"] == "identificatie-ZAAK-2026-0000000001.pdf"
    assert document["inhoud"].startswith(b"%PDF")


def test_the_proof_with_the_bsn_is_erased_when_the_registration_is_done() -> None:
    """Once recorded in the zaaksysteem, the registration no longer holds the proof payload."""
    world = World()
    done = world.run()
    assert done.proof is None
    assert world.current.proof is None


def test_the_session_follows_the_registration_state_and_learns_the_zaak() -> None:
    """The behandelaar's live status sees the zaak identificatie and done."""
    world = World()
    world.run()
    session = world.store.get(world.session.id)
    assert session is not None
    assert session.registration_state is RegistrationState.DONE
    assert session.zaak_identificatie == "ZAAK-2026-0000000001"
    assert session.zaak_url is not None


def test_an_existing_zaak_is_found_by_identificatie_and_gets_no_new_status() -> None:
    """Attaching to an existing zaak creates no zaak and sets no status."""
    world = World(existing_zaak="ZAAK-2026-0000000777")
    ref = world.registry.add_existing_zaak("ZAAK-2026-0000000777")
    done = world.run()
    assert done.state is RegistrationState.DONE
    assert done.zaak_url == ref.url
    assert world.writes() == ["add_citizen_rol", "upload_document", "link_document"]
    assert done.status_url is None


def test_an_unknown_existing_zaak_fails_without_retry() -> None:
    """A zaak identificatie that does not exist is a permanent failure."""
    world = World(existing_zaak="ZAAK-2026-0000000404")
    failed = world.run()
    assert failed.state is RegistrationState.FAILED
    assert "ZAAK-2026-0000000404" in (failed.error or "")
    world.clock.advance(hours=1)
    assert world.process() == 0


@pytest.mark.parametrize(
    ("write", "find"),
    [
        ("create_zaak", "find_zaak_by_marker"),
        ("add_citizen_rol", "find_citizen_rol"),
        ("set_first_status", "find_status"),
        ("upload_document", "find_document"),
        ("link_document", "find_link"),
    ],
)
def test_a_write_whose_answer_was_lost_is_found_on_retry_instead_of_repeated(write: str, find: str) -> None:
    """After a time-out the retry first asks find_*, so nothing is created twice."""
    world = World()
    world.registry.fail(write, RegistryUnavailable("time-out"), after_write=True)
    first = world.run()
    assert first.state is RegistrationState.RETRYING
    assert first.uncertain_step is not None
    world.clock.advance(seconds=2)
    assert world.process() == 1
    done = world.current
    assert done.state is RegistrationState.DONE
    assert len(world.registry.called(find)) == 1
    assert len(world.registry.called(write)) == 1
    counts = [
        len(world.registry.zaken),
        len(world.registry.rollen),
        len(world.registry.statussen),
        len(world.registry.documents),
        len(world.registry.links),
    ]
    assert counts == [1, 1, 1, 1, 1]


def test_a_write_that_failed_before_reaching_the_server_is_simply_repeated() -> None:
    """When find_* finds nothing, the retry creates the resource."""
    world = World()
    world.registry.fail("add_citizen_rol", RegistryUnavailable("503"))
    world.run()
    world.clock.advance(seconds=2)
    world.process()
    assert world.current.state is RegistrationState.DONE
    assert len(world.registry.called("add_citizen_rol")) == 2
    assert len(world.registry.rollen) == 1


def test_an_unavailable_registry_schedules_a_retry_with_exponential_backoff() -> None:
    """Attempts 1, 2, 3 wait 2, 4, 8 seconds."""
    world = World()
    world.registry.fail("create_zaak", RegistryUnavailable("503"), times=3)
    delays = []
    for _ in range(3):
        reg = world.run()
        delays.append((reg.next_attempt_at - world.clock.now()).total_seconds())
        world.clock.current = reg.next_attempt_at
    assert delays == [2, 4, 8]
    assert world.run().state is RegistrationState.DONE


def test_the_worker_does_not_run_a_registration_before_its_retry_time() -> None:
    """process_due claims only registrations whose next attempt is due."""
    world = World()
    world.registry.fail("create_zaak", RegistryUnavailable("503"))
    assert world.process() == 1
    assert world.process() == 0
    world.clock.advance(seconds=2)
    assert world.process() == 1
    assert world.current.state is RegistrationState.DONE


def test_a_registration_gives_up_after_the_maximum_number_of_attempts() -> None:
    """registration_max_attempts transient failures make it failed."""
    world = World(max_attempts=3)
    world.registry.fail("create_zaak", RegistryUnavailable("503"), times=10)
    states = []
    for _ in range(3):
        reg = world.run()
        states.append(reg.state)
        world.clock.current = reg.next_attempt_at
    assert states == [RegistrationState.RETRYING, RegistrationState.RETRYING, RegistrationState.FAILED]
    assert "gave up after 3 attempts" in (world.current.error or "")


def test_a_refusal_fails_the_registration_with_its_reasons_and_no_retry() -> None:
    """A 4xx (RegistrationFailed) is permanent and keeps the invalidParams."""
    world = World()
    world.registry.fail(
        "add_citizen_rol",
        RegistrationFailed(
            "POST zaken rollen answered 400",
            [{"name": "nonFieldErrors", "code": "max-occurences", "reason": "Er is al een initiator."}],
        ),
    )
    failed = world.run()
    assert failed.state is RegistrationState.FAILED
    assert failed.invalid_params == (("nonFieldErrors", "max-occurences", "Er is al een initiator."),)
    assert failed.error is not None and failed.error.startswith("rol:")
    world.clock.advance(hours=1)
    assert world.process() == 0
    session = world.store.get(world.session.id)
    assert session is not None and session.registration_state is RegistrationState.FAILED


def test_a_finished_registration_is_left_alone() -> None:
    """Running a done registration again makes no calls."""
    world = World()
    done = world.run()
    calls = len(world.registry.calls)
    assert world.run(done) is done
    assert len(world.registry.calls) == calls


def test_an_unexpected_error_in_the_worker_is_retried_not_fatal() -> None:
    """A renderer crash leaves the registration retrying and the worker running."""
    world = World()
    world.renderer.error = RuntimeError("boom")
    assert world.process() == 1
    assert world.current.state is RegistrationState.RETRYING
    world.renderer.error = None
    world.clock.advance(seconds=2)
    world.process()
    assert world.current.state is RegistrationState.DONE


def test_the_registration_never_logs_the_bsn(caplog: pytest.LogCaptureFixture) -> None:
    """Neither success nor failure writes the BSN into a log line."""
    caplog.set_level(logging.DEBUG)
    world = World()
    world.registry.fail("add_citizen_rol", RegistryUnavailable("503"))
    world.run()
    world.clock.advance(seconds=2)
    world.process()
    assert caplog.records
    assert BSN not in caplog.text
