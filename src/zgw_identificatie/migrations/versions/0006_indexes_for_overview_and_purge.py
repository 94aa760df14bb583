"""Indexes for the staff overview (owner, newest first) and for the purge of held payloads.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # The staff overview reads an owner's newest sessions: (owner_id, created_at) serves the filter and
    # the order, so it reads 30 index entries instead of sorting all of the owner's rows.
    op.create_index("ix_sessions_owner_id_created_at", "sessions", ["owner_id", "created_at"], unique=False)
    op.drop_index("ix_sessions_owner_id", table_name="sessions")
    # The purge looks for payloads still held; registrations are kept (without payload) for good.
    op.create_index(
        "ix_registrations_held_payloads",
        "registrations",
        ["state", "updated_at"],
        unique=False,
        postgresql_where=sa.text("payload_enc IS NOT NULL"),
        sqlite_where=sa.text("payload_enc IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_registrations_held_payloads", table_name="registrations")
    op.create_index("ix_sessions_owner_id", "sessions", ["owner_id"], unique=False)
    op.drop_index("ix_sessions_owner_id_created_at", table_name="sessions")
