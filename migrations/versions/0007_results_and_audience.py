"""Results read back from the networks: each published delivery's readings at planned ages, and each channel's
audience by day; an index on published deliveries by time for their collection and the report.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "result_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("views", sa.Integer(), nullable=True),
        sa.Column("likes", sa.Integer(), nullable=True),
        sa.Column("reposts", sa.Integer(), nullable=True),
        sa.Column("comments", sa.Integer(), nullable=True),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_result_readings_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_readings")),
    )
    with op.batch_alter_table("result_readings", schema=None) as batch_op:
        batch_op.create_index("uq_result_readings_delivery_id_age", ["delivery_id", "age"], unique=True)
        batch_op.create_index("ix_result_readings_latest_delivery_id", ["latest", "delivery_id"], unique=False)
    op.create_table(
        "audience_readings",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "day", name=op.f("pk_audience_readings")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_status_published_at", ["status", "published_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_published_at")
    op.drop_table("audience_readings")
    with op.batch_alter_table("result_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_result_readings_latest_delivery_id")
        batch_op.drop_index("uq_result_readings_delivery_id_age")
    op.drop_table("result_readings")
