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
* ``purge`` works in bounded batches, each its own short transaction, so any backlog shrinks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..domain.assurance import AssuranceLevel
from ..domain.audit import AuditEvent
from ..domain.bsn import Bsn
from ..domain.proof import ProofData
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionReason, SessionState
from ..ports import LoginFlow
from .crypto import DataCipher

FAILED_PAYLOAD_RETENTION = timedelta(days=1)
PURGE_BATCH = 5000  # rows per purge transaction: far below any driver's parameter limit, short locks
T = TypeVar("T")
MIGRATION_LOCK_KEY = 0x7A67_7769_6400  # "zgwid": one advisory lock for schema migrations


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
    sa.Index("ix_sessions_owner_id_created_at", "owner_id", "created_at"),  # the staff overview
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
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False, index=True),
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
    # The purge finds the payloads still held among all registrations ever made.
    sa.Index(
        "ix_registrations_held_payloads",
        "state",
        "updated_at",
        postgresql_where=sa.text("payload_enc IS NOT NULL"),
        sqlite_where=sa.text("payload_enc IS NOT NULL"),
    ),
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
    """Bring the schema to the newest Alembic revision."""
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


# --- statements, built once -------------------------------------------------------------------

_GET_SESSION = sessions.select().where(sessions.c.id == sa.bindparam("sid"))
_INSERT_SESSION = sessions.insert()
_UPDATE_SESSION = sessions.update().where(sessions.c.id == sa.bindparam("sid"))
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
    registrations.c.state.in_([RegistrationState.PENDING.value, RegistrationState.RETRYING.value]),
    registrations.c.next_attempt_at <= sa.bindparam("now", type_=UTCDateTime()),
    sa.or_(
        registrations.c.lease_until.is_(None),
        registrations.c.lease_until < sa.bindparam("now", type_=UTCDateTime()),
    ),
)
_DUE_IDS = (
    sa.select(registrations.c.id)
    .where(_DUE)
    .order_by(registrations.c.next_attempt_at)
    .limit(sa.bindparam("lim", type_=sa.Integer))
)
_CLAIM = (
    registrations.update()
    .where(registrations.c.id == sa.bindparam("rid"), _DUE)
    .values(lease_until=sa.bindparam("until", type_=UTCDateTime()))
    .returning(*registrations.c)
)
_INSERT_AUDIT = audit_events.insert()

