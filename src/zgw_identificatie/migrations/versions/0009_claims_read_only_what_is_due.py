"""Claims that read only what is due: deliveries in claim order with session.expired last; unfinished registrations.

Deliveries of session.expired events go after everything else that is due.

A purge that clears a backlog writes one ``session.expired`` event per unfinished session; sent in the order
they became due, a million of them would hold back the notificaties and webhooks of the identifications
happening now for hours. ``priority`` (0, or 1 for session.expired) comes first in the order deliveries are
claimed in; the order within a session is kept (an expiry is always a session's last event).

The index holds only pending deliveries, in exactly the order they are claimed in (priority, next attempt,
event), instead of every delivery of the last day by next attempt. So a claim walks it and stops after its
limit: with 200,000 deliveries pending, a claim of 50 took 400 ms (PostgreSQL read and sorted every pending
delivery to find the first in line of each session) and takes 5 ms.

Registrations are kept for good (without their payload). The worker claims due ones every second through an
index of all registrations by next attempt, so each claim walked past every finished registration: 250–400 ms
with a million, every second, also when nothing was due. ``ix_registrations_due`` holds only the pending and
retrying ones.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("event_deliveries") as batch:
        batch.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"))
    op.create_index(
        "ix_event_deliveries_due",
        "event_deliveries",
        ["priority", "next_attempt_at", "event_id"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.drop_index("ix_event_deliveries_next_attempt_at", table_name="event_deliveries")
    op.create_index(
        "ix_registrations_due",
        "registrations",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending' OR state = 'retrying'"),
        sqlite_where=sa.text("state = 'pending' OR state = 'retrying'"),
    )
    op.drop_index("ix_registrations_next_attempt_at", table_name="registrations")
    op.execute(
        "UPDATE event_deliveries SET priority = 1 WHERE state = 'pending'"
        " AND event_id IN (SELECT id FROM events WHERE type = 'session.expired')"
    )


def downgrade() -> None:
    op.create_index("ix_registrations_next_attempt_at", "registrations", ["next_attempt_at"], unique=False)
    op.drop_index("ix_registrations_due", table_name="registrations")
    op.create_index("ix_event_deliveries_next_attempt_at", "event_deliveries", ["next_attempt_at"], unique=False)
    op.drop_index("ix_event_deliveries_due", table_name="event_deliveries")
    with op.batch_alter_table("event_deliveries") as batch:
        batch.drop_column("priority")
