"""SessionStore on SQLAlchemy Core: SQLite by default, PostgreSQL in production.

The schema is created and upgraded by Alembic (``migrations/``); ``tables`` below mirrors the
newest migration and a test checks they agree. BSNs and proof payloads are stored encrypted
(``DataCipher``) and deleted as soon as the flow no longer needs them.

Database round trips are the store's main cost, so:

* a method that runs one statement runs it in autocommit (one round trip, no BEGIN/COMMIT/ROLLBACK);
  a method that needs several statements to agree runs them in one transaction;
* there is no ping per checkout (``pool_pre_ping``): a pooled connection that died with a database
  restart fails on its first statement; the pool is then invalidated and the unit of work is retried
  once on a fresh connection (``_run``). A database that is really down raises ``OperationalError``,
  which the web layer turns into a calm 503;
* the statements are built once (module level, bind parameters), so SQLAlchemy's compiled cache hits;
  on PostgreSQL the single statements go further: compiled once and run on the psycopg connection
  itself (``_pg``), and a change of a session with its outbox and audit events is one statement;
* ``purge`` works in bounded batches, each its own short transaction, so any backlog shrinks.
"""

from __future__ import annotations

import json
import time
from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..domain.assurance import AssuranceLevel
from ..domain.audit import AuditEvent
from ..domain.bsn import Bsn
from ..domain.confirmation import CodeConfirmation, ConfirmationState
from ..domain.events import Delivery, SessionEvent, event_values
from ..domain.proof import ProofData
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionReason, SessionState
from ..ports import LoginFlow
from .crypto import DataCipher

FAILED_PAYLOAD_RETENTION = timedelta(days=1)
EVENT_RETENTION = timedelta(days=1)
UNFINISHED_STATES = (
    SessionState.CREATED.value,
    SessionState.OPENED.value,
    SessionState.AUTHENTICATED.value,
)  # delivered or given-up events: kept a day for support, then deleted
PURGE_BATCH = 5000  # rows per purge transaction: far below any driver's parameter limit, short locks
T = TypeVar("T")
CONFIRMATION_RETENTION = timedelta(days=1)  # finished §2.1 code confirmations, for the staff page meanwhile
MIGRATION_LOCK_KEY = 0x7A67_7769_6400  # "zgwid": one advisory lock for schema migrations
SCHEMA_REVISION = "0009"  # the newest migration (migrations/versions); a test keeps it equal to Alembic's head


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores UTC (naive in SQLite, timestamptz in PostgreSQL); always returns aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("flow", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("owner_id", sa.String(200), nullable=False),
    sa.Column("owner_name", sa.String(200), nullable=False),
    sa.Column("gemeente", sa.String(200), nullable=False),
    sa.Column("min_level", sa.Integer, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("expected_code", sa.String(6)),
    sa.Column("citizen_code", sa.String(6)),
    sa.Column("code_match", sa.Boolean),
    sa.Column("bsn_enc", sa.LargeBinary),
    sa.Column("level", sa.Integer),
    sa.Column("opened_at", UTCDateTime()),
    sa.Column("authenticated_at", UTCDateTime()),
    sa.Column("register", sa.Boolean, nullable=False),
    sa.Column("zaak_identificatie", sa.String(40)),
    sa.Column("zaak_url", sa.String(1000)),
    sa.Column("registration_state", sa.String(20)),
    sa.Column("registration_error", sa.Text),
    sa.Column("reason", sa.String(30)),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("client_id", sa.String(200), index=True),
    sa.Index("ix_sessions_owner_id_created_at", "owner_id", "created_at"),  # the staff overview
)

# Idempotency-Key of API creates: (client, key) → the fingerprint of the body and the session made for it.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client_id", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("session_id", sa.String(64)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# The outbox: one row per change of a session, written in the same transaction as the change.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # No index on session_id (migration 0008): no production query looks events up by session any more,
    # and it was the costliest index of the table a purge writes a row into per unfinished session.
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(200)),
    sa.Column("owner_id", sa.String(200), nullable=False),
    sa.Column("flow", sa.String(20), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(40)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("fanned_out", sa.Boolean, nullable=False),
    # The fan-out reads the oldest new events: an index of only those, in id order (migration 0008).
    sa.Index(
        "ix_events_new",
        "id",
        postgresql_where=sa.text("NOT fanned_out"),
        sqlite_where=sa.text("fanned_out = 0"),
    ),
)

# One row per event and channel (the Notificaties API, an API client's webhook), retried with backoff.
event_deliveries = sa.Table(
    "event_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer, nullable=False, index=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(220), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", UTCDateTime()),
    # 0 for the events of sessions in progress, 1 for session.expired (migration 0009): the expiry events a
    # purge writes for a backlog are sent after everything else that is due, never before today's events.
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Index("ix_event_deliveries_order", "session_id", "channel", "state"),
    sa.Index(
        "ix_event_deliveries_due",
        "priority",
        "next_attempt_at",
        "event_id",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
)

login_flows = sa.Table(
    "login_flows",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False, index=True),
    sa.Column("request_id", sa.String(100), nullable=False),
    sa.Column("relay_state", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("consumed_at", UTCDateTime()),
)

