"""Deleting published posts: the status ``deleted``, when a delivery is to be and was taken down, and attempts of
kind ``delete`` (docs/reliability.md#deleting-a-published-post).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_STATUSES = "'queued', 'publishing', 'published', 'failed', 'cancelled', 'unknown'"
NEW_STATUSES = OLD_STATUSES + ", 'deleted'"
OLD_OUTCOMES = "'published', 'transient', 'permanent', 'not_found', 'unknown', 'abandoned', 'scheduled'"
NEW_OUTCOMES = OLD_OUTCOMES + ", 'deleted'"


def _checks(statuses: str, outcomes: str) -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_deliveries_status"), f"status IN ({statuses})")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_attempts_outcome"), type_="check")
        batch_op.create_check_constraint(op.f("ck_attempts_outcome"), f"outcome IS NULL OR outcome IN ({outcomes})")


def upgrade() -> None:
    _checks(NEW_STATUSES, NEW_OUTCOMES)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delete_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_deliveries_status_delete_at", ["status", "delete_at"], unique=False)
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="publish", nullable=False))


def downgrade() -> None:
    # A deleted delivery was published; its deletion attempts go with the column that tells them apart.
    op.execute("UPDATE deliveries SET status = 'published' WHERE status = 'deleted'")
    op.execute("DELETE FROM attempts WHERE kind = 'delete'")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_delete_at")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("delete_at")
    _checks(OLD_STATUSES, OLD_OUTCOMES)
