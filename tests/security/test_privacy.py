"""The BSN never leaks (DESIGN §7, notes R25, R26): not into a log record, a URL, a Location header or a
cookie, and it does not stay in the database after the flow is done, expired or purged.

Every flow runs over HTTP with the real simulator and sandbox, logging at DEBUG everywhere. Log
records are captured *before* the scrubbing record factory of logging_setup masks them, so this
tests the code (the first line of defence), not the filter.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from demo_driver import API_KEY, Citizen, Staff, csrf, demo_app, run_worker
from zgw_identificatie import logging_setup
from zgw_identificatie.app import services_of

BSN = "999993653"
STAFF_BSN = "999990019"  # typed by the behandelaar (§2.2), a different one, to catch either
BSNS = (BSN, STAFF_BSN)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []  # (logger, raw text incl. args and exception)
        self.traffic: list[tuple[str, str]] = []  # (what, text) of URLs, Location and Set-Cookie

    def leaks(self) -> list[tuple[str, str]]:
        return [(w, t) for w, t in self.records + self.traffic if any(b in t for b in BSNS)]


@pytest.fixture
def rec(monkeypatch) -> Recorder:
    recorder = Recorder()
    base = logging_setup._base_factory

    def raw(*args, **kwargs):
        record = base(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg} {record.args!r}"
        recorder.records.append((record.name, f"{text} {record.args!r} {record.exc_info!r}"))
        return record

    monkeypatch.setattr(logging_setup, "_base_factory", raw)
    return recorder


@pytest.fixture
def app(tmp_path, rec):
    app = demo_app(tmp_path, log_level="DEBUG")
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("zgw_identificatie"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    inner = app.wsgi_app

    def recording(environ, start_response):
        url = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        rec.traffic.append(("url", url))

        def start(status, headers, exc_info=None):
            for name, value in headers:
                if name.lower() in ("location", "set-cookie"):
                    rec.traffic.append((f"{name} of {url}", value))
            return start_response(status, headers, exc_info)

        return inner(environ, start)

    app.wsgi_app = recording
    yield app
    root.setLevel(old)


def db_file(app) -> Path:
    return Path(services_of(app).store.engine.url.database)


def bsn_in_database(app) -> list[str]:
    """Plain-text search of the raw SQLite files and of every column of every row of every table."""
    found = []
    path = db_file(app)
    for f in [path, *path.parent.glob(path.name + "-*")]:
        data = f.read_bytes()
        found += [f"{f.name}: raw bytes" for b in BSNS if b.encode() in data]
    engine = services_of(app).store.engine
    meta = sa.MetaData()
    meta.reflect(engine)
    assert {"sessions", "registrations", "login_flows", "audit_events"} <= set(meta.tables) or meta.tables
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(table.select()):
                for column, value in row._mapping.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    found += [f"{table.name}.{column}" for b in BSNS if b in text]
    return found


def all_flows(app) -> dict[str, str]:
    """Every flow and its main detours; returns name → session id."""
    staff = Staff.login(app)
    ids = {}
    ids["known-staff"] = staff.start("known-citizen", bsn=STAFF_BSN)
    Citizen.new(app).login(ids["known-staff"], bsn=BSN)
    page = staff.client.get("/staff/")
    staff.client.post(
        "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": "999993650"}
    )  # a wrong 11-proef: the error page
    api = app.test_client().post("/api/v1/sessions", json={"flow": "known-citizen", "bsn": STAFF_BSN}, headers=AUTH)
    ids["known-api"] = api.get_json()["id"]
    Citizen.new(app).login(ids["known-api"], bsn=STAFF_BSN)
    app.test_client().get(f"/api/v1/sessions/{ids['known-api']}", headers=AUTH)
    ids["new"] = staff.start("new-citizen")
    citizen = Citizen.new(app)
    citizen.login(ids["new"], bsn=BSN)
    run_worker(app)
    citizen.client.get(f"/i/{ids['new']}/klaar")
    staff.status(ids["new"])
    ids["mutual"] = staff.start("mutual")
    Citizen.new(app).login(ids["mutual"], bsn=BSN)
    staff.status(ids["mutual"])
    staff.client.get(f"/staff/sessions/{ids['mutual']}")
    ids["cancel"] = staff.start("mutual")
    cancelling = Citizen.new(app)
    cancelling.digid(ids["cancel"], bsn=BSN, action="annuleren")
    cancelling.login(ids["cancel"], bsn=BSN)
    ids["too-low"] = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).digid(ids["too-low"], bsn=BSN, loa="basis")
    for name in ("known-staff", "new", "mutual", "cancel"):
        staff.complete(ids[name])
    return ids


def test_no_bsn_in_any_log_record_url_location_or_cookie(app, rec):
    """DEBUG logging, every flow: the raw records (before the scrub filter) and the traffic are clean."""
    all_flows(app)
    assert len(rec.records) > 20 and any(n.startswith("zgw_identificatie") for n, _ in rec.records)
    assert any(what == "url" and "/digid/acs" in text for what, text in rec.traffic)
    assert rec.leaks() == []


def test_no_bsn_in_the_database_after_completion(app):
    """Completed, erased (mutual), failed and cancelled sessions: no BSN in plain text anywhere."""
    ids = all_flows(app)
    erased = services_of(app).store.get(ids["mutual"])  # §2.3: Voltooien erases the BSN, a tombstone stays
    assert erased is not None and erased.state.value == "completed" and erased.bsn is None
    assert bsn_in_database(app) == []


def test_the_registration_payload_is_removed_when_the_registration_is_done(app):
    """The encrypted proof payload (it holds the BSN) is NULL once the zaak is registered."""
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    Citizen.new(app).login(sid, bsn=BSN)
    engine = services_of(app).store.engine
    with engine.connect() as conn:
        pending = conn.execute(sa.text("SELECT payload_enc FROM registrations WHERE session_id = :s"), {"s": sid})
        assert pending.scalar_one() is not None  # needed while the registration can be retried
    run_worker(app)
    assert staff.status(sid)["registration"]["state"] == "done"
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT state, payload_enc FROM registrations WHERE session_id = :s"), {"s": sid})
        assert tuple(row.one()) == ("done", None)
    assert bsn_in_database(app) == []


def test_no_bsn_in_the_database_after_expiry_and_purge(app):
    """Sessions left authenticated (never completed) expire; the purge leaves no BSN and no row."""
    staff = Staff.login(app)
    sid = staff.start("mutual")
    Citizen.new(app).login(sid, bsn=BSN)
    known = staff.start("known-citizen", bsn=STAFF_BSN)
    Citizen.new(app).login(known, bsn=BSN)
    opened = staff.start("mutual")
    Citizen.new(app).to_simulator(opened)
    svc = services_of(app)
    for session_id in (sid, known, opened):
        s = svc.store.get(session_id)
        svc.store.update(replace(s, expires_at=svc.clock.now() - timedelta(seconds=1)))
    counts = svc.store.purge(svc.clock.now())
    assert counts["sessions"] == 3
    for session_id in (sid, known, opened):
        assert svc.store.get(session_id) is None
    with svc.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM login_flows")).scalar_one() == 0
    assert bsn_in_database(app) == []


def test_the_staff_form_does_not_echo_a_typed_bsn_into_the_page_or_a_url(app, rec):
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    resp = staff.client.post(
        "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": STAFF_BSN}
    )
    assert resp.status_code == 303 and STAFF_BSN not in resp.location
    detail = staff.client.get(resp.location)
    assert STAFF_BSN not in detail.text  # §2.2 keeps only the derived code
    assert not re.search(r"\b" + STAFF_BSN + r"\b", detail.text)
    assert rec.leaks() == []


def test_the_checks_themselves_would_see_a_leak(app, rec):
    """Sanity: a BSN logged as an argument, or written into any column, is found."""
    logging.getLogger("zgw_identificatie.flows.common").debug("oops %s", BSN)
    assert rec.leaks()
    staff = Staff.login(app)
    sid = staff.start("mutual")
    with services_of(app).store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE sessions SET owner_name = :n WHERE id = :id"), {"n": f"x{BSN}x", "id": sid})
    found = bsn_in_database(app)
    assert "sessions.owner_name" in found
