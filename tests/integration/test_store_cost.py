"""What the store costs: bounded purge batches from any backlog, round trips per identification, indexes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from demo_driver import API_KEY, Citizen, demo_app
from zgw_identificatie.adapters.crypto import DataCipher, generate_key
from zgw_identificatie.adapters.sql_store import SqlSessionStore, make_engine, metadata, migrate
from zgw_identificatie.app import services_of
from zgw_identificatie.ports import LoginFlow
from zgw_identificatie.testing.clock import FixedClock
from zgw_identificatie.testing.roundtrips import RoundTrips
from zgw_identificatie.testing.settings import TEST_PG_URL as PG_URL

BSN = "999993653"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PSYCOPG_PARAMETER_LIMIT = 65_535


@pytest.fixture
def pg_url(pg_schema: str) -> Iterator[str]:
    """A fresh schema of its own, as a database URL the app's own ``make_engine`` uses."""
    schema = pg_schema + "_" + secrets.token_hex(3)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[SqlSessionStore]:
    engine = make_engine(pg_url)
    migrate(engine)
    yield SqlSessionStore(engine, DataCipher([generate_key()]))
    engine.dispose()


def insert_expired_sessions(store: SqlSessionStore, n: int, *, expires: str, prefix: str = "old") -> None:
    """n sessions in one INSERT … SELECT generate_series (seconds, not minutes, for 70,000 rows)."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sessions (id, flow, state, created_at, expires_at, owner_id, owner_name, gemeente,"
                " min_level, purpose, register, bsn_enc)"
                " SELECT :prefix || '-' || i, 'known-citizen', 'authenticated', CAST(:expires AS timestamptz)"
                " - interval '15 minutes', CAST(:expires AS timestamptz), 'local:a', 'Sanne', 'Gemeente Voorbeeld',"
                " 20, '', false, '\\x00ff' FROM generate_series(1, :n) AS i"
            ),
            {"prefix": prefix, "expires": expires, "n": n},
        )
        conn.execute(
            sa.text(
                "INSERT INTO login_flows (id, session_id, request_id, relay_state, created_at, expires_at)"
                " SELECT 'f-' || :prefix || '-' || i, :prefix || '-' || i, '_r', 'rs', CAST(:expires AS timestamptz)"
                " - interval '15 minutes', CAST(:expires AS timestamptz) + interval '1 hour'"
                " FROM generate_series(1, :n, 10) AS i"
            ),
            {"prefix": prefix, "expires": expires, "n": n},
        )


def count(store: SqlSessionStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.postgres
def test_a_purge_of_more_expired_rows_than_the_drivers_parameter_limit_erases_them_all(pg_store):
    """70,000 expired sessions (and their login flows, which themselves expire later) are erased in one
    run; the live session and its flow stay. One IN list of every id failed here ("too many parameters")."""
    clock = FixedClock()
    n = PSYCOPG_PARAMETER_LIMIT + 4_465
    insert_expired_sessions(pg_store, n, expires=(clock.now() - timedelta(minutes=1)).isoformat())
    insert_expired_sessions(pg_store, 3, expires=(clock.now() + timedelta(minutes=10)).isoformat(), prefix="live")
    assert count(pg_store, "sessions") == n + 3

    counts = pg_store.purge(clock.now())

    assert counts["sessions"] == n and counts["login_flows"] == len(range(1, n + 1, 10))
    assert count(pg_store, "sessions") == 3 and count(pg_store, "login_flows") == 1
    with pg_store.engine.connect() as conn:
        assert set(conn.execute(sa.text("SELECT id FROM sessions")).scalars()) == {"live-1", "live-2", "live-3"}
    assert pg_store.purge(clock.now())["sessions"] == 0


@pytest.mark.parametrize("batch", [1, 7, 5000])
def test_the_purge_works_in_batches_of_its_own_transactions_and_keeps_what_a_failed_run_erased(
    tmp_path: Path, batch: int
):
    """SQLite, small batches: every expired row goes, whatever the batch size; a run that breaks off
    after two batches has still erased two batches' worth."""
    store = SqlSessionStore(make_engine(f"sqlite:///{tmp_path / 's.sqlite'}"), DataCipher([generate_key()]))
    migrate(store.engine)
    clock = FixedClock()
    from zgw_identificatie.testing.builders import a_session

    for i in range(23):
        store.add(a_session(clock.now(), id=f"old-{i}", expires_at=clock.now() + timedelta(minutes=1)))
        store.use_once("artifact", f"a{i}", clock.now() + timedelta(minutes=1))
    store.add(a_session(clock.now(), id="live", expires_at=clock.now() + timedelta(hours=1)))
    later = clock.now() + timedelta(minutes=2)
    store.add_login_flow(LoginFlow("f1", "old-3", "_r", "rs", clock.now(), later + timedelta(hours=1)))

    if batch == 7:
        commits = []
        sa.event.listen(store.engine, "commit", lambda conn: commits.append(1))

        def fail_on_third(conn, *args):
            if len(commits) == 2:
                raise RuntimeError("database went away")

        sa.event.listen(store.engine, "before_cursor_execute", fail_on_third)
        with pytest.raises(RuntimeError):
            store.purge(later, batch=batch)
        sa.event.remove(store.engine, "before_cursor_execute", fail_on_third)
        assert count(store, "sessions") == 24 - 2 * batch

    counts = store.purge(later, batch=batch)
    assert count(store, "sessions") == 1 and count(store, "one_time_ids") == 0 and count(store, "login_flows") == 0
    assert counts["one_time_ids"] == 23 and counts["sessions"] == (23 if batch != 7 else 23 - 2 * batch)


