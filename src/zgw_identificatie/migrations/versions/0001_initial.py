"""Initial schema: sessions, login flows, one-time ids, registrations, audit events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("flow", sa.String(length=20), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("bsn_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(op.f("ix_audit_events_session_id"), "audit_events", ["session_id"], unique=False)
    op.create_table(
        "login_flows",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("relay_state", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("consumed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_login_flows_expires_at"), "login_flows", ["expires_at"], unique=False)
    op.create_index(op.f("ix_login_flows_session_id"), "login_flows", ["session_id"], unique=False)
    op.create_table(
        "one_time_ids",
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("kind", "value"),
    )
    op.create_index(op.f("ix_one_time_ids_expires_at"), "one_time_ids", ["expires_at"], unique=False)
    op.create_table(
        "registrations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=True),
        sa.Column("existing_zaak", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("zaak_url", sa.String(length=1000), nullable=True),
        sa.Column("zaak_identificatie", sa.String(length=40), nullable=True),
        sa.Column("rol_url", sa.String(length=1000), nullable=True),
        sa.Column("status_url", sa.String(length=1000), nullable=True),
        sa.Column("document_url", sa.String(length=1000), nullable=True),
        sa.Column("link_url", sa.String(length=1000), nullable=True),
        sa.Column("uncertain_step", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("invalid_params", sa.Text(), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_registrations_next_attempt_at"), "registrations", ["next_attempt_at"], unique=False)
    op.create_index(op.f("ix_registrations_session_id"), "registrations", ["session_id"], unique=False)
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("owner_name", sa.String(length=200), nullable=False),
        sa.Column("gemeente", sa.String(length=200), nullable=False),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("expected_code", sa.String(length=6), nullable=True),
        sa.Column("citizen_code", sa.String(length=6), nullable=True),
        sa.Column("code_match", sa.Boolean(), nullable=True),
        sa.Column("bsn_enc", sa.LargeBinary(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("opened_at", UTCDateTime, nullable=True),
        sa.Column("authenticated_at", UTCDateTime, nullable=True),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("zaak_identificatie", sa.String(length=40), nullable=True),
        sa.Column("zaak_url", sa.String(length=1000), nullable=True),
        sa.Column("registration_state", sa.String(length=20), nullable=True),
        sa.Column("registration_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_sessions_owner_id"), "sessions", ["owner_id"], unique=False)


def downgrade() -> None:
    for table in ("sessions", "registrations", "one_time_ids", "login_flows", "audit_events"):
        op.drop_table(table)
