"""The API contract: sessions remember their API client; idempotency keys; the event outbox and its deliveries.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=200), nullable=True))
        batch.create_index("ix_sessions_client_id", ["client_id"])
    # Sessions an API client started before this revision were owned by the client itself.
    op.execute("UPDATE sessions SET client_id = owner_id WHERE owner_id LIKE 'api:%'")
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=200), primary_key=True),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("flow", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_events_session_id", "events", ["session_id"])
    op.create_index("ix_events_fanned_out", "events", ["fanned_out"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=220), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_event_deliveries_event_id", "event_deliveries", ["event_id"])
    op.create_index("ix_event_deliveries_next_attempt_at", "event_deliveries", ["next_attempt_at"])
    op.create_index("ix_event_deliveries_order", "event_deliveries", ["session_id", "channel", "state"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("events")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_client_id")
        batch.drop_column("client_id")