def test_the_migrations_create_the_indexes_the_store_declares(tmp_path: Path):
    """Including (owner_id, created_at) for the staff overview: it reads an owner's newest rows from
    the index instead of sorting all of them."""
    engine = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    migrate(engine)
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        declared = {(ix.name, tuple(c.name for c in ix.columns)) for ix in table.indexes}
        found = {(ix["name"], tuple(ix["column_names"])) for ix in inspector.get_indexes(table.name)}
        assert found == declared, table.name
    assert ("ix_sessions_owner_id_created_at", ("owner_id", "created_at")) in {
        (ix["name"], tuple(ix["column_names"])) for ix in inspector.get_indexes("sessions")
    }


@pytest.mark.postgres
def test_one_whole_identification_takes_at_most_11_database_round_trips(tmp_path: Path, pg_url: str):
    """§2.2 over HTTP on PostgreSQL: API create, start page, DigiD hand-off, ACS, result page, API status.
    Before: a ping, BEGIN and ROLLBACK around every SELECT — 69 round trips for 18 statements; then 23 with
    a transaction per session change and the audit events apart; then 14. Now every change of a session is
    one statement with its outbox event and audit event: 4 reads of the session alone (the login button's
    POST leaves the check to the hand-off page), 4 changes (create, opened, login flow, authenticated), the
    login flow taken with its session, the artifact's one-time id, and the Response and Assertion IDs in
    one statement."""
    app = demo_app(tmp_path, database_url=pg_url)
    store = services_of(app).store
    api = app.test_client()
    api.get("/api/v1/openapi.json")  # warm-up: the first connection
    trips = RoundTrips(store.engine)

    created = api.post("/api/v1/sessions", json={"flow": "known-citizen", "bsn": BSN}, headers=AUTH)
    assert created.status_code == 201
    sid = created.get_json()["id"]
    final = Citizen.new(app).login(sid, bsn=BSN)
    assert final.status_code == 200
    status = api.get(f"/api/v1/sessions/{sid}", headers=AUTH).get_json()
    assert status["state"] == "authenticated", status

    store.engine.dispose()  # close the pooled connections now, not when the garbage collector finds them
    assert "PING" not in trips.statements
    service = trips.without("demo_digid_state")  # the simulator stands in for DigiD: its state is not ours
    assert len(service) <= 11, "\n".join(service)
    assert len(service) >= 6  # the count sees the work (session, login flow, one-time ids, audit …)


@pytest.mark.postgres
def test_after_a_database_restart_the_pool_recovers_without_a_ping_per_checkout(pg_store):
    """The server drops every connection (as a restart does): a read retries once on a fresh
    connection; a write fails once with OperationalError (the web layer's calm 503) — it may have
    committed, so it is not repeated — and the next one works."""
    from zgw_identificatie.testing.builders import a_session

    clock = FixedClock()
    pg_store.add(a_session(clock.now(), id="s1"))

    def drop_connections() -> None:
        with pg_store.engine.connect() as conn:
            pids = set(conn.execute(sa.text("SELECT pg_backend_pid()")).scalars())
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            killed = conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids.pop()}).scalar()
        admin.dispose()
        assert killed

    drop_connections()
    assert pg_store.get("s1") is not None
    drop_connections()
    with pytest.raises(sa.exc.OperationalError):
        pg_store.add(a_session(clock.now(), id="s2"))
    pg_store.add(a_session(clock.now(), id="s3"))
    assert pg_store.get("s3") is not None and pg_store.engine.pool._pre_ping is False


