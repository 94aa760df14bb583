"""SessionStore on SQLAlchemy Core: SQLite by default, PostgreSQL in production.

The schema is created and upgraded by Alembic (``migrations/``); ``tables`` below mirrors the
newest migration and a test checks they agree. BSNs and proof payloads are stored encrypted
(``DataCipher``) and deleted as soon as the flow no longer needs them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..domain.assurance import AssuranceLevel
from ..domain.audit import AuditEvent
from ..domain.bsn import Bsn
from ..domain.confirmation import CodeConfirmation, ConfirmationState
from ..domain.proof import ProofData
from ..domain.registration import Registration
from ..domain.sessions import Flow, IdentificationSession, RegistrationState, SessionReason, SessionState
from ..ports import LoginFlow
from .crypto import DataCipher

FAILED_PAYLOAD_RETENTION = timedelta(days=1)
CONFIRMATION_RETENTION = timedelta(days=1)  # finished §2.1 code confirmations, for the staff page meanwhile
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
    sa.Column("owner_id", sa.String(200), nullable=False, index=True),
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
    sa.Column("request_id", sa.String(64)),  # migration 0008
)

#: Demo only (migration 0008): the DigiD simulator's pending logins and issued artifacts, shared by every
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
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


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


class SqlSessionStore:
    def __init__(self, engine: Engine, cipher: DataCipher) -> None:
        self.engine = engine
        self.cipher = cipher

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
        with self.engine.begin() as conn:
            conn.execute(sessions.insert().values(**self._session_row(session)))

    def get(self, session_id: str) -> IdentificationSession | None:
        with self.engine.connect() as conn:
            row = conn.execute(sessions.select().where(sessions.c.id == session_id)).first()
        return self._session(row) if row else None

    def update(self, session: IdentificationSession) -> None:
        row = self._session_row(session)
        row.pop("id")
        with self.engine.begin() as conn:
            conn.execute(sessions.update().where(sessions.c.id == session.id).values(**row))

    def delete(self, session_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(login_flows.delete().where(login_flows.c.session_id == session_id))
            return conn.execute(sessions.delete().where(sessions.c.id == session_id)).rowcount > 0

    def list_for_owner(self, owner_id: str, *, limit: int = 50) -> Sequence[IdentificationSession]:
        query = (
            sessions.select().where(sessions.c.owner_id == owner_id).order_by(sessions.c.created_at.desc()).limit(limit)
        )
        with self.engine.connect() as conn:
            return [self._session(r) for r in conn.execute(query)]

    # --- login flows and one-time ids ------------------------------------------------------

    def add_login_flow(self, flow: LoginFlow) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                login_flows.insert().values(
                    id=flow.id,
                    session_id=flow.session_id,
                    request_id=flow.request_id,
                    relay_state=flow.relay_state,
                    created_at=flow.created_at,
                    expires_at=flow.expires_at,
                )
            )

    def take_login_flow(self, flow_id: str, now: datetime) -> LoginFlow | None:
        with self.engine.begin() as conn:
            taken = conn.execute(
                login_flows.update()
                .where(login_flows.c.id == flow_id, login_flows.c.consumed_at.is_(None), login_flows.c.expires_at > now)
                .values(consumed_at=now)
            ).rowcount
            if taken != 1:
                return None
            r = conn.execute(login_flows.select().where(login_flows.c.id == flow_id)).one()
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
            with self.engine.begin() as conn:
                conn.execute(one_time_ids.insert().values(kind=kind, value=value[:200], expires_at=expires_at))
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
        with self.engine.begin() as conn:
            conn.execute(registrations.insert().values(**self._registration_row(registration)))

    def get_registration(self, registration_id: str) -> Registration | None:
        with self.engine.connect() as conn:
            row = conn.execute(registrations.select().where(registrations.c.id == registration_id)).first()
        return self._registration(row) if row else None

    def registration_for_session(self, session_id: str) -> Registration | None:
        query = (
            registrations.select()
            .where(registrations.c.session_id == session_id)
            .order_by(registrations.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._registration(row) if row else None

    def update_registration(self, registration: Registration) -> None:
        row = self._registration_row(registration)
        row.pop("id")
        if registration.finished or registration.next_attempt_at > registration.updated_at:
            row["lease_until"] = None  # done, or a retry is scheduled: the next due claim may take it
        with self.engine.begin() as conn:
            conn.execute(registrations.update().where(registrations.c.id == registration.id).values(**row))

    def claim_due_registrations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[Registration]:
        due = sa.and_(
            registrations.c.state.in_([RegistrationState.PENDING.value, RegistrationState.RETRYING.value]),
            registrations.c.next_attempt_at <= now,
            sa.or_(registrations.c.lease_until.is_(None), registrations.c.lease_until < now),
        )
        claimed = []
        with self.engine.connect() as conn:
            ids = [
                r.id
                for r in conn.execute(
                    sa.select(registrations.c.id).where(due).order_by(registrations.c.next_attempt_at).limit(limit)
                )
            ]
        for reg_id in ids:
            with self.engine.begin() as conn:
                won = conn.execute(
                    registrations.update()
                    .where(registrations.c.id == reg_id, due)
                    .values(lease_until=now + timedelta(seconds=lease_seconds))
                ).rowcount
                if won == 1:
                    row = conn.execute(registrations.select().where(registrations.c.id == reg_id)).one()
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
            with self.engine.begin() as conn:
                conn.execute(code_confirmations.insert().values(**self._confirmation_row(confirmation)))
            return confirmation
        except IntegrityError:  # a concurrent request confirmed first: that one counts
            found = self.confirmation_for_session(confirmation.session_id)
            if found is None:
                raise
            return found

    def confirmation_for_session(self, session_id: str) -> CodeConfirmation | None:
        with self.engine.connect() as conn:
            row = conn.execute(code_confirmations.select().where(code_confirmations.c.session_id == session_id)).first()
        return self._confirmation(row) if row else None

    def update_confirmation(self, confirmation: CodeConfirmation) -> None:
        row = self._confirmation_row(confirmation)
        row.pop("id")
        row["lease_until"] = None
        with self.engine.begin() as conn:
            conn.execute(code_confirmations.update().where(code_confirmations.c.id == confirmation.id).values(**row))

    def claim_due_confirmations(self, now: datetime, *, lease_seconds: int, limit: int) -> Sequence[CodeConfirmation]:
        table = code_confirmations
        due = sa.and_(
            table.c.state == ConfirmationState.PENDING.value,
            table.c.next_attempt_at <= now,
            sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now),
        )
        claimed = []
        with self.engine.connect() as conn:
            ids = [
                r.id
                for r in conn.execute(sa.select(table.c.id).where(due).order_by(table.c.next_attempt_at).limit(limit))
            ]
        for confirmation_id in ids:
            with self.engine.begin() as conn:
                won = conn.execute(
                    table.update()
                    .where(table.c.id == confirmation_id, due)
                    .values(lease_until=now + timedelta(seconds=lease_seconds))
                ).rowcount
                if won == 1:
                    claimed.append(
                        self._confirmation(conn.execute(table.select().where(table.c.id == confirmation_id)).one())
                    )
        return claimed

    # --- audit -----------------------------------------------------------------------------

    def add_audit(self, event: AuditEvent) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit_events.insert().values(
                    at=event.at,
                    actor=event.actor,
                    flow=event.flow,
                    session_id=event.session_id,
                    event=event.event,
                    outcome=event.outcome,
                    bsn_hash=event.bsn_hash,
                )
            )

    def list_audit(self, *, session_id: str | None = None, limit: int = 100) -> Sequence[AuditEvent]:
        query = audit_events.select().order_by(audit_events.c.id.desc()).limit(limit)
        if session_id:
            query = query.where(audit_events.c.session_id == session_id)
        with self.engine.connect() as conn:
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
                for r in conn.execute(query)
            ]

    # --- erasure ---------------------------------------------------------------------------

    def purge(self, now: datetime) -> dict[str, int]:
        with self.engine.begin() as conn:
            expired = [r.id for r in conn.execute(sa.select(sessions.c.id).where(sessions.c.expires_at <= now))]
            counts = {
                "sessions": conn.execute(sessions.delete().where(sessions.c.expires_at <= now)).rowcount,
                "login_flows": conn.execute(
                    login_flows.delete().where(
                        sa.or_(login_flows.c.expires_at <= now, login_flows.c.session_id.in_(expired))
                    )
                ).rowcount,
                "one_time_ids": conn.execute(one_time_ids.delete().where(one_time_ids.c.expires_at <= now)).rowcount,
                "registration_payloads": conn.execute(
                    registrations.update()
                    .where(
                        registrations.c.payload_enc.is_not(None),
                        sa.or_(
                            registrations.c.state == RegistrationState.DONE.value,
                            sa.and_(
                                registrations.c.state == RegistrationState.FAILED.value,
                                registrations.c.updated_at <= now - FAILED_PAYLOAD_RETENTION,
                            ),
                        ),
                    )
                    .values(payload_enc=None)
                ).rowcount,
                "code_confirmations": conn.execute(  # on the zaak (or given up): the zaak and audit keep it
                    code_confirmations.delete().where(
                        code_confirmations.c.state != ConfirmationState.PENDING.value,
                        code_confirmations.c.confirmed_at <= now - CONFIRMATION_RETENTION,
                    )
                ).rowcount,
            }
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