one_time_ids = sa.Table(
    "one_time_ids",
    metadata,
    sa.Column("kind", sa.String(30), primary_key=True),
    sa.Column("value", sa.String(200), primary_key=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# The predicate of ix_registrations_due, also the claim's and the metrics' filter word for word, with the states as
# literals: a bind parameter would keep PostgreSQL's generic plans (and SQLite) from the partial index, and those
# queries would read every registration ever made.
UNFINISHED_REGISTRATIONS = sa.text("(state = 'pending' OR state = 'retrying')")
registrations = sa.Table(
    "registrations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False, index=True),
    sa.Column("payload_enc", sa.LargeBinary),
    sa.Column("existing_zaak", sa.String(40)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("zaak_url", sa.String(1000)),
    sa.Column("zaak_identificatie", sa.String(40)),
    sa.Column("rol_url", sa.String(1000)),
    sa.Column("status_url", sa.String(1000)),
    sa.Column("document_url", sa.String(1000)),
    sa.Column("link_url", sa.String(1000)),
    sa.Column("uncertain_step", sa.String(20)),
    sa.Column("error", sa.Text),
    sa.Column("invalid_params", sa.Text),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("user_id", sa.String(255)),
    sa.Column("user_representation", sa.String(255)),
    sa.Column("request_id", sa.String(64)),  # migration 0004
    # The worker's claim reads only the unfinished registrations (migration 0009): registrations are kept for
    # good, and an index of all of them by next attempt made every claim walk past every finished one.
    sa.Index(
        "ix_registrations_due",
        "next_attempt_at",
        postgresql_where=UNFINISHED_REGISTRATIONS,
        sqlite_where=UNFINISHED_REGISTRATIONS,
    ),
    # The purge finds the payloads still held among all registrations ever made.
    sa.Index(
        "ix_registrations_held_payloads",
        "state",
        "updated_at",
        postgresql_where=sa.text("payload_enc IS NOT NULL"),
        sqlite_where=sa.text("payload_enc IS NOT NULL"),
    ),
)

#: Demo only (migration 0004): the DigiD simulator's pending logins and issued artifacts, shared by every
#: process and replica that runs the simulator. Values are encrypted (an artifact holds a BSN).
demo_digid_state = sa.Table(
    "demo_digid_state",
    metadata,
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value_enc", sa.LargeBinary, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

code_confirmations = sa.Table(
    "code_confirmations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False, index=True, unique=True),
    sa.Column("matches", sa.Boolean, nullable=False),
    sa.Column("behandelaar_id", sa.String(200), nullable=False),
    sa.Column("behandelaar_name", sa.String(200), nullable=False),
    sa.Column("confirmed_at", UTCDateTime(), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("zaak_url", sa.String(1000)),
    sa.Column("zaak_identificatie", sa.String(40)),
    sa.Column("status_url", sa.String(1000)),
    sa.Column("uncertain", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("lease_until", UTCDateTime()),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("flow", sa.String(20), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False, index=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("bsn_hash", sa.String(64)),
)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No pool_pre_ping (a round trip on every checkout): SqlSessionStore._run retries once on a
    # connection that turns out to be dead.
    return sa.create_engine(url, pool_size=5, max_overflow=10)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision.

    A schema that is there already (every start but the first after a release) is recognised by one query,
    without loading Alembic: importing it (with Mako and Pygments) and reading the migration scripts took
    about 0.2 s of every web worker's start."""
    if _schema_is_current(engine):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several gunicorn workers start at once: one migrates, the others wait and then find nothing to do.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _schema_is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION)
    except DBAPIError:  # a new database (no alembic_version yet) or one that is away: Alembic says which
        return False


# --- statements, built once -------------------------------------------------------------------

_GET_SESSION = sessions.select().where(sessions.c.id == sa.bindparam("sid"))
_INSERT_SESSION = sessions.insert()
_UPDATE_SESSION = sessions.update().where(sessions.c.id == sa.bindparam("sid"))
_LOCK_SESSION = sessions.select().where(sessions.c.id == sa.bindparam("sid")).with_for_update()
_INSERT_EVENT = events.insert()
_DELETE_SESSION = sessions.delete().where(sessions.c.id == sa.bindparam("sid"))
_DELETE_SESSION_FLOWS = login_flows.delete().where(login_flows.c.session_id == sa.bindparam("sid"))
_LIST_FOR_OWNER = (
    sessions.select()
    .where(sessions.c.owner_id == sa.bindparam("owner"))
    .order_by(sessions.c.created_at.desc())
    .limit(sa.bindparam("lim", type_=sa.Integer))
)
_INSERT_FLOW = login_flows.insert()
_TAKE_FLOW = (
    login_flows.update()
    .where(
        login_flows.c.id == sa.bindparam("fid"),
        login_flows.c.consumed_at.is_(None),
        login_flows.c.expires_at > sa.bindparam("now", type_=UTCDateTime()),
    )
    .values(consumed_at=sa.bindparam("now", type_=UTCDateTime()))
    .returning(*login_flows.c)
)
_taken = _TAKE_FLOW.cte("taken")
# The flow taken and its session, in one statement (PostgreSQL: an UPDATE … RETURNING in a WITH); the flow's
# columns are named flow_*, the session's as in sessions.
_TAKE_FLOW_WITH_SESSION = sa.select(
    *(_taken.c[c.key].label("flow_" + c.key) for c in login_flows.c if c.key != "consumed_at"), *sessions.c
).select_from(_taken.outerjoin(sessions, sessions.c.id == _taken.c.session_id))
_INSERT_ONE_TIME = one_time_ids.insert()
_INSERT_REGISTRATION = registrations.insert()
_GET_REGISTRATION = registrations.select().where(registrations.c.id == sa.bindparam("rid"))
_REGISTRATION_FOR_SESSION = (
    registrations.select()
    .where(registrations.c.session_id == sa.bindparam("sid"))
    .order_by(registrations.c.created_at.desc())
    .limit(1)
)
_UPDATE_REGISTRATION = registrations.update().where(registrations.c.id == sa.bindparam("rid"))
_DUE = sa.and_(
    UNFINISHED_REGISTRATIONS,
    registrations.c.next_attempt_at <= sa.bindparam("now", type_=UTCDateTime()),
    sa.or_(
        registrations.c.lease_until.is_(None),
        registrations.c.lease_until < sa.bindparam("now", type_=UTCDateTime()),
    ),
)
_INSERT_AUDIT = audit_events.insert()
_INSERT_CONFIRMATION = code_confirmations.insert()
_CONFIRMATION_FOR_SESSION = code_confirmations.select().where(code_confirmations.c.session_id == sa.bindparam("sid"))
_UPDATE_CONFIRMATION = code_confirmations.update().where(code_confirmations.c.id == sa.bindparam("cid"))
_FINISH_DELIVERY = (
    event_deliveries.update()
    .where(event_deliveries.c.id == sa.bindparam("did"))
    .values(attempts=event_deliveries.c.attempts + 1)
)
_DEFER_DELIVERIES = (
    event_deliveries.update()
    .where(
        event_deliveries.c.id.in_(sa.bindparam("dids", expanding=True)),
        event_deliveries.c.state == sa.literal_column("'pending'"),
    )
    .values(lease_until=None, next_attempt_at=sa.bindparam("until", type_=UTCDateTime()))
)
# The operator's view of the outbox (``zgw-identificatie events``): per channel, what waits and what was given up.
_UNSENT_BY_CHANNEL = (
    sa.select(
        event_deliveries.c.channel,
        event_deliveries.c.state,
        sa.func.count().label("n"),
        sa.func.min(event_deliveries.c.next_attempt_at).label("next_at"),
        sa.func.max(event_deliveries.c.attempts).label("attempts"),
        sa.func.max(event_deliveries.c.last_error).label("error"),
    )
    .where(event_deliveries.c.state.in_(("pending", "failed")))
    .group_by(event_deliveries.c.channel, event_deliveries.c.state)
    .order_by(event_deliveries.c.channel, event_deliveries.c.state)
)
_RETRY_GIVEN_UP = (
    event_deliveries.update()
    .where(event_deliveries.c.state == "failed")
    .values(
        state="pending",
        attempts=0,
        next_attempt_at=sa.bindparam("now", type_=UTCDateTime()),
        lease_until=None,
        finished_at=None,
    )
)
_THE_KEY = sa.and_(
    idempotency_keys.c.client_id == sa.bindparam("client"), idempotency_keys.c.key == sa.bindparam("held")
)
_DELETE_EXPIRED_KEY = idempotency_keys.delete().where(
    _THE_KEY, idempotency_keys.c.expires_at <= sa.bindparam("now", type_=UTCDateTime())
)
_INSERT_KEY = idempotency_keys.insert()
_GET_KEY = sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.session_id).where(_THE_KEY)
_DELETE_KEY = idempotency_keys.delete().where(_THE_KEY)
_SETTLE_KEY = idempotency_keys.update().where(_THE_KEY)


class _Lease(NamedTuple):
    claim: Any  # UPDATE … RETURNING: lease the chosen rows
    order: tuple[str, ...]  # the columns the rows were chosen by, oldest first


def _lease_statement(table: sa.Table, due: Any, *order_by: sa.Column[Any], pick: Any = None) -> _Lease:
    """The one statement of ``SqlSessionStore._lease`` for a table with ``id`` and ``lease_until``: lease the
    ``lim`` oldest rows that are ``due`` (and ``pick``ed) until ``until``, and return them. On PostgreSQL the
    rows are chosen ``FOR UPDATE SKIP LOCKED``: two workers claiming at once take different rows, never the
    same one, and never wait for each other; the UPDATE checks ``due`` again on each row it locks. SQLite runs
    the whole statement under its single write lock."""
    chosen = (
        sa.select(table.c.id)
        .where(due, *([] if pick is None else [pick]))
        .order_by(*order_by)
        .limit(sa.bindparam("lim", type_=sa.Integer))
        .with_for_update(skip_locked=True, of=table)
        # Chosen once: as a plain IN (subquery) PostgreSQL may run the subquery again for every row it updates,
        # and each run skips what the previous one locked, so more than ``lim`` rows would be leased.
        .cte(f"chosen_{table.name}")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    claim = (
        table.update()
        .where(table.c.id.in_(sa.select(chosen.c.id)), due)
        .values(lease_until=sa.bindparam("until", type_=UTCDateTime()))
        .returning(*table.c)
    )
    return _Lease(claim, tuple(c.name for c in order_by))


def _leasable(table: sa.Table, *conditions: Any) -> Any:
    now = sa.bindparam("now", type_=UTCDateTime())
    return sa.and_(
        *conditions, table.c.next_attempt_at <= now, sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)
    )


_earlier = event_deliveries.alias("earlier")
_LEASE_REGISTRATIONS = _lease_statement(registrations, _DUE, registrations.c.next_attempt_at)
_LEASE_DELIVERIES = _lease_statement(
    event_deliveries,
    # 'pending' as a literal: a bind parameter would keep a generic plan from the partial index ix_event_deliveries_due
    _leasable(event_deliveries, event_deliveries.c.state == sa.literal_column("'pending'")),
    event_deliveries.c.priority,
    event_deliveries.c.next_attempt_at,
    event_deliveries.c.event_id,
    # first in line for its session and channel: the per-session order of events
    pick=~sa.exists().where(
        _earlier.c.session_id == event_deliveries.c.session_id,
        _earlier.c.channel == event_deliveries.c.channel,
        _earlier.c.state == "pending",
        _earlier.c.event_id < event_deliveries.c.event_id,
    ),
)
_BATCH_LIMIT = sa.bindparam("limit", type_=sa.Integer)
_GET_EVENTS = events.select().where(events.c.id.in_(sa.bindparam("eids", expanding=True)))
# Fan-out: the oldest new events (the partial index ix_events_new serves the order and the filter), marked
# in one statement, their deliveries inserted in one (on SQLite: one executemany).
_NEW_EVENTS = events.select().where(sa.not_(events.c.fanned_out)).order_by(events.c.id).limit(_BATCH_LIMIT)
_MARK_FANNED_OUT = (
    events.update()
    .where(events.c.id.in_(sa.bindparam("ids", expanding=True)), sa.not_(events.c.fanned_out))
    .values(fanned_out=True)
)
_INSERT_DELIVERY = event_deliveries.insert()
# On PostgreSQL the batch goes as arrays: one statement that PostgreSQL runs once, instead of one INSERT per
# delivery (psycopg's executemany) or a thousand parameters in an IN list.
_PG_MARK_FANNED_OUT = sa.text("UPDATE events SET fanned_out = true WHERE id = ANY (:ids) AND NOT fanned_out")
_PG_INSERT_DELIVERIES = sa.text(
    "INSERT INTO event_deliveries (event_id, session_id, channel, state, attempts, next_attempt_at, priority)"
    " SELECT e, s, c, 'pending', 0, :now, p FROM unnest(CAST(:events AS integer[]), CAST(:sessions AS varchar[]),"
    " CAST(:channels AS varchar[]), CAST(:priorities AS smallint[])) AS u (e, s, c, p)"
).bindparams(sa.bindparam("now", type_=UTCDateTime()))
LATER = 1  # the priority of session.expired deliveries: after everything else that is due
_SENT_LATER = frozenset({"session.expired"})
_FAN_OUT_LOCK = sa.text(
    "SELECT pg_try_advisory_xact_lock(hashtext(coalesce(current_schema(), '') || '.zgwid-fan-out'))"
)  # per schema: the test suite's schemas (and several deployments in one database) do not block each other


class _FanOutRaced(Exception):
    """Another caller marked part of this batch first (SQLite, where no advisory lock exists)."""


_LEASE_CONFIRMATIONS = _lease_statement(
    code_confirmations,
    _leasable(code_confirmations, code_confirmations.c.state == ConfirmationState.PENDING.value),
    code_confirmations.c.next_attempt_at,
)


# Purge: one bounded batch per statement; the caller loops until a batch comes back short.
_BEFORE = sa.bindparam("now", type_=UTCDateTime())
_BATCH = sa.bindparam("batch", type_=sa.Integer)
_EXPIRED_SESSIONS = (
    sa.select(sessions.c.id, sessions.c.client_id, sessions.c.owner_id, sessions.c.flow, sessions.c.state)
    .where(sessions.c.expires_at <= _BEFORE)
    .limit(_BATCH)
)
_DELETE_FLOWS_OF = login_flows.delete().where(login_flows.c.session_id.in_(sa.bindparam("ids", expanding=True)))
_DELETE_SESSIONS = sessions.delete().where(sessions.c.id.in_(sa.bindparam("ids", expanding=True)))
# On PostgreSQL one statement per batch: the batch's ids stay in the server (the CTE is computed
# once), no id travels to Python and back. Two DELETEs: the login flows through their session_id
# index, the sessions by the row addresses just read (a TID scan, no index lookups) — not one DELETE
# with ``expires_at <= … OR session_id IN (…)``, which can use no index at all. A row changed between
# the read and the delete is skipped (its address changed) and goes in the next batch or run.
_PG_PURGE_SESSIONS = sa.text(
    "WITH doomed AS MATERIALIZED (SELECT ctid AS tid, id, client_id, owner_id, flow, state FROM sessions"
    " WHERE expires_at <= :now LIMIT :batch),"
    # The last event of a session nobody finished (the outbox tells its client it expired).
    " expired AS (INSERT INTO events (session_id, client_id, owner_id, flow, type, state, detail, created_at,"
    " fanned_out) SELECT id, client_id, owner_id, flow, 'session.expired', state, 'expired', :stamp, false"
    " FROM doomed WHERE state IN ('created', 'opened', 'authenticated') RETURNING 1),"
    " flows AS (DELETE FROM login_flows WHERE session_id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING 1),"
    " gone AS (DELETE FROM sessions WHERE ctid = ANY (ARRAY(SELECT tid FROM doomed)) RETURNING 1)"
    " SELECT (SELECT count(*) FROM doomed) AS read, (SELECT count(*) FROM gone) AS sessions,"
    " (SELECT count(*) FROM flows) AS login_flows, (SELECT count(*) FROM expired) AS expired_events"
).bindparams(
    sa.bindparam("now", type_=UTCDateTime()),
    sa.bindparam("batch", type_=sa.Integer),
    sa.bindparam("stamp", type_=UTCDateTime()),
)
_DELETE_EXPIRED_FLOWS = login_flows.delete().where(
    login_flows.c.id.in_(sa.select(login_flows.c.id).where(login_flows.c.expires_at <= _BEFORE).limit(_BATCH))
)
_DELETE_EXPIRED_ONE_TIME = one_time_ids.delete().where(
    sa.tuple_(one_time_ids.c.kind, one_time_ids.c.value).in_(
        sa.select(one_time_ids.c.kind, one_time_ids.c.value).where(one_time_ids.c.expires_at <= _BEFORE).limit(_BATCH)
    )
)
_DELETE_EXPIRED_IDEMPOTENCY = idempotency_keys.delete().where(
    sa.tuple_(idempotency_keys.c.client_id, idempotency_keys.c.key).in_(
        sa.select(idempotency_keys.c.client_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.expires_at <= _BEFORE)
        .limit(_BATCH)
    )
)
# Delivered or given-up events are kept EVENT_RETENTION for support, then deleted.
_DELETE_OLD_DELIVERIES = event_deliveries.delete().where(
    event_deliveries.c.id.in_(
        sa.select(event_deliveries.c.id)
        .where(
            event_deliveries.c.state != "pending",
            event_deliveries.c.finished_at <= sa.bindparam("kept_after", type_=UTCDateTime()),
        )
        .limit(_BATCH)
    )
)
_DELETE_OLD_EVENTS = events.delete().where(
    events.c.id.in_(
        sa.select(events.c.id)
        .where(
            events.c.fanned_out.is_(True),
            events.c.created_at <= sa.bindparam("kept_after", type_=UTCDateTime()),
            ~sa.exists().where(event_deliveries.c.event_id == events.c.id),
        )
        .limit(_BATCH)
    )
)
_DROP_PAYLOADS = (
    registrations.update()
    .where(
        registrations.c.id.in_(
            sa.select(registrations.c.id)
            .where(
                registrations.c.payload_enc.is_not(None),
                sa.or_(
                    registrations.c.state == RegistrationState.DONE.value,
                    sa.and_(
                        registrations.c.state == RegistrationState.FAILED.value,
                        registrations.c.updated_at <= sa.bindparam("failed_before", type_=UTCDateTime()),
                    ),
                ),
            )
            .limit(_BATCH)
        )
    )
    .values(payload_enc=None)
)
# §2.1 code confirmations on the zaak (or given up) a day ago: the zaak and the audit events keep them.
_DELETE_OLD_CONFIRMATIONS = code_confirmations.delete().where(
    code_confirmations.c.id.in_(
        sa.select(code_confirmations.c.id)
        .where(
            code_confirmations.c.state != ConfirmationState.PENDING.value,
            code_confirmations.c.confirmed_at <= sa.bindparam("confirmed_before", type_=UTCDateTime()),
        )
        .limit(_BATCH)
    )
)


# --- PostgreSQL fast path ---------------------------------------------------------------------
#
# On PostgreSQL (psycopg 3) the store runs its single statements on the pooled psycopg connection itself:
# each statement is compiled once (per store, on first use) to SQL text plus the SQLAlchemy types' own bind
# and result processors (UTCDateTime, Boolean), and its row comes back as a tuple mapped by position. That
# skips SQLAlchemy's execution context, its result metadata (psycopg builds a Column object per result
# column whenever ``cursor.description`` is read) and the Connection's events: about half the CPU of a
# statement. Every change of a session is one statement too (the session, its outbox event and an audit
# event written by CTEs), so one round trip and atomic without BEGIN/COMMIT.


class _PgStatement:
    """One statement for the fast path: SQL text (pyformat), the bind parameters to convert, literal
    parameters of the statement, and for a statement that returns rows a row class and result processors."""

    __slots__ = ("binds", "fixed", "results", "row", "sql")

    def __init__(
        self,
        sql: str,
        binds: Sequence[tuple[str, Callable[[Any], Any]]],
        columns: Sequence[tuple[str, Callable[[Any], Any] | None]] | None = None,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.sql = sql.encode()
        self.binds = tuple(binds)
        self.fixed = fixed or {}
        self.row: Callable[[Sequence[Any]], Any] | None = None
        self.results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
        if columns is not None:
            self.row = namedtuple("Row", [key for key, _ in columns])._make  # type: ignore[attr-defined]
            self.results = tuple((i, proc) for i, (_, proc) in enumerate(columns) if proc is not None)

    @classmethod
    def compile(cls, statement: Any, dialect: Any, keys: Sequence[str] = ()) -> _PgStatement:
        """A Core statement with bind parameters ``keys`` (for an INSERT or UPDATE: also the columns set)."""
        if isinstance(statement, sa.Insert) and not statement.exported_columns:
            statement = statement.inline()  # no RETURNING of the new primary key: nobody reads it
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if "POSTCOMPILE" in compiled.string or compiled.escaped_bind_names:
            raise ValueError("the fast path runs statements without expanding or escaped parameters")
        names = compiled.bind_names  # bind parameter → its name in the SQL text
        binds = {name: bind.type.bind_processor(dialect) for bind, name in names.items()}  # one per name
        fixed = {name: bind.value for bind, name in names.items() if not bind.required and name not in keys}
        columns = None
        if isinstance(statement, sa.Select) or statement.exported_columns:
            columns = [(c.key, c.type.result_processor(dialect, None)) for c in statement.exported_columns]
        return cls(compiled.string, [(n, p) for n, p in binds.items() if p is not None], columns, fixed)


def _pg_placeholder(dialect: Any, name: str, type_: Any) -> str:
    return str(sa.bindparam(name, type_=type_).compile(dialect=dialect))  # e.g. "%(state)s::VARCHAR"


def _pg_insert(dialect: Any, table: sa.Table, prefix: str, *, skip: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """``INSERT INTO table (…) VALUES (…)`` of every column but ``skip``, the parameters named ``prefix`` + column."""
    columns = [c for c in table.c if c.key not in skip]
    names = ", ".join(c.name for c in columns)
    placeholders = ", ".join(_pg_placeholder(dialect, prefix + c.key, c.type) for c in columns)
    binds = [(prefix + c.key, c.type.bind_processor(dialect)) for c in columns]
    return f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})", binds  # noqa: S608 (our names only)


# The CTEs of an update of a session: lock the row and read it as it was, update it, and write the outbox
# event its change means — ``domain.events.event_values`` in SQL (a test holds the two to the same answers).
_PG_UPDATE_SESSION = """\
old AS (SELECT id, state, reason, registration_state FROM sessions WHERE id = {sid} FOR UPDATE),
changed AS (UPDATE sessions SET {assignments} FROM old WHERE sessions.id = old.id
  RETURNING old.state AS old_state, old.reason AS old_reason, old.registration_state AS old_registration_state),
change AS (SELECT CASE
  WHEN old_state IS DISTINCT FROM {state} THEN 'session.' || {state}
  WHEN {reason} = 'cancelled' AND old_reason IS DISTINCT FROM {reason} THEN 'session.cancelled'
  WHEN {registration} IS NOT NULL AND old_registration_state IS DISTINCT FROM {registration}
    THEN 'registration.' || {registration}
  END AS type FROM changed),
event AS (INSERT INTO events (session_id, client_id, owner_id, flow, type, state, detail, created_at, fanned_out)
  SELECT {sid}, {client_id}, {owner_id}, {flow}, type, {state},
    CASE WHEN left(type, 13) = 'registration.' THEN {registration} ELSE {reason} END, {created_at}, false
  FROM change WHERE type IS NOT NULL)"""


def _pg_session_change(dialect: Any, *, new: bool, event: bool, audit: bool) -> _PgStatement:
    """The one statement that adds (``new``) or updates a session, with its outbox event and an audit event.

    An add's event comes from Python (``e_*`` parameters; ``event`` False: none); an update's from the row
    as it was and the new values (``_PG_UPDATE_SESSION``). The audit event's parameters are ``a_*``."""
    ctes: list[str] = []
    binds: list[Any] = []
    if new:
        insert, bound = _pg_insert(dialect, sessions, "")
        ctes.append(f"new_session AS ({insert})")
        binds += bound
        if event:
            insert, bound = _pg_insert(dialect, events, "e_", skip=("id",))
            ctes.append(f"event AS ({insert})")
            binds += bound
    else:
        changed = [c for c in sessions.c if c.key != "id"]
        binds += [(c.key, c.type.bind_processor(dialect)) for c in changed]
        binds.append(("e_created_at", UTCDateTime().bind_processor(dialect)))
        string = sa.String()
        ctes.append(
            _PG_UPDATE_SESSION.format(
                assignments=", ".join(f"{c.name} = {_pg_placeholder(dialect, c.key, c.type)}" for c in changed),
                created_at=_pg_placeholder(dialect, "e_created_at", UTCDateTime()),
                registration=_pg_placeholder(dialect, "registration_state", string),
                **{
                    k: _pg_placeholder(dialect, k, string)
                    for k in ("sid", "state", "reason", "client_id", "owner_id", "flow")
                },
            )
        )
    if audit:
        insert, bound = _pg_insert(dialect, audit_events, "a_", skip=("id",))
        ctes.append(f"audit AS ({insert})")
        binds += bound
    return _PgStatement("WITH " + ", ".join(ctes) + " SELECT 1", [(n, f) for n, f in binds if f is not None])


def _login_flow(row: Any, prefix: str = "") -> LoginFlow:
    """A login flow from a row of ``login_flows`` (its columns named ``prefix`` + name)."""
    names = ("id", "session_id", "request_id", "relay_state", "created_at", "expires_at")
    return LoginFlow(**{name: getattr(row, prefix + name) for name in names})


def _pg_use_once_each(dialect: Any, n: int) -> _PgStatement:
    """``SqlSessionStore.use_once_each`` for ``n`` ids in one statement: a chain of CTEs, each inserting its id
    (``k<i>``, ``v<i>``) only when the one before it was new (``ON CONFLICT DO NOTHING``: a replay inserts
    nothing and stops the chain), with the count each inserted (1 or 0)."""
    expires = _pg_placeholder(dialect, "expires_at", UTCDateTime())
    ctes: list[str] = []
    for i in range(n):
        kind, value = _pg_placeholder(dialect, f"k{i}", sa.String()), _pg_placeholder(dialect, f"v{i}", sa.String())
        guard = f" WHERE EXISTS (SELECT 1 FROM i{i - 1})" if i else ""  # noqa: S608 (our names only)
        ctes.append(
            f"i{i} AS (INSERT INTO {one_time_ids.name} (kind, value, expires_at)"
            f" SELECT {kind}, {value}, {expires}{guard} ON CONFLICT DO NOTHING RETURNING 1)"
        )
    counts = ", ".join(f"(SELECT count(*) FROM i{i}) AS n{i}" for i in range(n))  # noqa: S608 (our names only)
    process = UTCDateTime().bind_processor(dialect)
    assert process is not None
    return _PgStatement(
        "WITH " + ", ".join(ctes) + " SELECT " + counts, [("expires_at", process)], [(f"n{i}", None) for i in range(n)]
    )


def _pg_with_audit(dialect: Any, statement: _PgStatement) -> _PgStatement:
    """``statement`` (an INSERT or UPDATE without a WITH of its own) and an audit event in one statement."""
    insert, bound = _pg_insert(dialect, audit_events, "a_", skip=("id",))
    with_audit = _PgStatement(f"WITH audit AS ({insert}) " + statement.sql.decode(), [], fixed=statement.fixed)
    with_audit.binds = statement.binds + tuple((n, f) for n, f in bound if f is not None)
    with_audit.row, with_audit.results = statement.row, statement.results
    return with_audit


def _audit_params(event: AuditEvent, prefix: str = "") -> dict[str, Any]:
    return {
        prefix + "at": event.at,
        prefix + "actor": event.actor,
        prefix + "flow": event.flow,
        prefix + "session_id": event.session_id,
        prefix + "event": event.event,
        prefix + "outcome": event.outcome,
        prefix + "bsn_hash": event.bsn_hash,
    }


def _disconnected(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated)


def _reset_autocommit(dbapi: Any) -> bool:
    """Back to the pool's default after a failed statement; False when the connection cannot be trusted."""
    try:
        dbapi.autocommit = False
    except Exception:
        return False
    return True


_FAST_CURSOR = "zgwid_fast_cursor"  # key of a pooled connection's fast-path cursor in its ``info``


class SqlSessionStore:
    def __init__(self, engine: Engine, cipher: DataCipher) -> None:
        self.engine = engine
        self.cipher = cipher

    @property
    def engine(self) -> Engine:
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._engine = engine
        # The same pool; a connection checked out from this one commits every statement on its own.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._fast = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self._compiled: dict[Any, tuple[Any, Any]] = {}  # (id(statement), keys) → statement, _PgStatement

    def _pg_statement(self, statement: Any, keys: Sequence[str]) -> _PgStatement | None:
        """``statement`` compiled for the fast path, once; None when it needs SQLAlchemy (expanding parameters)."""
        key = (id(statement), tuple(keys))
        found = self._compiled.get(key)
        if found is None or found[0] is not statement:
            try:
                compiled: _PgStatement | None = _PgStatement.compile(statement, self._engine.dialect, keys)
            except ValueError:
                compiled = None
            found = self._compiled[key] = (statement, compiled)
        return found[1]

    def _pg_built(self, key: tuple[Any, ...], build: Callable[[Any], _PgStatement]) -> _PgStatement:
        """A statement of our own SQL (not compiled from a SQLAlchemy statement), built once per ``key``."""
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = (key, build(self._engine.dialect))
        return found[1]

    def _pg_change(self, *, new: bool, event: bool, audit: bool) -> _PgStatement:
        return self._pg_built(
            ("session change", new, event, audit),
            lambda dialect: _pg_session_change(dialect, new=new, event=event, audit=audit),
        )

    def _pg_audited(self, statement: Any, keys: Sequence[str]) -> _PgStatement:
        key = ("audited", id(statement), tuple(keys))
        found = self._compiled.get(key)
        if found is None or found[0] is not statement:
            plain = self._pg_statement(statement, keys)
            assert plain is not None
            found = self._compiled[key] = (statement, _pg_with_audit(self._engine.dialect, plain))
        return found[1]

    def _pg(self, statement: _PgStatement, params: dict[str, Any], *, retry: bool = False) -> Any:
        """The fast path: one statement in autocommit on a pooled psycopg connection; the first row (a named
        tuple) or None for a statement that returns rows, else the rowcount.

        The same promises as ``_run``: no ping; a connection that died with a database restart invalidates
        the pool, and a read (``retry``) is then repeated once on a fresh connection; errors are SQLAlchemy's
        (``OperationalError`` → the calm 503, ``IntegrityError`` …)."""
        values = {**statement.fixed, **params} if statement.fixed else dict(params)
        try:
            for name, process in statement.binds:
                values[name] = process(values[name])
        except Exception as exc:  # as SQLAlchemy reports a value its type refuses (a naive datetime)
            raise sa.exc.StatementError(str(exc), statement.sql.decode(), params, exc) from exc
        pool = self._engine.pool
        dialect = self._engine.dialect
        for attempt in (1, 2):
            fairy: Any = None
            dbapi: Any = None
            try:
                fairy = pool.connect()
                dbapi = fairy.dbapi_connection
                dbapi.autocommit = True
                # One cursor per connection, kept with it: a new cursor per statement would build its
                # adapters context (the loaders per column type) again, about 20 µs each time. A cursor of
                # another class than the connection's factory (a test's counting cursor) is replaced.
                cursor = fairy.info.get(_FAST_CURSOR)
                if cursor is None or cursor.__class__ is not dbapi.cursor_factory or cursor.closed:
                    cursor = fairy.info[_FAST_CURSOR] = dbapi.cursor()
                cursor.execute(statement.sql, values, prepare=True)
                if statement.row is None:
                    result: Any = cursor.rowcount
                else:
                    row = cursor.fetchone()
                    if row is None:
                        result = None
                    else:
                        if statement.results:
                            row = list(row)
                            for i, process in statement.results:
                                row[i] = process(row[i])
                        result = statement.row(row)
                dbapi.autocommit = False
                fairy.close()
                return result
            except dialect.loaded_dbapi.Error as exc:
                disconnected = bool(dialect.is_disconnect(exc, dbapi, None))
                if fairy is not None:
                    fairy.info.pop(_FAST_CURSOR, None)
                    if disconnected or dbapi is None or not _reset_autocommit(dbapi):
                        pool._invalidate(fairy, exc)  # after a disconnect every pooled connection is suspect
                    else:
                        fairy.close()
                error = DBAPIError.instance(
                    statement.sql.decode(),
                    params,
                    exc,
                    dialect.loaded_dbapi.Error,
                    connection_invalidated=disconnected,
                    dialect=dialect,
                )
                if attempt == 2 or not retry or not disconnected:
                    raise error from exc
            except BaseException:
                if fairy is not None:
                    fairy.info.pop(_FAST_CURSOR, None)
                    if dbapi is not None and _reset_autocommit(dbapi):
                        fairy.close()
                    else:
                        fairy.invalidate()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, work: Callable[[sa.Connection], T], *, transaction: bool = False, retry: bool = False) -> T:
        """Run ``work`` on a pooled connection: in autocommit (one statement, one round trip) or in one
        transaction.

        Pooled connections are not pinged. After a database restart the first statement on an old
        connection fails as a disconnect; SQLAlchemy then invalidates the whole pool, so the next
        checkout connects afresh. Work that may safely run twice (reads, the purge) passes
        ``retry=True`` and is retried once at once; a write is not repeated (it may have committed
        before the connection broke) and its ``OperationalError`` becomes the calm 503."""
        engine = self._engine if transaction else self._autocommit
        for attempt in (1, 2):
            try:
                if transaction:
                    with engine.begin() as conn:
                        return work(conn)
                with engine.connect() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 2 or not retry or not _disconnected(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _one(self, statement: Any, params: dict[str, Any] | None = None, *, retry: bool = False) -> Any:
        """One statement in autocommit; returns the first row (or None), or the rowcount for DML."""
        if self._fast:
            params = params or {}
            fast = self._pg_statement(statement, list(params))
            if fast is not None:
                return self._pg(fast, params, retry=retry)

        def work(conn: sa.Connection) -> Any:
            result = conn.execute(statement, params or {})
            return result.first() if result.returns_rows else result.rowcount

        return self._run(work, retry=retry)

    # --- sessions -------------------------------------------------------------------------

    def _session_row(self, s: IdentificationSession) -> dict[str, Any]:
        return {
            "id": s.id,
            "flow": s.flow.value,
            "state": s.state.value,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
            "owner_id": s.owner_id,
            "owner_name": s.owner_name,
            "gemeente": s.gemeente,
            "min_level": int(s.min_level),
            "purpose": s.purpose,
            "expected_code": s.expected_code,
            "citizen_code": s.citizen_code,
            "code_match": s.code_match,
            "bsn_enc": self.cipher.encrypt(s.bsn.value.encode()) if s.bsn else None,
            "level": int(s.level) if s.level else None,
            "opened_at": s.opened_at,
            "authenticated_at": s.authenticated_at,
            "register": s.register,
            "zaak_identificatie": s.zaak_identificatie,
            "zaak_url": s.zaak_url,
            "registration_state": s.registration_state.value if s.registration_state else None,
            "registration_error": s.registration_error,
            "reason": s.reason.value if s.reason else None,
            "ended_at": s.ended_at,
            "client_id": s.client_id,
        }

    def _session(self, r: Any) -> IdentificationSession:
        return IdentificationSession(
            id=r.id,
            flow=Flow(r.flow),
            state=SessionState(r.state),
            created_at=r.created_at,
            expires_at=r.expires_at,
            owner_id=r.owner_id,
            owner_name=r.owner_name,
            gemeente=r.gemeente,
            min_level=AssuranceLevel(r.min_level),
            purpose=r.purpose,
            expected_code=r.expected_code,
            citizen_code=r.citizen_code,
            code_match=r.code_match,
            bsn=Bsn(self.cipher.decrypt(r.bsn_enc).decode()) if r.bsn_enc else None,
            level=AssuranceLevel(r.level) if r.level else None,
            opened_at=r.opened_at,
            authenticated_at=r.authenticated_at,
            register=r.register,
            zaak_identificatie=r.zaak_identificatie,
            zaak_url=r.zaak_url,
            registration_state=RegistrationState(r.registration_state) if r.registration_state else None,
            registration_error=r.registration_error,
            reason=SessionReason(r.reason) if r.reason else None,
            ended_at=r.ended_at,
            client_id=r.client_id,
        )

    def add(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        """The session, its 'created' event and ``audit`` (if any), atomically: on PostgreSQL in one statement."""
        row = self._session_row(session)
        event = event_values(None, session)
        if self._fast:
            params = {**row, **{"e_" + k: v for k, v in (event or {}).items()}}
            if event is not None:
                params.update(e_created_at=datetime.now(UTC), e_fanned_out=False)
            if audit is not None:
                params.update(_audit_params(audit, "a_"))
            self._pg(self._pg_change(new=True, event=event is not None, audit=audit is not None), params)
            return

        def work(conn: sa.Connection) -> None:
            conn.execute(_INSERT_SESSION, row)
            self._record_event(conn, None, session)
            if audit is not None:
                conn.execute(_INSERT_AUDIT, _audit_params(audit))

        self._run(work, transaction=True)

    def _record_event(self, conn: Any, old: IdentificationSession | None, new: IdentificationSession) -> None:
        values = event_values(old, new)
        if values is not None:
            conn.execute(_INSERT_EVENT, {**values, "created_at": datetime.now(UTC), "fanned_out": False})

    def get(self, session_id: str) -> IdentificationSession | None:
        row = self._one(_GET_SESSION, {"sid": session_id}, retry=True)
        return self._session(row) if row else None

    def update(self, session: IdentificationSession, *, audit: AuditEvent | None = None) -> None:
        """The new version of the session, with the outbox event its change means and ``audit`` (if any),
        atomically; the row lock orders concurrent changes of one session, so its events are in the order
        they happened. On PostgreSQL one statement: lock, read the row as it was, update, write the events."""
        row = self._session_row(session)
        row["sid"] = row.pop("id")
        if self._fast:
            row["e_created_at"] = datetime.now(UTC)
            if audit is not None:
                row.update(_audit_params(audit, "a_"))
            self._pg(self._pg_change(new=False, event=True, audit=audit is not None), row)
            return

        def work(conn: sa.Connection) -> None:
            before = conn.execute(_LOCK_SESSION, {"sid": session.id}).first()
            conn.execute(_UPDATE_SESSION, row)
            if before is not None:
                self._record_event(conn, self._session(before), session)
            if audit is not None:
                conn.execute(_INSERT_AUDIT, _audit_params(audit))

        self._run(work, transaction=True)

    def list_sessions(
        self,
        *,
        client_id: str | None = None,
        owner_id: str | None = None,
        state: str | None = None,
        flow: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[IdentificationSession]:
        """Newest first; ``before`` is a cursor: (created_at, id) of the last session of the previous page."""
        query = sessions.select().order_by(sessions.c.created_at.desc(), sessions.c.id.desc()).limit(limit)
        for column, value in (
            (sessions.c.client_id, client_id),
            (sessions.c.owner_id, owner_id),
            (sessions.c.state, state),
            (sessions.c.flow, flow),
        ):
            if value is not None:
                query = query.where(column == value)
        if created_after is not None:
            query = query.where(sessions.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(sessions.c.created_at < created_before)
        if before is not None:
            at, last_id = before
            query = query.where(
                sa.or_(sessions.c.created_at < at, sa.and_(sessions.c.created_at == at, sessions.c.id < last_id))
            )
        with self.engine.connect() as conn:
            return [self._session(r) for r in conn.execute(query)]

    # --- idempotency keys ----------------------------------------------------------------------

    def claim_idempotency_key(
        self, client_id: str, key: str, fingerprint: str, *, now: datetime, expires_at: datetime
    ) -> tuple[str, str | None] | None:
        """None: the caller owns the key now and creates the session. Otherwise (fingerprint, session id or
        None while the first request is still creating it) of the earlier request with this key.

        Each statement in autocommit (one round trip each): an expired claim goes, then the INSERT decides
        who holds the key (the primary key: of two concurrent requests one gets an IntegrityError)."""
        self._one(_DELETE_EXPIRED_KEY, {"client": client_id, "held": key, "now": now})
        try:
            self._one(
                _INSERT_KEY,
                {
                    "client_id": client_id,
                    "key": key,
                    "fingerprint": fingerprint,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
            return None
        except IntegrityError:
            pass
        row = self._one(_GET_KEY, {"client": client_id, "held": key}, retry=True)
        return (row.fingerprint, row.session_id) if row else ("", None)

    def settle_idempotency_key(self, client_id: str, key: str, session_id: str | None, expires_at: datetime) -> None:
        """Record the session made for a claimed key; None releases the claim (the create failed)."""
        if session_id is None:
            self._one(_DELETE_KEY, {"client": client_id, "held": key})
        else:
            self._one(
                _SETTLE_KEY, {"client": client_id, "held": key, "session_id": session_id, "expires_at": expires_at}
            )

    # --- events (outbox) -----------------------------------------------------------------------

    def _event(self, r: Any) -> SessionEvent:
        return SessionEvent(
            id=r.id,
            session_id=r.session_id,
            client_id=r.client_id,
            owner_id=r.owner_id,
            flow=r.flow,
            type=r.type,
            state=r.state,
            detail=r.detail,
            created_at=r.created_at,
        )

    def list_events(self, *, session_id: str | None = None) -> Sequence[SessionEvent]:
        query = events.select().order_by(events.c.id)
        if session_id:
            query = query.where(events.c.session_id == session_id)
        with self.engine.connect() as conn:
            return [self._event(r) for r in conn.execute(query)]

    def fan_out_events(self, channels: Callable[[SessionEvent], Sequence[str]], now: datetime, *, limit: int) -> int:
        """Turn the oldest ``limit`` new events into pending deliveries, one per channel; returns the events
        handled. One transaction per call: read the batch, mark it, insert its deliveries (a few round trips
        for the whole batch, whatever its size), so a backlog of many thousands drains in seconds.

        Per-session order: the batch is always the oldest new events, so every earlier event of a session
        in it is either fanned out already or in the same batch. Two workers never fan out at once: on
        PostgreSQL a transaction-level advisory lock (per schema) makes a second caller return 0 at once;
        on SQLite (one process) a caller whose batch another one marked first rolls back and returns 0."""

        def work(conn: sa.Connection) -> int:
            pg = conn.dialect.name == "postgresql"
            if pg and not conn.execute(_FAN_OUT_LOCK).scalar():
                return 0  # another worker is fanning out; the next round goes on
            rows = conn.execute(_NEW_EVENTS, {"limit": limit}).all()
            if not rows:
                return 0
            ids = [r.id for r in rows]
            marked = conn.execute(_PG_MARK_FANNED_OUT if pg else _MARK_FANNED_OUT, {"ids": ids}).rowcount
            if marked != len(ids):
                raise _FanOutRaced
            planned = [
                (r.id, r.session_id, channel, LATER if r.type in _SENT_LATER else 0)
                for r in rows
                for channel in channels(self._event(r))
            ]
            if planned and pg:
                event_ids, session_ids, names, priorities = (list(column) for column in zip(*planned, strict=True))
                conn.execute(
                    _PG_INSERT_DELIVERIES,
                    {
                        "events": event_ids,
                        "sessions": session_ids,
                        "channels": names,
                        "priorities": priorities,
                        "now": now,
                    },
                )
            elif planned:
                pending = {"state": "pending", "attempts": 0, "next_attempt_at": now}
                rows_out = [
                    {"event_id": e, "session_id": sid, "channel": c, "priority": prio, **pending}
                    for e, sid, c, prio in planned
                ]
                conn.execute(_INSERT_DELIVERY, rows_out)
            return len(rows)

        try:
            return self._run(work, transaction=True)
        except _FanOutRaced:
            return 0

    def claim_due_deliveries(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Delivery]:
        """Pending deliveries that are due and first in line for their session and channel (ordered per session)."""
        leased = self._lease(_LEASE_DELIVERIES, now, lease_seconds, limit)
        if not leased:
            return []
        found = self._run(
            lambda conn: conn.execute(_GET_EVENTS, {"eids": list({d.event_id for d in leased})}).all(), retry=True
        )
        by_id = {e.id: self._event(e) for e in found}
        return [Delivery(id=d.id, event=by_id[d.event_id], channel=d.channel, attempts=d.attempts) for d in leased]

    def finish_delivery(
        self, delivery_id: int, *, now: datetime, ok: bool, error: str | None = None, retry_at: datetime | None = None
    ) -> None:
        """Delivered (ok), or failed: retried at ``retry_at``, or given up when that is None."""
        state = "done" if ok else "pending" if retry_at is not None else "failed"
        self._one(
            _FINISH_DELIVERY,
            {
                "did": delivery_id,
                "state": state,
                "next_attempt_at": retry_at or now,
                "lease_until": None,
                "last_error": None if ok else (error or "")[:1000],
                "finished_at": None if state == "pending" else now,
            },
        )

    def defer_deliveries(self, delivery_ids: Sequence[int], *, until: datetime) -> None:
        """Leased deliveries handed back unsent: their lease ends, they are due again at ``until``, their attempts
        stay as they are."""
        if delivery_ids:
            self._run(lambda conn: conn.execute(_DEFER_DELIVERIES, {"dids": list(delivery_ids), "until": until}))

    def unsent_deliveries(self) -> Sequence[Any]:
        """Per channel and state (pending, failed = given up): how many, the earliest next attempt, the most
        attempts, an error. For the operator's ``zgw-identificatie events``."""
        return self._run(lambda conn: conn.execute(_UNSENT_BY_CHANNEL).all(), retry=True)

    def retry_given_up_deliveries(self, now: datetime, *, channel: str | None = None) -> int:
        """Given-up deliveries (of ``channel``, or all) pending again from now, with their attempts from zero;
        their number. They are kept ``EVENT_RETENTION`` after giving up, so that long an operator can do this."""
        statement = _RETRY_GIVEN_UP if channel is None else _RETRY_GIVEN_UP.where(event_deliveries.c.channel == channel)
        return int(self._run(lambda conn: conn.execute(statement, {"now": now}).rowcount))

    def delete(self, session_id: str) -> bool:
        def work(conn: sa.Connection) -> bool:
            conn.execute(_DELETE_SESSION_FLOWS, {"sid": session_id})
            return conn.execute(_DELETE_SESSION, {"sid": session_id}).rowcount > 0

        return self._run(work, transaction=True)

    def list_for_owner(self, owner_id: str, *, limit: int = 50) -> Sequence[IdentificationSession]:
        rows = self._run(
            lambda conn: conn.execute(_LIST_FOR_OWNER, {"owner": owner_id, "lim": limit}).all(), retry=True
        )
        return [self._session(r) for r in rows]

    # --- login flows and one-time ids ------------------------------------------------------

    def add_login_flow(self, flow: LoginFlow, *, audit: AuditEvent | None = None) -> None:
        """The flow and ``audit`` (if any), atomically: on PostgreSQL in one statement."""
        params = {
            "id": flow.id,
            "session_id": flow.session_id,
            "request_id": flow.request_id,
            "relay_state": flow.relay_state,
            "created_at": flow.created_at,
            "expires_at": flow.expires_at,
        }
        if audit is None:
            self._one(_INSERT_FLOW, params)
        elif self._fast:
            self._pg(self._pg_audited(_INSERT_FLOW, list(params)), {**params, **_audit_params(audit, "a_")})
        else:

            def work(conn: sa.Connection) -> None:
                conn.execute(_INSERT_FLOW, params)
                conn.execute(_INSERT_AUDIT, _audit_params(audit))

            self._run(work, transaction=True)

    def take_login_flow(self, flow_id: str, now: datetime) -> LoginFlow | None:
        """Single use (R12): one conditional UPDATE … RETURNING, so two takers cannot both win."""
        r = self._one(_TAKE_FLOW, {"fid": flow_id, "now": now})
        return None if r is None else _login_flow(r)

    def take_login_flow_with_session(
        self, flow_id: str, now: datetime
    ) -> tuple[LoginFlow, IdentificationSession | None] | None:
        """``take_login_flow`` and ``get`` of its session; on PostgreSQL one statement (the same conditional
        UPDATE … RETURNING, joined to the session)."""
        if not self._fast:
            flow = self.take_login_flow(flow_id, now)
            return None if flow is None else (flow, self.get(flow.session_id))
        r = self._one(_TAKE_FLOW_WITH_SESSION, {"fid": flow_id, "now": now})
        if r is None:
            return None
        return _login_flow(r, "flow_"), (self._session(r) if r.id is not None else None)

    def use_once(self, kind: str, value: str, expires_at: datetime) -> bool:
        try:
            self._one(_INSERT_ONE_TIME, {"kind": kind, "value": value[:200], "expires_at": expires_at})
        except IntegrityError:
            return False
        return True

    def use_once_each(self, ids: Sequence[tuple[str, str]], expires_at: datetime) -> str | None:
        """``use_once`` of each (kind, value) in turn until one was seen before: on PostgreSQL in one statement."""
        if not self._fast or not ids:
            for kind, value in ids:
                if not self.use_once(kind, value, expires_at):
                    return kind
            return None
        statement = self._pg_built(("use once each", len(ids)), lambda dialect: _pg_use_once_each(dialect, len(ids)))
        params: dict[str, Any] = {"expires_at": expires_at}
        for i, (kind, value) in enumerate(ids):
            params[f"k{i}"], params[f"v{i}"] = kind, value[:200]
        inserted = self._pg(statement, params)
        for (kind, _), n in zip(ids, inserted, strict=True):
            if not n:
                return kind
        return None

    # --- registrations ---------------------------------------------------------------------

    def _registration_row(self, reg: Registration) -> dict[str, Any]:
        keep_payload = reg.proof is not None and reg.state is not RegistrationState.DONE
        return {
            "id": reg.id,
            "session_id": reg.session_id,
            "payload_enc": self.cipher.encrypt(json.dumps(reg.proof.to_dict()).encode())
            if keep_payload and reg.proof
            else None,
            "existing_zaak": reg.existing_zaak,
            "state": reg.state.value,
            "created_at": reg.created_at,
            "updated_at": reg.updated_at,
            "next_attempt_at": reg.next_attempt_at,
            "attempts": reg.attempts,
            "zaak_url": reg.zaak_url,
            "zaak_identificatie": reg.zaak_identificatie,
            "rol_url": reg.rol_url,
            "status_url": reg.status_url,
            "document_url": reg.document_url,
            "link_url": reg.link_url,
            "uncertain_step": reg.uncertain_step,
            "error": reg.error,
            "invalid_params": json.dumps([list(p) for p in reg.invalid_params]),
            "user_id": reg.user_id,
            "user_representation": reg.user_representation,
            "request_id": reg.request_id,
        }

    def _registration(self, r: Any) -> Registration:
        proof = ProofData.from_dict(json.loads(self.cipher.decrypt(r.payload_enc))) if r.payload_enc else None
        return Registration(
            id=r.id,
            session_id=r.session_id,
            proof=proof,
            existing_zaak=r.existing_zaak,
            state=RegistrationState(r.state),
            created_at=r.created_at,
            updated_at=r.updated_at,
            next_attempt_at=r.next_attempt_at,
            attempts=r.attempts,
            zaak_url=r.zaak_url,
            zaak_identificatie=r.zaak_identificatie,
            rol_url=r.rol_url,
            status_url=r.status_url,
            document_url=r.document_url,
            link_url=r.link_url,
            uncertain_step=r.uncertain_step,
            error=r.error,
            invalid_params=tuple(tuple(p) for p in json.loads(r.invalid_params or "[]")),
            user_id=r.user_id,
            user_representation=r.user_representation,
            request_id=r.request_id,
        )

    def add_registration(self, registration: Registration) -> None:
        self._one(_INSERT_REGISTRATION, self._registration_row(registration))

    def get_registration(self, registration_id: str) -> Registration | None:
        row = self._one(_GET_REGISTRATION, {"rid": registration_id}, retry=True)
        return self._registration(row) if row else None

    def registration_for_session(self, session_id: str) -> Registration | None:
        row = self._one(_REGISTRATION_FOR_SESSION, {"sid": session_id}, retry=True)
        return self._registration(row) if row else None

    def update_registration(self, registration: Registration) -> None:
        row = self._registration_row(registration)
        row["rid"] = row.pop("id")
        if registration.finished or registration.next_attempt_at > registration.updated_at:
            row["lease_until"] = None  # done, or a retry is scheduled: the next due claim may take it
        self._one(_UPDATE_REGISTRATION, row)

    def claim_due_registrations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Registration]:
        return [self._registration(r) for r in self._lease(_LEASE_REGISTRATIONS, now, lease_seconds, limit)]

    def _lease(self, lease: _Lease, now: datetime, lease_seconds: int, limit: int) -> list[Any]:
        """Lease up to ``limit`` due rows for ``lease_seconds``, in one statement (``_lease_statement``; before,
        a read and then one conditional UPDATE per row), oldest first."""
        params = {"now": now, "lim": limit, "until": now + timedelta(seconds=lease_seconds)}
        rows = self._run(lambda conn: conn.execute(lease.claim, params).all())
        return sorted(rows, key=lambda row: tuple(getattr(row, name) for name in lease.order))

    def failed_registrations(self, *, limit: int = 100) -> Sequence[Registration]:
        query = (
            registrations.select()
            .where(registrations.c.state == RegistrationState.FAILED.value)
            .order_by(registrations.c.updated_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [self._registration(row) for row in conn.execute(query)]

    def reopen_registration(self, registration_id: str, now: datetime) -> Registration | None:
        with self.engine.begin() as conn:
            won = conn.execute(
                registrations.update()
                .where(
                    registrations.c.id == registration_id,
                    registrations.c.state == RegistrationState.FAILED.value,
                    registrations.c.payload_enc.is_not(None),
                )
                .values(
                    state=RegistrationState.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    updated_at=now,
                    error=None,
                    invalid_params="[]",
                    lease_until=None,
                )
            ).rowcount
            if won != 1:
                return None
            row = conn.execute(registrations.select().where(registrations.c.id == registration_id)).one()
        return self._registration(row)

    # --- §2.1 code confirmations -----------------------------------------------------------

    def _confirmation(self, r: Any) -> CodeConfirmation:
        return CodeConfirmation(
            id=r.id,
            session_id=r.session_id,
            matches=bool(r.matches),
            behandelaar_id=r.behandelaar_id,
            behandelaar_name=r.behandelaar_name,
            confirmed_at=r.confirmed_at,
            state=ConfirmationState(r.state),
            next_attempt_at=r.next_attempt_at,
            attempts=r.attempts,
            zaak_url=r.zaak_url,
            zaak_identificatie=r.zaak_identificatie,
            status_url=r.status_url,
            uncertain=bool(r.uncertain),
            error=r.error,
        )

    @staticmethod
    def _confirmation_row(c: CodeConfirmation) -> dict[str, Any]:
        return {
            "id": c.id,
            "session_id": c.session_id,
            "matches": c.matches,
            "behandelaar_id": c.behandelaar_id,
            "behandelaar_name": c.behandelaar_name,
            "confirmed_at": c.confirmed_at,
            "state": c.state.value,
            "next_attempt_at": c.next_attempt_at,
            "attempts": c.attempts,
            "zaak_url": c.zaak_url,
            "zaak_identificatie": c.zaak_identificatie,
            "status_url": c.status_url,
            "uncertain": c.uncertain,
            "error": c.error,
        }

    def add_confirmation(self, confirmation: CodeConfirmation) -> CodeConfirmation:
        try:
            self._one(_INSERT_CONFIRMATION, self._confirmation_row(confirmation))
            return confirmation
        except IntegrityError:  # a concurrent request confirmed first: that one counts
            found = self.confirmation_for_session(confirmation.session_id)
            if found is None:
                raise
            return found

    def confirmation_for_session(self, session_id: str) -> CodeConfirmation | None:
        row = self._one(_CONFIRMATION_FOR_SESSION, {"sid": session_id}, retry=True)
        return self._confirmation(row) if row else None

    def update_confirmation(self, confirmation: CodeConfirmation) -> None:
        row = self._confirmation_row(confirmation)
        row["cid"] = row.pop("id")
        row["lease_until"] = None
        self._one(_UPDATE_CONFIRMATION, row)

    def claim_due_confirmations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[CodeConfirmation]:
        return [self._confirmation(r) for r in self._lease(_LEASE_CONFIRMATIONS, now, lease_seconds, limit)]

    # --- audit -----------------------------------------------------------------------------

    def add_audit(self, event: AuditEvent) -> None:
        self._one(_INSERT_AUDIT, _audit_params(event))

    def list_audit(self, *, session_id: str | None = None, limit: int = 100) -> Sequence[AuditEvent]:
        query = audit_events.select().order_by(audit_events.c.id.desc()).limit(limit)
        if session_id:
            query = query.where(audit_events.c.session_id == session_id)
        rows = self._run(lambda conn: conn.execute(query).all(), retry=True)
        return [
            AuditEvent(
                at=r.at,
                actor=r.actor,
                flow=r.flow,
                session_id=r.session_id,
                event=r.event,
                outcome=r.outcome,
                bsn_hash=r.bsn_hash,
            )
            for r in rows
        ]

    # --- erasure ---------------------------------------------------------------------------

    def purge(self, now: datetime, *, batch: int = PURGE_BATCH) -> dict[str, int]:
        """Erase what expired, in batches of ``batch`` rows, each batch its own short transaction.

        A backlog of any size shrinks with every batch (a failure keeps what earlier batches erased),
        no statement carries more than ``batch`` parameters, and no lock is held for long."""
        counts = {
            "sessions": 0,
            "login_flows": 0,
            "one_time_ids": 0,
            "idempotency_keys": 0,
            "event_deliveries": 0,
            "events": 0,
            "registration_payloads": 0,
            "code_confirmations": 0,
        }
        stamp = datetime.now(UTC)

        def expired_sessions(conn: sa.Connection) -> int:
            if conn.dialect.name == "postgresql":
                gone = conn.execute(_PG_PURGE_SESSIONS, {"now": now, "batch": batch, "stamp": stamp}).one()
                counts["sessions"] += gone.sessions
                counts["login_flows"] += gone.login_flows
                return int(gone.read)  # a full batch read: there may be more
            rows = conn.execute(_EXPIRED_SESSIONS, {"now": now, "batch": batch}).all()
            ids = [r.id for r in rows]
            # The last event of a session nobody finished: it expired and is erased.
            expired_events = [
                {"session_id": r.id, "client_id": r.client_id, "owner_id": r.owner_id, "flow": r.flow,
                 "type": "session.expired", "state": r.state, "detail": "expired", "created_at": stamp,
                 "fanned_out": False}
                for r in rows
                if r.state in UNFINISHED_STATES
            ]  # fmt: skip
            if expired_events:
                conn.execute(_INSERT_EVENT, expired_events)
            if ids:
                counts["login_flows"] += conn.execute(_DELETE_FLOWS_OF, {"ids": ids}).rowcount
                counts["sessions"] += conn.execute(_DELETE_SESSIONS, {"ids": ids}).rowcount
            return len(ids)

        def batched(statement: Any, key: str, **params: Any) -> Callable[[sa.Connection], int]:
            def work(conn: sa.Connection) -> int:
                n = int(conn.execute(statement, {"now": now, "batch": batch, **params}).rowcount)
                counts[key] += n
                return n

            return work

        for work, transaction in (
            (expired_sessions, True),  # a transaction: on SQLite a SELECT and two DELETEs
            (batched(_DELETE_EXPIRED_FLOWS, "login_flows"), False),
            (batched(_DELETE_EXPIRED_ONE_TIME, "one_time_ids"), False),
            (batched(_DELETE_EXPIRED_IDEMPOTENCY, "idempotency_keys"), False),
            (batched(_DELETE_OLD_DELIVERIES, "event_deliveries", kept_after=now - EVENT_RETENTION), False),
            (batched(_DELETE_OLD_EVENTS, "events", kept_after=now - EVENT_RETENTION), False),
            (batched(_DROP_PAYLOADS, "registration_payloads", failed_before=now - FAILED_PAYLOAD_RETENTION), False),
            (
                batched(_DELETE_OLD_CONFIRMATIONS, "code_confirmations", confirmed_before=now - CONFIRMATION_RETENTION),
                False,
            ),
        ):
            while self._run(work, transaction=transaction, retry=True) >= batch:
                time.sleep(0)  # let the web threads of this process run between batches
        return counts

    def rotate_keys(self) -> int:
        """Re-encrypt every stored BSN and payload with the newest key; returns the number of values."""
        n = 0
        with self.engine.begin() as conn:
            for r in conn.execute(sa.select(sessions.c.id, sessions.c.bsn_enc).where(sessions.c.bsn_enc.is_not(None))):
                conn.execute(
                    sessions.update().where(sessions.c.id == r.id).values(bsn_enc=self.cipher.rotate(r.bsn_enc))
                )
                n += 1
            for r in conn.execute(
                sa.select(registrations.c.id, registrations.c.payload_enc).where(
                    registrations.c.payload_enc.is_not(None)
                )
            ):
                conn.execute(
                    registrations.update()
                    .where(registrations.c.id == r.id)
                    .values(payload_enc=self.cipher.rotate(r.payload_enc))
                )
                n += 1
        return n