def insert_new_events(store: SqlSessionStore, sessions: int, per_session: int) -> None:
    """``per_session`` interleaved new events for each of ``sessions`` sessions, in one INSERT … SELECT."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO events (session_id, client_id, owner_id, flow, type, state, created_at, fanned_out)"
                " SELECT 's-' || s, CASE WHEN s % 2 = 0 THEN 'api:zac' END, 'local:a', 'known-citizen',"
                " 'session.opened', 'opened', now(), false"
                " FROM generate_series(1, :per) AS e, generate_series(1, :sessions) AS s ORDER BY e, s"
            ),
            {"per": per_session, "sessions": sessions},
        )


@pytest.mark.postgres
def test_a_fan_out_batch_costs_the_same_few_round_trips_whatever_its_size(pg_store):
    """Before: one transaction per event (BEGIN, an UPDATE with an 'earlier event pending?' check, an INSERT per
    channel, COMMIT), about 330 events a second; a purge of a long backlog leaves one ``session.expired`` event
    per unfinished session, so a million of them took the worker close to an hour, with today's events behind
    them. Now a batch is BEGIN, the lock, one read, one UPDATE, one INSERT of all deliveries, COMMIT."""
    insert_new_events(pg_store, sessions=300, per_session=3)
    channels = lambda e: ["notificaties", "webhook:zac"] if e.client_id else ["notificaties"]  # noqa: E731
    trips = RoundTrips(pg_store.engine)
    assert pg_store.fan_out_events(channels, datetime.now(UTC), limit=50) == 50
    small = list(trips.statements)
    trips.statements.clear()
    assert pg_store.fan_out_events(channels, datetime.now(UTC), limit=800) == 800
    assert len(trips.statements) == len(small) <= 6, "\n".join(trips.statements)
    assert count(pg_store, "event_deliveries") == 850 * 3 // 2


@pytest.mark.postgres
def test_a_backlog_of_new_events_drains_in_one_worker_pass_in_order_per_session(pg_store):
    from zgw_identificatie.outbox import fan_out

    insert_new_events(pg_store, sessions=40, per_session=25)  # 1,000 events
    assert fan_out(pg_store, lambda e: ["nrc"], lambda: datetime.now(UTC), batch=64, budget_seconds=60) == 1000
    assert count(pg_store, "event_deliveries") == 1000
    with pg_store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT session_id, event_id, id FROM event_deliveries ORDER BY id")).all()
        unfanned = conn.execute(sa.text("SELECT count(*) FROM events WHERE NOT fanned_out")).scalar_one()
    assert unfanned == 0
    by_session: dict[str, list[int]] = {}
    for session_id, event_id, _ in rows:
        by_session.setdefault(session_id, []).append(event_id)
    assert len(by_session) == 40 and all(ids == sorted(ids) and len(ids) == 25 for ids in by_session.values())


@pytest.mark.postgres
def test_while_another_worker_fans_out_a_second_one_returns_at_once_and_nothing_is_doubled(pg_store):
    insert_new_events(pg_store, sessions=5, per_session=2)
    lock = "SELECT pg_advisory_lock(hashtext(current_schema() || '.zgwid-fan-out'))"
    with pg_store.engine.connect() as other:
        other.execute(sa.text(lock))  # the other worker, in the middle of its batch
        assert pg_store.fan_out_events(lambda e: ["nrc"], datetime.now(UTC), limit=100) == 0
        assert count(pg_store, "event_deliveries") == 0
        other.execute(sa.text(lock.replace("pg_advisory_lock", "pg_advisory_unlock")))
        other.commit()
    assert pg_store.fan_out_events(lambda e: ["nrc"], datetime.now(UTC), limit=100) == 10
    assert pg_store.fan_out_events(lambda e: ["nrc"], datetime.now(UTC), limit=100) == 0
    assert count(pg_store, "event_deliveries") == 10


def test_the_schema_revision_the_store_expects_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import zgw_identificatie.adapters.sql_store as sql_store

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(sql_store.__file__).resolve().parent.parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == sql_store.SCHEMA_REVISION


@pytest.mark.postgres
def test_a_worker_start_on_a_current_schema_does_not_load_alembic(pg_url: str, tmp_path: Path):
    """About 0.2 s of every web worker's start: Alembic (with Mako and Pygments) and the migration scripts."""
    import subprocess
    import sys

    release = make_engine(pg_url)
    migrate(release)  # the release step
    release.dispose()
    script = (
        "import sys\nfrom zgw_identificatie.adapters.sql_store import make_engine, migrate\n"
        f"migrate(make_engine({pg_url!r}))\nprint('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
    fresh = make_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")  # a new database still gets every migration
    migrate(fresh)
    assert sa.inspect(fresh).has_table("code_confirmations")
    fresh.dispose()


@pytest.mark.postgres
def test_claiming_a_batch_of_deliveries_costs_two_statements_whatever_its_size(pg_store):
    """Before: one read of the due ids, then per delivery a conditional UPDATE and a read of its event (61 round
    trips for 30). Now one UPDATE … RETURNING leases them all (chosen FOR UPDATE SKIP LOCKED) and one read
    brings their events."""
    insert_new_events(pg_store, sessions=30, per_session=2)
    assert pg_store.fan_out_events(lambda e: ["nrc"], datetime.now(UTC), limit=100) == 60
    trips = RoundTrips(pg_store.engine)
    claimed = pg_store.claim_due_deliveries(datetime.now(UTC), lease_seconds=60, limit=100)
    assert len(trips.statements) == 2, "\n".join(trips.statements)
    assert len(claimed) == 30  # the first event of each session; its second waits in line
    assert {d.event.session_id for d in claimed} == {f"s-{i}" for i in range(1, 31)}
    assert [d.event.id for d in claimed] == sorted(d.event.id for d in claimed)
    assert pg_store.claim_due_deliveries(datetime.now(UTC), lease_seconds=60, limit=100) == []  # all leased


def insert_pending_deliveries(store: SqlSessionStore, n: int, *, first: int = 1) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO event_deliveries (event_id, session_id, channel, state, attempts, next_attempt_at,"
                " priority) SELECT i, 'p-' || i, 'nrc', 'pending', 0, now() - interval '1 minute', i % 2"
                " FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i"
            ),
            {"first": first, "last": first + n - 1},
        )
        conn.execute(sa.text("ANALYZE event_deliveries"))


