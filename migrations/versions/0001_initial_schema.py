"""Initial schema: posts, deliveries (one per post and channel), attempts, channel states.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:55:48.728378
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_states",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_states")),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2048), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slotted", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=128), nullable=True),
        sa.Column("remote_url", sa.String(length=1024), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'publishing', 'published', 'failed', 'cancelled', 'unknown')",
            name=op.f("ck_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_deliveries_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("key", name=op.f("uq_deliveries_key")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_channel_status_due_at", ["channel", "status", "due_at"], unique=False)
        batch_op.create_index(
            "ix_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(
            "ix_deliveries_lease",
            ["lease_until"],
            unique=False,
            sqlite_where=sa.text("status = 'publishing'"),
            postgresql_where=sa.text("status = 'publishing'"),
        )
        batch_op.create_index(batch_op.f("ix_deliveries_post_id"), ["post_id"], unique=False)
        batch_op.create_index("ix_deliveries_status_due_at", ["status", "due_at"], unique=False)

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('published', 'transient', 'permanent', 'not_found', 'unknown', 'abandoned')",
            name=op.f("ck_attempts_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_attempts_delivery_id_deliveries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempts_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(
            "uq_attempts_open",
            ["delivery_id"],
            unique=True,
            sqlite_where=sa.text("outcome IS NULL"),
            postgresql_where=sa.text("outcome IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_attempts_open", sqlite_where=sa.text("outcome IS NULL"), postgresql_where=sa.text("outcome IS NULL")
        )
        batch_op.drop_index(batch_op.f("ix_attempts_delivery_id"))

    op.drop_table("attempts")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_due_at")
        batch_op.drop_index(batch_op.f("ix_deliveries_post_id"))
        batch_op.drop_index(
            "ix_deliveries_lease",
            sqlite_where=sa.text("status = 'publishing'"),
            postgresql_where=sa.text("status = 'publishing'"),
        )
        batch_op.drop_index(
            "ix_deliveries_due",
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.drop_index("ix_deliveries_channel_status_due_at")

    op.drop_table("deliveries")
    op.drop_table("posts")
    op.drop_table("channel_states")
