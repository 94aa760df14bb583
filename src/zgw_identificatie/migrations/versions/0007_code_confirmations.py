"""§2.1 code confirmations: the behandelaar's "Code klopt" / "Code klopt niet", until it is on the zaak.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "code_confirmations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("matches", sa.Boolean(), nullable=False),
        sa.Column("behandelaar_id", sa.String(length=200), nullable=False),
        sa.Column("behandelaar_name", sa.String(length=200), nullable=False),
        sa.Column("confirmed_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("zaak_url", sa.String(length=1000), nullable=True),
        sa.Column("zaak_identificatie", sa.String(length=40), nullable=True),
        sa.Column("status_url", sa.String(length=1000), nullable=True),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_code_confirmations_session_id"), "code_confirmations", ["session_id"], unique=True)
    op.create_index(
        op.f("ix_code_confirmations_next_attempt_at"), "code_confirmations", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_code_confirmations_next_attempt_at"), table_name="code_confirmations")
    op.drop_index(op.f("ix_code_confirmations_session_id"), table_name="code_confirmations")
    op.drop_table("code_confirmations")