def pages_read_by_a_claim(store: SqlSessionStore, what: str = "event_deliveries") -> int:
    """Shared buffers a worker's claim (of deliveries or registrations) touches to choose its rows (EXPLAIN
    ANALYZE of the whole claim, rolled back: nothing is leased; the UPDATE of the chosen rows is not counted)."""
    from sqlalchemy.dialects import postgresql

    from zgw_identificatie.adapters import sql_store

    lease = {"event_deliveries": sql_store._LEASE_DELIVERIES, "registrations": sql_store._LEASE_REGISTRATIONS}[what]
    compiled = lease.claim.compile(dialect=postgresql.dialect())
    now = datetime.now(UTC)
    params = {**compiled.params, "now": now, "lim": 50, "until": now + timedelta(minutes=1)}
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + str(compiled), params).scalar()
        conn.rollback()
    (choice,) = [p for p in plan[0]["Plan"]["Plans"] if p.get("Subplan Name") == f"CTE chosen_{what}"]
    return int(choice["Shared Hit Blocks"]) + int(choice.get("Shared Read Blocks", 0))


@pytest.mark.postgres
def test_a_claim_reads_about_as_much_with_a_large_backlog_as_with_a_small_one(pg_store):
    """The due index holds only pending deliveries in claim order (priority, next attempt, event): a claim
    walks it and stops after its limit. Before (an index by next attempt only), PostgreSQL read and sorted
    every pending delivery to find the first in line of each session: 400 ms per claim of 50 with 200,000
    pending, against 5 ms now."""
    insert_pending_deliveries(pg_store, 2_000)
    small = pages_read_by_a_claim(pg_store)
    insert_pending_deliveries(pg_store, 38_000, first=2_001)
    large = pages_read_by_a_claim(pg_store)
    assert large < 3 * small, (small, large)  # 20 times the backlog: twice the reads (a deeper index), not 20 times


def insert_registrations(store: SqlSessionStore, n: int, *, first: int, state: str) -> None:
    """Finished ones were due long ago (and before one another); unfinished ones became due a minute ago."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO registrations (id, session_id, state, created_at, updated_at, next_attempt_at, attempts)"
                " SELECT 'r-' || i, 's-' || i, CAST(:state AS varchar), now(), now(),"
                " CASE WHEN :finished THEN now() - interval '2 days' + i * interval '1 second'"
                " ELSE now() - interval '1 minute' END, 1"
                " FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i"
            ),
            {"first": first, "last": first + n - 1, "state": state, "finished": state == "done"},
        )
        conn.execute(sa.text("ANALYZE registrations"))


@pytest.mark.postgres
def test_the_workers_claim_of_registrations_does_not_read_the_finished_ones(pg_store):
    """Registrations are kept for good; the worker claims due ones every second. Through an index of all of them
    by next attempt, each claim walked past every finished registration (250–400 ms with a million, also when
    nothing was due). ix_registrations_due holds only the pending and retrying ones."""
    insert_registrations(pg_store, 1_000, first=1, state="done")
    insert_registrations(pg_store, 10, first=900_000, state="pending")
    small = pages_read_by_a_claim(pg_store, "registrations")
    insert_registrations(pg_store, 40_000, first=1_001, state="done")
    large = pages_read_by_a_claim(pg_store, "registrations")
    assert large <= small + 5, (small, large)
    claimed = pg_store.claim_due_registrations(datetime.now(UTC), lease_seconds=60, limit=50)
    assert sorted(r.id for r in claimed) == sorted(f"r-{i}" for i in range(900_000, 900_010))
