"""Native pre-scheduling: the network's id of a post handed to it ahead of time, and for when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:37:04.541301
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


OLD_OUTCOMES = "'published', 'transient', 'permanent', 'not_found', 'unknown', 'abandoned'"
NEW_OUTCOMES = OLD_OUTCOMES + ", 'scheduled'"


def _outcomes(allowed: str) -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_attempts_outcome"), type_="check")
        batch_op.create_check_constraint(op.f("ck_attempts_outcome"), f"outcome IS NULL OR outcome IN ({allowed})")


def upgrade() -> None:
    _outcomes(NEW_OUTCOMES)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("native_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("native_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_deliveries_native",
            ["status"],
            unique=False,
            sqlite_where=sa.text("native_id IS NOT NULL"),
            postgresql_where=sa.text("native_id IS NOT NULL"),
        )


def downgrade() -> None:
    op.execute("UPDATE attempts SET outcome = 'published' WHERE outcome = 'scheduled'")
    _outcomes(OLD_OUTCOMES)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_native",
            sqlite_where=sa.text("native_id IS NOT NULL"),
            postgresql_where=sa.text("native_id IS NOT NULL"),
        )
        batch_op.drop_column("native_at")
        batch_op.drop_column("native_id")
