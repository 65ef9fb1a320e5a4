"""An index for a channel's claim: ``(channel, status, next_attempt_at)``.

The claim's pick and its "more due" probe filter on all three; with ``(status, next_attempt_at)`` alone they read
every due row of every channel, so a backlog made every claim slower.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_channel_status_next_attempt_at", ["channel", "status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_channel_status_next_attempt_at")