# Purge: one bounded batch per statement; the caller loops until a batch comes back short.
_BEFORE = sa.bindparam("now", type_=UTCDateTime())
_BATCH = sa.bindparam("batch", type_=sa.Integer)
_EXPIRED_SESSION_IDS = sa.select(sessions.c.id).where(sessions.c.expires_at <= _BEFORE).limit(_BATCH)
_DELETE_FLOWS_OF = login_flows.delete().where(login_flows.c.session_id.in_(sa.bindparam("ids", expanding=True)))
_DELETE_SESSIONS = sessions.delete().where(sessions.c.id.in_(sa.bindparam("ids", expanding=True)))
# On PostgreSQL one statement per batch: the batch's ids stay in the server (the CTE is computed
# once), no id travels to Python and back. Two DELETEs: the login flows through their session_id
# index, the sessions by the row addresses just read (a TID scan, no index lookups) — not one DELETE
# with ``expires_at <= … OR session_id IN (…)``, which can use no index at all. A row changed between
# the read and the delete is skipped (its address changed) and goes in the next batch or run.
_PG_PURGE_SESSIONS = sa.text(
    "WITH doomed AS MATERIALIZED (SELECT ctid AS tid, id FROM sessions WHERE expires_at <= :now LIMIT :batch),"
    " flows AS (DELETE FROM login_flows WHERE session_id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING 1),"
    " gone AS (DELETE FROM sessions WHERE ctid = ANY (ARRAY(SELECT tid FROM doomed)) RETURNING 1)"
    " SELECT (SELECT count(*) FROM doomed) AS read, (SELECT count(*) FROM gone) AS sessions,"
    " (SELECT count(*) FROM flows) AS login_flows"
).bindparams(sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("batch", type_=sa.Integer))
_DELETE_EXPIRED_FLOWS = login_flows.delete().where(
    login_flows.c.id.in_(sa.select(login_flows.c.id).where(login_flows.c.expires_at <= _BEFORE).limit(_BATCH))
)
_DELETE_EXPIRED_ONE_TIME = one_time_ids.delete().where(
    sa.tuple_(one_time_ids.c.kind, one_time_ids.c.value).in_(
        sa.select(one_time_ids.c.kind, one_time_ids.c.value).where(one_time_ids.c.expires_at <= _BEFORE).limit(_BATCH)
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


def _disconnected(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated)


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
        )

    def add(self, session: IdentificationSession) -> None:
        self._one(_INSERT_SESSION, self._session_row(session))

    def get(self, session_id: str) -> IdentificationSession | None:
        row = self._one(_GET_SESSION, {"sid": session_id}, retry=True)
        return self._session(row) if row else None

    def update(self, session: IdentificationSession) -> None:
        row = self._session_row(session)
        row["sid"] = row.pop("id")
        self._one(_UPDATE_SESSION, row)

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

    def add_login_flow(self, flow: LoginFlow) -> None:
        self._one(
            _INSERT_FLOW,
            {
                "id": flow.id,
                "session_id": flow.session_id,
                "request_id": flow.request_id,
                "relay_state": flow.relay_state,
                "created_at": flow.created_at,
                "expires_at": flow.expires_at,
            },
        )

    def take_login_flow(self, flow_id: str, now: datetime) -> LoginFlow | None:
        """Single use (R12): one conditional UPDATE … RETURNING, so two takers cannot both win."""
        r = self._one(_TAKE_FLOW, {"fid": flow_id, "now": now})
        if r is None:
            return None
        return LoginFlow(
            id=r.id,
            session_id=r.session_id,
            request_id=r.request_id,
            relay_state=r.relay_state,
            created_at=r.created_at,
            expires_at=r.expires_at,
        )

    def use_once(self, kind: str, value: str, expires_at: datetime) -> bool:
        try:
            self._one(_INSERT_ONE_TIME, {"kind": kind, "value": value[:200], "expires_at": expires_at})
        except IntegrityError:
            return False
        return True

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
        ids = self._run(lambda conn: conn.execute(_DUE_IDS, {"now": now, "lim": limit}).scalars().all(), retry=True)
        until = now + timedelta(seconds=lease_seconds)
        claimed = []
        for reg_id in ids:
            # A conditional UPDATE … RETURNING: of two workers claiming the same row, one gets it.
            row = self._one(_CLAIM, {"rid": reg_id, "now": now, "until": until})
            if row is not None:
                claimed.append(self._registration(row))
        return claimed

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

    # --- audit -----------------------------------------------------------------------------

    def add_audit(self, event: AuditEvent) -> None:
        self._one(
            _INSERT_AUDIT,
            {
                "at": event.at,
                "actor": event.actor,
                "flow": event.flow,
                "session_id": event.session_id,
                "event": event.event,
                "outcome": event.outcome,
                "bsn_hash": event.bsn_hash,
            },
        )

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
        counts = {"sessions": 0, "login_flows": 0, "one_time_ids": 0, "registration_payloads": 0}

        def expired_sessions(conn: sa.Connection) -> int:
            if conn.dialect.name == "postgresql":
                gone = conn.execute(_PG_PURGE_SESSIONS, {"now": now, "batch": batch}).one()
                counts["sessions"] += gone.sessions
                counts["login_flows"] += gone.login_flows
                return int(gone.read)  # a full batch read: there may be more
            ids = conn.execute(_EXPIRED_SESSION_IDS, {"now": now, "batch": batch}).scalars().all()
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
            (batched(_DROP_PAYLOADS, "registration_payloads", failed_before=now - FAILED_PAYLOAD_RETENTION), False),
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
