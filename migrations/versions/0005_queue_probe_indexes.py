"""Composite indexes for the queue probes: the partial ones were unusable with a bound status parameter.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:07:25.427763
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_due"), sqlite_where=sa.text("status = 'queued'"))
        batch_op.drop_index(batch_op.f("ix_deliveries_lease"), sqlite_where=sa.text("status = 'publishing'"))
        batch_op.create_index("ix_deliveries_status_lease_until", ["status", "lease_until"], unique=False)
        batch_op.create_index("ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_next_attempt_at")
        batch_op.drop_index("ix_deliveries_status_lease_until")
        batch_op.create_index(
            batch_op.f("ix_deliveries_lease"),
            ["lease_until"],
            unique=False,
            sqlite_where=sa.text("status = 'publishing'"),
            postgresql_where=sa.text("status = 'publishing'"),
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_due"),
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
