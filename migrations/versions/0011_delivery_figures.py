"""The report's figures table: one narrow row per published delivery, and the channels whose figures are kept.

The table starts empty: its local keys need each channel's time zone, which only the configuration knows, so the
daemon's results collection and ``smm report`` fill it (``scheduler.store.figures.catch_up``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_figures",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("published", sa.BigInteger(), nullable=False),
        sa.Column("measured", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=True),
        sa.Column("likes", sa.Integer(), nullable=True),
        sa.Column("reposts", sa.Integer(), nullable=True),
        sa.Column("comments", sa.Integer(), nullable=True),
        sa.Column("engagement", sa.Float(), nullable=True),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_figures_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "channel",
            "category",
            "campaign",
            "slot",
            "weekday",
            "hour",
            "delivery_id",
            name=op.f("pk_delivery_figures"),
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("delivery_figures", schema=None) as batch_op:
        batch_op.create_index("uq_delivery_figures_delivery_id", ["delivery_id"], unique=True)
    op.create_table(
        "figure_channels",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("filled_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_figure_channels")),
    )


def downgrade() -> None:
    op.drop_table("figure_channels")
    with op.batch_alter_table("delivery_figures", schema=None) as batch_op:
        batch_op.drop_index("uq_delivery_figures_delivery_id")
    op.drop_table("delivery_figures")
