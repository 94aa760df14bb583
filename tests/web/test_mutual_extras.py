"""§2.3 mutual assurance, the parts around the login: erasure of expired records (purge and the running
service's schedule), the audit trail of Voltooien, and attaching the proof to an existing zaak."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from demo_driver import Citizen, Staff, demo_app, run_worker
from zgw_identificatie import worker
from zgw_identificatie.app import services_of
from zgw_identificatie.domain.audit import bsn_hash
from zgw_identificatie.domain.bsn import Bsn

BSN = "999993653"


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path, purge_interval_seconds=1)


def authenticated_mutual(app, **fields: str) -> tuple[Staff, str]:
    staff = Staff.login(app)
    sid = staff.start("mutual", **fields)
    Citizen.new(app).login(sid, bsn=BSN)
    assert staff.status(sid)["bsn"] == BSN
    return staff, sid


def expire(app, sid: str) -> None:
    store = services_of(app).store
    session = store.get(sid)
    store.update(replace(session, expires_at=services_of(app).clock.now() - timedelta(seconds=1)))


def rows(app, table: str, sid: str) -> int:
    with services_of(app).store.engine.connect() as conn:
        column = "id" if table == "sessions" else "session_id"
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": sid}).scalar_one()


def test_purge_erases_an_expired_mutual_record_with_its_bsn_and_keeps_a_live_one(app):
    """store.purge(now): the expired §2.3 row (encrypted BSN included) is gone; a live session stays."""
    _, expired_sid = authenticated_mutual(app)
    _, live_sid = authenticated_mutual(app)
    expire(app, expired_sid)
    counts = services_of(app).store.purge(services_of(app).clock.now())
    assert counts["sessions"] == 1
    assert rows(app, "sessions", expired_sid) == 0 and rows(app, "login_flows", expired_sid) == 0
    assert rows(app, "sessions", live_sid) == 1
    assert Citizen.new(app).open(expired_sid).status_code == 404


def test_the_running_services_worker_loop_purges_on_its_schedule(app):
    """worker.loop (the thread the service runs) erases expired records every purge_interval_seconds."""
    _, first = authenticated_mutual(app)
    expire(app, first)
    stop = threading.Event()
    thread = threading.Thread(target=worker.loop, args=(services_of(app), stop), kwargs={"interval": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while rows(app, "sessions", first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(app, "sessions", first) == 0, "the first purge did not run"
        _, second = authenticated_mutual(app)  # expires after the first purge: waits for the next round
        expire(app, second)
        deadline = time.monotonic() + 5
        while rows(app, "sessions", second) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(app, "sessions", second) == 0, "no purge within twice the interval"
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_voltooien_leaves_an_audit_event_with_the_keyed_bsn_hash_and_without_the_bsn(app):
    """'erased' event: bsn_hash = HMAC(audit_hash_key, BSN); the BSN itself is nowhere in the audit table."""
    staff, sid = authenticated_mutual(app)
    assert staff.complete(sid) == 303
    settings = services_of(app).settings
    events = services_of(app).store.list_audit(session_id=sid)
    erased = [e for e in events if e.event == "erased"]
    assert len(erased) == 1
    event = erased[0]
    assert event.outcome == "completed" and event.actor == "local:sanne" and event.flow == "mutual"
    assert event.bsn_hash == bsn_hash(settings.audit_hash_key.encode(), Bsn(BSN))
    assert event.bsn_hash != hashlib.sha256(BSN.encode()).hexdigest()  # keyed: not guessable from the BSN alone
    with services_of(app).store.engine.connect() as conn:
        dump = " ".join(str(row) for row in conn.execute(sa.text("SELECT * FROM audit_events")))
    assert BSN not in dump
    with services_of(app).store.engine.connect() as conn:  # the tombstone stays, without the BSN
        left = conn.execute(sa.text("SELECT state, bsn_enc FROM sessions WHERE id = :id"), {"id": sid}).one()
    assert tuple(left) == ("completed", None)


def test_a_mutual_session_for_an_existing_zaak_registers_the_proof_on_that_zaak(app):
    """Start with zaak=<identificatie of a sandbox zaak> → after the worker: proof linked to that zaak, no new zaak."""
    sandbox = app.blueprints["sandbox"].sandbox
    zaak = sandbox.add_zaak()
    zaken_before = len(sandbox.all("zaken"))
    staff, sid = authenticated_mutual(app, zaak=zaak["identificatie"])
    assert run_worker(app) >= 1
    status = staff.status(sid)
    assert status["registration"]["state"] == "done", status["registration"]
    assert status["zaak"]["identificatie"] == zaak["identificatie"]
    assert len(sandbox.all("zaken")) == zaken_before
    links = [z for z in sandbox.all("zaakinformatieobjecten") if z["zaak"] == zaak["url"]]
    assert len(links) == 1
    documents = {d["url"]: d for d in sandbox.all("enkelvoudiginformatieobjecten")}
    assert documents[links[0]["informatieobject"]]["bestandsnaam"].endswith(".pdf")
    assert staff.complete(sid) == 303
    assert services_of(app).store.get(sid).bsn is None  # erased; the tombstone keeps the zaak for its owner
