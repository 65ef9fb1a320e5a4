"""Marketing: a post's campaign, utm_content and per-network text variants; feed entries seen and feed polls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:49:01.634752
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_states",
        sa.Column("feed", sa.String(length=255), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etag", sa.String(length=1024), nullable=True),
        sa.Column("modified", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("feed", name=op.f("pk_feed_states")),
    )
    op.create_table(
        "feed_entries",
        sa.Column("feed", sa.String(length=255), nullable=False),
        sa.Column("entry_key", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_feed_entries_post_id_posts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("feed", "entry_key", name=op.f("pk_feed_entries")),
    )
    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_entries_post_id"), ["post_id"], unique=False)

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("utm_content", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("variants", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("variants")
        batch_op.drop_column("utm_content")
        batch_op.drop_column("campaign")

    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_entries_post_id"))

    op.drop_table("feed_entries")
    op.drop_table("feed_states")
