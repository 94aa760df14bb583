"""Registration workers that race, crash or lose their database, on the real SQL store (SQLite and PostgreSQL).

The short, in-suite version of ``scripts/loadtest.py --fault …``: the ZGW sandbox runs in-process
(``SandboxTransport``, so "timeout" and "drop" faults lose the answer after the sandbox did the work),
the registrations live in the production ``SqlSessionStore``, and every test ends with the same
invariant: exactly one zaak, rol, status, document and link per registration.

A worker that is killed (SIGKILL, OOM, a pod eviction) runs no ``except`` and no ``finally``: it is
simulated here by a ``BaseException`` raised from inside the registry right after the zaaksysteem
did the work, which ``process_due``'s ``except Exception`` does not catch. Another worker takes the
registration over once the lease (``LEASE_SECONDS``) has expired.

These tests found three bugs, fixed in 585a6ab (write-ahead ``uncertain_step``), 2531845 (a retry
releases the lease) and b120891 (advisory lock around migrations); they now guard those fixes.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from zgw_identificatie.adapters.sql_store import SqlSessionStore
from zgw_identificatie.adapters.zgw import build_registry
from zgw_identificatie.demo.zgw_sandbox import ZgwSandbox, create_sandbox_blueprint, sandbox_api_roots, sandbox_http
from zgw_identificatie.domain.registration import Registration
from zgw_identificatie.domain.sessions import RegistrationState
from zgw_identificatie.flows.registration import LEASE_SECONDS, process_due, start_registration
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.builders import a_proof, a_session
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.zgw import FakeProofRenderer

BASE = "http://zgwid.test"
BSNS = ("111222333", "999993653", "999990019", "999990020", "123456782")
KINDS = ("zaken", "rollen", "statussen", "enkelvoudiginformatieobjecten", "zaakinformatieobjecten")
WRITES = {  # step → (registry method, sandbox path)
    "zaak": ("create_zaak", "/zaken/api/v1/zaken"),
    "rol": ("add_citizen_rol", "/zaken/api/v1/rollen"),
    "status": ("set_first_status", "/zaken/api/v1/statussen"),
    "document": ("upload_document", "/documenten/api/v1/enkelvoudiginformatieobjecten"),
    "link": ("link_document", "/zaken/api/v1/zaakinformatieobjecten"),
}


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so no handler in the worker runs."""


