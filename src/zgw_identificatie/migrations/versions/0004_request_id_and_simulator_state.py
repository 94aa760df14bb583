"""Request id on registrations (log correlation); the DigiD simulator's shared state (demo only).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
    op.create_table(
        "demo_digid_state",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value_enc", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    op.create_index(op.f("ix_demo_digid_state_expires_at"), "demo_digid_state", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_demo_digid_state_expires_at"), table_name="demo_digid_state")
    op.drop_table("demo_digid_state")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("request_id")
