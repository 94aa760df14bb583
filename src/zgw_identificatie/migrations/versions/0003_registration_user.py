"""Registrations remember the behandelaar (ZGW JWT user_id / user_representation).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("user_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("user_representation", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("user_representation")
        batch.drop_column("user_id")