class Zaaksysteem:
    """The in-process sandbox and a registry per worker (each worker process has its own HTTP client)."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.settings = Settings()
        self.settings.zgw.secret = "sandbox-test-secret-0123456789abcdef"
        self.settings.registration_max_attempts = 50
        self.app = Flask(__name__)
        blueprint = create_sandbox_blueprint(self.settings, clock=clock)
        self.app.register_blueprint(blueprint, url_prefix="/sandbox")
        self.sandbox: ZgwSandbox = blueprint.sandbox

    def registry(self) -> Any:
        return build_registry(
            self.settings,
            http=sandbox_http(self.app, BASE),
            roots=sandbox_api_roots(BASE),
            today=self.clock.now().date(),
        )

    def counts_per_zaak(self) -> list[dict[str, int]]:
        per_zaak = []
        for zaak in self.sandbox.all("zaken"):
            url = zaak["url"]
            links = [z for z in self.sandbox.all("zaakinformatieobjecten") if z["zaak"] == url]
            per_zaak.append(
                {
                    "rollen": sum(1 for r in self.sandbox.all("rollen") if r["zaak"] == url),
                    "statussen": sum(1 for s in self.sandbox.all("statussen") if s["zaak"] == url),
                    "zaakinformatieobjecten": len(links),
                }
            )
        return per_zaak

    def totals(self) -> dict[str, int]:
        return {kind: len(self.sandbox.all(kind)) for kind in KINDS}


def start(store: SqlSessionStore, clock: FixedClock, settings: Settings, n: int) -> list[Registration]:
    regs = []
    for i in range(n):
        now = clock.now()
        session = a_session(now, id=f"sess-worker-{i:04d}-{now.timestamp():.0f}", gemeente=settings.gemeente_naam)
        store.add(session)
        proof = a_proof(
            now - timedelta(minutes=1),
            bsn=BSNS[i % len(BSNS)],
            gemeente=settings.gemeente_naam,
            assertion_id=f"_assertion-{i}",
            session_id=session.id,
        )
        regs.append(start_registration(session, proof, existing_zaak=None, store=store, clock=clock))
    return regs


def work(store: Any, registry: Any, clock: FixedClock, settings: Settings) -> int:
    return process_due(
        store=store, registry=registry, renderer=FakeProofRenderer(), clock=clock, settings=settings, limit=10
    )


def assert_exactly_one_of_everything(store: SqlSessionStore, zgw: Zaaksysteem, regs: list[Registration]) -> None:
    finished = [store.get_registration(r.id) for r in regs]
    assert [r.state for r in finished if r] == [RegistrationState.DONE] * len(regs), [
        (r.state.value, r.error) for r in finished if r
    ]
    n = len(regs)
    assert zgw.totals() == dict.fromkeys(KINDS, n)
    markers = Counter(k["kenmerk"] for z in zgw.sandbox.all("zaken") for k in z["kenmerken"])
    assert markers == Counter({r.id: 1 for r in regs})
    assert all(c == {"rollen": 1, "statussen": 1, "zaakinformatieobjecten": 1} for c in zgw.counts_per_zaak())
    for reg in finished:
        assert reg is not None and reg.proof is None and reg.zaak_url and reg.link_url
        session = store.get(reg.session_id)
        assert session is not None and session.registration_state is RegistrationState.DONE


def test_two_workers_racing_with_an_intermittently_failing_zaaksysteem_record_each_identification_once(
    store: SqlSessionStore,
) -> None:
    """Two workers claim from the same store while writes time out, drop or get 503: one of everything each."""
    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    regs = start(store, clock, zgw.settings, 8)
    for path in (p for _, p in WRITES.values()):
        for kind in ("503", "timeout", "drop"):
            zgw.sandbox.faults.add(path, kind, times=2)
    registries = [zgw.registry(), zgw.registry()]
    errors: list[BaseException] = []

    def worker(i: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            work(store, registries[i], clock, zgw.settings)
        except BaseException as exc:
            errors.append(exc)

    for _ in range(15):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=worker, args=(i, barrier)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        if all((store.get_registration(r.id) or r).finished for r in regs):
            break
        clock.advance(seconds=LEASE_SECONDS + 1)  # beyond any backoff and any lease
    assert_exactly_one_of_everything(store, zgw, regs)


def test_a_transient_failure_is_retried_after_its_backoff_not_after_the_lease(store: SqlSessionStore) -> None:
    """A 503 schedules the retry 2 s later; the lease of the failed attempt must not hold it for 5 minutes."""
    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    regs = start(store, clock, zgw.settings, 1)
    zgw.sandbox.faults.add(WRITES["zaak"][1], "503")
    registry = zgw.registry()
    assert work(store, registry, clock, zgw.settings) == 1
    retrying = store.get_registration(regs[0].id)
    assert retrying is not None and retrying.state is RegistrationState.RETRYING
    clock.current = retrying.next_attempt_at + timedelta(seconds=1)
    assert work(store, registry, clock, zgw.settings) == 1, "the retry was not claimed at next_attempt_at"
    assert_exactly_one_of_everything(store, zgw, regs)


class KillAfter:
    """A registry that lets ``method`` reach the zaaksysteem once and then 'kills the worker'."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner, self.method, self.fired = inner, method, False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            result = target(*args, **kwargs)
            if not self.fired:
                self.fired = True
                raise WorkerKilled(name)
            return result

        return call


@pytest.mark.parametrize("step", list(WRITES))
def test_a_worker_killed_right_after_a_write_is_taken_over_after_the_lease_without_doubles(
    store: SqlSessionStore, step: str
) -> None:
    """SIGKILL between the zaaksysteem's answer and the store update: the next worker finds, not re-creates."""
    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    regs = start(store, clock, zgw.settings, 1)
    doomed = KillAfter(zgw.registry(), WRITES[step][0])
    with pytest.raises(WorkerKilled):
        work(store, doomed, clock, zgw.settings)
    assert store.claim_due_registrations(clock.now(), lease_seconds=LEASE_SECONDS, limit=10) == []
    clock.advance(seconds=LEASE_SECONDS + 1)
    survivor = zgw.registry()
    for _ in range(5):
        if work(store, survivor, clock, zgw.settings) == 0:
            break
        clock.advance(seconds=60)
    assert_exactly_one_of_everything(store, zgw, regs)


class StoreDownAfter:
    """The store loses its database (PostgreSQL restart) on the first save after ``step``'s write."""

    def __init__(self, inner: SqlSessionStore, url_field: str) -> None:
        self.inner, self.url_field, self.fired = inner, url_field, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_registration(self, registration: Registration) -> None:
        if not self.fired and getattr(registration, self.url_field) is not None:
            self.fired = True
            raise sa.exc.OperationalError("UPDATE registrations", {}, Exception("server closed the connection"))
        self.inner.update_registration(registration)


@pytest.mark.parametrize("step", list(WRITES))
def test_a_database_outage_right_after_a_write_does_not_make_a_second_one(store: SqlSessionStore, step: str) -> None:
    """The zaaksysteem did the work, saving its URL failed: the retry must look before it writes again."""
    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    regs = start(store, clock, zgw.settings, 1)
    flaky = StoreDownAfter(store, f"{step}_url")
    registry = zgw.registry()
    for _ in range(8):
        work(flaky, registry, clock, zgw.settings)
        if (store.get_registration(regs[0].id) or regs[0]).finished:
            break
        clock.advance(seconds=LEASE_SECONDS + 1)
    assert flaky.fired
    assert_exactly_one_of_everything(store, zgw, regs)


