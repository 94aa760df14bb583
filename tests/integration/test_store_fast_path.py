"""The store's PostgreSQL fast path (statements on the psycopg connection, a session change in one statement)
behaves as the SQLAlchemy path does: the same events, audit events atomic with the change, the same types."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from zgw_identificatie.adapters import sql_store
from zgw_identificatie.adapters.crypto import DataCipher, generate_key
from zgw_identificatie.adapters.sql_store import SqlSessionStore, make_engine, migrate
from zgw_identificatie.domain.audit import AuditEvent
from zgw_identificatie.domain.events import event_values
from zgw_identificatie.domain.sessions import RegistrationState, SessionReason, SessionState
from zgw_identificatie.ports import LoginFlow
from zgw_identificatie.testing.builders import a_session
from zgw_identificatie.testing.settings import TEST_PG_URL

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def audit_of(session_id: str, event: str = "link-opened") -> AuditEvent:
    return AuditEvent(
        at=NOW, actor="citizen", flow="new-citizen", session_id=session_id, event=event, outcome="ok", bsn_hash=None
    )


def test_every_change_writes_the_event_the_domain_rule_names(store):
    """On PostgreSQL the event of an update is worked out in SQL from the row as it was: for every pair of
    (state, reason, registration state) before and after, it is the event ``event_values`` names."""
    states = (SessionState.CREATED, SessionState.OPENED, SessionState.FAILED)
    reasons = (None, SessionReason.CANCELLED, SessionReason.LEVEL_TOO_LOW)
    registrations = (None, RegistrationState.PENDING, RegistrationState.SKIPPED)
    versions = list(itertools.product(states, reasons, registrations))
    base = a_session(NOW, state=SessionState.CREATED, authenticated_at=None, level=None, client_id="api:zac")
    for n, (before, after) in enumerate(itertools.product(versions, repeat=2)):
        old = replace(base, id=f"s{n}", state=before[0], reason=before[1], registration_state=before[2])
        new = replace(old, state=after[0], reason=after[1], registration_state=after[2])
        store.add(old)
        store.update(new)
        expected = event_values(old, new)
        written = store.list_events(session_id=old.id)[1:]  # after 'created'
        if expected is None:
            assert written == [], (before, after)
        else:
            assert len(written) == 1, (before, after)
            assert {k: getattr(written[0], k) for k in expected} == expected, (before, after)


def test_an_update_of_a_session_that_is_gone_writes_no_event_but_its_audit(store):
    """As before the fast path: nothing to update, no event; the audit event still records the attempt."""
    s = a_session(NOW, id="never-stored")
    store.update(replace(s, state=SessionState.COMPLETED), audit=audit_of(s.id, "completed"))
    assert store.list_events(session_id=s.id) == []
    assert [e.event for e in store.list_audit(session_id=s.id)] == ["completed"]


def test_an_audit_event_is_written_with_the_change_it_is_about_or_not_at_all(store):
    s = a_session(NOW, state=SessionState.CREATED, authenticated_at=None, level=None)
    store.add(s, audit=audit_of(s.id, "session-created"))
    opened = replace(s, state=SessionState.OPENED, opened_at=NOW)
    store.update(opened, audit=audit_of(s.id))
    flow = LoginFlow("f1", s.id, "_r", "rs", NOW, NOW + timedelta(minutes=5))
    store.add_login_flow(flow, audit=audit_of(s.id, "digid-login-started"))
    assert [e.event for e in store.list_audit(session_id=s.id)] == [
        "digid-login-started",
        "link-opened",
        "session-created",
    ]
    assert [e.type for e in store.list_events(session_id=s.id)] == ["session.created", "session.opened"]
    assert store.take_login_flow("f1", NOW) == flow

    with pytest.raises(sa.exc.IntegrityError):  # the same id again: neither the session nor its audit event
        store.add(s, audit=audit_of(s.id, "again"))
    with pytest.raises(sa.exc.IntegrityError):
        store.add_login_flow(flow, audit=audit_of(s.id, "again"))
    assert "again" not in {e.event for e in store.list_audit(session_id=s.id)}
    assert len(store.list_events(session_id=s.id)) == 2
    assert store.engine.pool.checkedout() == 0


def test_values_come_back_with_their_types_and_a_naive_datetime_is_refused(store):
    """Aware UTC datetimes, booleans, the BSN decrypted; a naive datetime never reaches the database, and
    the refused call leaves no connection checked out."""
    s = a_session(NOW, code_match=False, register=True, citizen_code="123456")
    store.add(s)
    got = store.get(s.id)
    assert got == s
    assert got.created_at.utcoffset() == timedelta(0) and got.code_match is False and got.register is True
    with pytest.raises(sa.exc.StatementError, match="naive"):
        store.use_once("artifact", "a1", datetime(2026, 11, 30, 10, 0))
    assert store.engine.pool.checkedout() == 0
    assert store.use_once("artifact", "a1", NOW) is True and store.use_once("artifact", "a1", NOW) is False


@pytest.fixture
def pg_store(pg_schema: str) -> Iterator[SqlSessionStore]:
    schema = pg_schema + "_" + secrets.token_hex(3)
    admin = sa.create_engine(TEST_PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{TEST_PG_URL}?options=-csearch_path%3D{schema}")
    migrate(engine)
    yield SqlSessionStore(engine, DataCipher([generate_key()]))
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.mark.postgres
def test_each_statement_is_compiled_once_per_store(pg_store, monkeypatch):
    store = pg_store
    compiled: list[object] = []
    real = sql_store._PgStatement.compile

    def counting(statement, *args, **kwargs):
        compiled.append(statement)
        return real(statement, *args, **kwargs)

    monkeypatch.setattr(sql_store._PgStatement, "compile", staticmethod(counting))
    s = a_session(NOW, state=SessionState.CREATED, authenticated_at=None, level=None)
    store.add(s, audit=audit_of(s.id))
    for i in range(5):
        store.get(s.id)
        store.update(replace(s, purpose=f"p{i}"), audit=audit_of(s.id))
        store.add_audit(audit_of(s.id))
        store.use_once("artifact", f"a{i}", NOW)
    assert len(compiled) == 3  # get, add_audit, use_once; the session changes are built without Core


@pytest.mark.postgres
def test_a_connection_keeps_one_cursor_for_the_fast_path_and_a_failed_statement_leaves_it(pg_store):
    """Cursors are made once per pooled connection, not per statement; after an error (here a duplicate
    key) the next statement gets a fresh cursor and works; a counting cursor class put on the connection
    later (as the round-trip counter does) is used from then on."""
    import psycopg

    store = pg_store
    made: list[object] = []

    class Counting(psycopg.Cursor):  # type: ignore[type-arg]
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    sa.event.listen(
        store.engine.pool, "checkout", lambda dbapi, _record, _proxy: setattr(dbapi, "cursor_factory", Counting)
    )
    s = a_session(NOW, state=SessionState.CREATED, authenticated_at=None, level=None)
    store.add(s, audit=audit_of(s.id))
    for i in range(20):
        assert store.get(s.id) is not None
        store.update(replace(s, purpose=f"p{i}"), audit=audit_of(s.id))
    assert len(made) == 1  # one pooled connection (one thread), one cursor for 41 statements
    with pytest.raises(sa.exc.IntegrityError):
        store.add(s)  # the same id again
    assert store.get(s.id).purpose == "p19"
    assert len(made) == 2


@pytest.mark.postgres
def test_the_ids_of_one_response_are_used_in_one_round_trip_and_only_one_of_racing_callers_wins(pg_store):
    """Response and Assertion ID: one statement; callers racing with the same ids: exactly one gets None."""
    from concurrent.futures import ThreadPoolExecutor

    from zgw_identificatie.testing.roundtrips import RoundTrips

    store = pg_store
    store.use_once("warm-up", "x", NOW)  # the first connection
    trips = RoundTrips(store.engine)
    assert store.use_once_each([("digid-response", "_r"), ("digid-assertion", "_a")], NOW) is None
    assert len(trips.statements) == 1, trips.statements
    for n in range(20):
        ids = [("digid-response", f"_r{n}"), ("digid-assertion", f"_a{n}")]
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(lambda _: store.use_once_each(ids, NOW), range(4)))
        assert outcomes.count(None) == 1 and set(outcomes) == {None, "digid-response"}


@pytest.mark.postgres
def test_a_login_flow_and_its_session_are_taken_in_one_round_trip(pg_store):
    from zgw_identificatie.testing.roundtrips import RoundTrips

    store = pg_store
    s = a_session(NOW, state=SessionState.OPENED, authenticated_at=None, level=None)
    store.add(s)
    flow = LoginFlow("f1", s.id, "_r", "rs", NOW, NOW + timedelta(minutes=5))
    store.add_login_flow(flow)
    trips = RoundTrips(store.engine)
    assert store.take_login_flow_with_session("f1", NOW) == (flow, s)
    assert len(trips.statements) == 1, trips.statements