MIGRATE_AT = """
import sys, time
import sqlalchemy as sa
from zgw_identificatie.adapters.sql_store import migrate
engine = sa.create_engine(sys.argv[1], connect_args={"options": "-csearch_path=" + sys.argv[2]})
while time.time() < float(sys.argv[3]):
    time.sleep(0.001)
migrate(engine)
"""


@pytest.mark.postgres
def test_two_web_workers_migrating_a_fresh_database_at_the_same_moment_both_start(pg_schema: str) -> None:
    """gunicorn's workers each run create_app → migrate; on an empty schema both must come up."""
    import subprocess
    import sys
    import time

    from zgw_identificatie.testing.settings import TEST_PG_URL as PG_URL

    admin = sa.create_engine(PG_URL)
    try:
        for round_ in range(3):
            schema = f"{pg_schema}_mig{round_}"
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            at = str(time.time() + 3)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", MIGRATE_AT, PG_URL, schema, at],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for _ in range(2)
            ]
            outcomes = []
            for proc in procs:
                _, err = proc.communicate(timeout=60)  # closes the pipe (ResourceWarning is an error here)
                outcomes.append((proc.returncode, err.decode()[-300:]))
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            assert [rc for rc, _ in outcomes] == [0, 0], [err for rc, err in outcomes if rc]
    finally:
        admin.dispose()


def test_a_process_starting_while_the_zaaksysteem_is_down_starts_and_registers_once_it_is_back(tmp_path: Any) -> None:
    """A 503 from the Catalogi API at start-up must not stop a web or worker process; a wrong setting still may."""
    import requests

    from zgw_identificatie.app import create_app, services_of
    from zgw_identificatie.demo.zgw_sandbox import SandboxTransport
    from zgw_identificatie.testing.settings import make_settings

    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    roots = sandbox_api_roots(BASE)
    settings = make_settings(
        tmp_path,
        zgw__sandbox=False,
        zgw__secret=zgw.settings.zgw.secret,
        zgw__zaken_url=roots["zaken"],
        zgw__documenten_url=roots["documenten"],
        zgw__catalogi_url=roots["catalogi"],
        worker_in_process=False,
    )
    http = requests.Session()
    http.mount(BASE + "/sandbox/", SandboxTransport(zgw.app))
    zgw.sandbox.faults.add("/catalogi/api/v1/", "503", method="GET", times=3)
    app = create_app(settings, adapters={"http": http, "clock": clock})
    zgw.sandbox.faults.clear()
    assert services_of(app).registry.refs is not None


def test_a_registry_that_cannot_be_built_is_a_recorded_attempt_with_backoff_and_one_log_line(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9 #2: a wrong ZGW secret with check_on_start off. The worker records each failure as an attempt
    (error stored and shown on the session), backs off, logs one line per attempt without a traceback, and
    registers once the secret is fixed."""
    import logging

    import requests

    from zgw_identificatie import worker
    from zgw_identificatie.app import create_app, services_of
    from zgw_identificatie.demo.zgw_sandbox import SandboxTransport
    from zgw_identificatie.testing.settings import make_settings

    clock = FixedClock(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))
    zgw = Zaaksysteem(clock)
    roots = sandbox_api_roots(BASE)
    settings = make_settings(
        tmp_path,
        zgw__sandbox=False,
        zgw__secret="a-wrong-secret-0123456789abcdef0123",
        zgw__check_on_start=False,
        zgw__zaken_url=roots["zaken"],
        zgw__documenten_url=roots["documenten"],
        zgw__catalogi_url=roots["catalogi"],
        worker_in_process=False,
    )
    http = requests.Session()
    http.mount(BASE + "/sandbox/", SandboxTransport(zgw.app))
    services = services_of(create_app(settings, adapters={"http": http, "clock": clock}))
    (reg,) = start(services.store, clock, settings, 1)  # type: ignore[arg-type]

    caplog.set_level(logging.INFO)
    caplog.clear()
    assert worker.run_once(services) == 1
    first = services.store.get_registration(reg.id)
    assert first is not None and first.state is RegistrationState.RETRYING and first.attempts == 1
    assert first.error is not None and "ZGWID_ZGW_SECRET" in first.error
    session = services.store.get(reg.session_id)
    assert session is not None and session.registration_error == first.error
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].exc_info is None
    assert reg.id in problems[0].getMessage()

    caplog.clear()
    assert worker.run_once(services) == 0  # not due yet: nothing attempted, nothing logged
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    clock.advance(seconds=2)
    assert worker.run_once(services) == 1
    second = services.store.get_registration(reg.id)
    assert second is not None and second.attempts == 2
    assert (second.next_attempt_at - clock.now()).total_seconds() == 4

    settings.zgw.secret = zgw.settings.zgw.secret  # the operator fixes the secret
    clock.advance(seconds=4)
    assert worker.run_once(services) == 1
    done = services.store.get_registration(reg.id)
    assert done is not None and done.state is RegistrationState.DONE, done.error
    assert zgw.totals() == dict.fromkeys(KINDS, 1)
