"""The SQL schema as SQLAlchemy Core tables: posts, their deliveries (one per post and channel), the attempts to
publish each delivery, and the daemon's bookkeeping.

This module imports SQLAlchemy's Core only. ``smm add`` and ``smm import`` work on these tables, so they never load
the ORM (a noticeable part of each command's time); :mod:`scheduler.models` maps its ORM classes onto the same tables.

All times are stored in UTC and come back as aware UTC datetimes (:class:`UTCDateTime`). The schema is created
and changed only by the Alembic migrations in ``migrations/``; a test checks that they match these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Status(StrEnum):
    """Where a delivery is in its life."""

    QUEUED = "queued"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    DELETED = "deleted"  # published, then taken down from the network (smm delete, an expiry)


ACTIVE = (Status.QUEUED, Status.PUBLISHING, Status.UNKNOWN)
"""Statuses shown by ``smm queue`` without ``--all``."""


class Outcome(StrEnum):
    """How an attempt ended; ``NULL`` while it is open."""

    PUBLISHED = "published"
    TRANSIENT = "transient"  # surely not published; the delivery retries
    PERMANENT = "permanent"  # refused; the delivery failed
    NOT_FOUND = "not_found"  # ambiguous, then reconciled: the network has no such post
    UNKNOWN = "unknown"  # ambiguous and could not be settled: a person decides
    ABANDONED = "abandoned"  # settled by a person or a cancel while open
    SCHEDULED = "scheduled"  # handed to the network ahead of time (native pre-scheduling)
    DELETED = "deleted"  # a deletion the network took (or found the post already gone)


class AttemptKind(StrEnum):
    """What an attempt asked the network to do."""

    PUBLISH = "publish"
    DELETE = "delete"  # take a published delivery down (smm delete, an expiry): docs/reliability.md


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC; naive values are refused, values come back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

_STATUSES = ", ".join(f"'{s.value}'" for s in Status)
_OUTCOMES = ", ".join(f"'{o.value}'" for o in Outcome)


def _time(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False, default=""),
    Column("link", String(2048)),
    Column("category", String(16), nullable=False, default="educational"),
    # Items {"sha256", "name", "mime", "size", "width", "height", "ext"} in the media store.
    Column("media", JSON, nullable=False, default=list),
    _time("created_at"),
    Column("campaign", String(128)),  # utm_campaign for the post's links (else the channel's)
    Column("utm_content", String(128)),
    # Per-network texts {"telegram": "..."} used instead of `text` on that network's channels.
    Column("variants", JSON),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("channel", String(64), nullable=False),
    Column("network", String(16), nullable=False),
    Column("status", String(16), nullable=False, default=Status.QUEUED.value),
    _time("due_at"),  # when the delivery is planned to go out
    # Placed by the cadence (`add` without a time); explicit times (--at, --now) are not.
    Column("slotted", Boolean, nullable=False, default=False),
    _time("next_attempt_at", nullable=True),  # while queued: when to try next (due_at, later after a backoff)
    Column("attempts", Integer, nullable=False, default=0),
    Column("key", String(40), nullable=False, unique=True),  # idempotency key sent to networks (VK's guid)
    _time("published_at", nullable=True),
    Column("remote_id", String(128)),
    Column("remote_url", String(1024)),
    # The ids of the post's further messages where the network made it of several (Telegram: an album's other
    # photos, a text sent after them), space-separated, deleted with it; NULL for a post of one (or published
    # before migration 0012, which then deletes its first message only).
    Column("more_remote_ids", Text),
    Column("last_error", Text),
    # The network's id of a post handed to it ahead of time (native pre-scheduling), until it is settled, and
    # the time the network was asked to publish it at.
    Column("native_id", String(128)),
    _time("native_at", nullable=True),
    # When the daemon is to take the post down from its network (smm delete: now; --expire-at: the expiry), while
    # it is not done; then when it was taken down (status deleted).
    _time("delete_at", nullable=True),
    _time("deleted_at", nullable=True),
    # Why the daemon moved this delivery without an error (e.g. deferred by a network's daily quota).
    Column("note", Text),
    # A delivery that filled an empty slot from the channel's evergreen pool: which use of the post on the channel
    # it is (1 for the first); NULL for every other delivery.
    Column("pool_use", Integer),
    Column("lease_owner", String(128)),
    _time("lease_until", nullable=True),
    _time("updated_at"),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    # "What is due next": the daemon's next-wake probe, due channels and late deliveries. (Not a partial index:
    # queries bind the status as a parameter, and SQLite then cannot use an index WHERE status='queued'.)
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    # "What is queued on this channel" and slot occupancy.
    Index("ix_deliveries_channel_status_due_at", "channel", "status", "due_at"),
    # A channel's claim and its "more due" probe: without it they range over every due row of every channel, so
    # a backlog made each claim slower.
    Index("ix_deliveries_channel_status_next_attempt_at", "channel", "status", "next_attempt_at"),
    # Listing by time (smm queue).
    Index("ix_deliveries_status_due_at", "status", "due_at"),
    # Deliveries handed to a network ahead of time (verified, cancelled or moved by the daemon). Partial on both
    # databases (migration 0004); see uq_attempts_open for why only SQLite's condition is here.
    Index("ix_deliveries_native", "status", sqlite_where=text("native_id IS NOT NULL")),
    # Expired leases of in-flight deliveries.
    Index("ix_deliveries_status_lease_until", "status", "lease_until"),
    # Published deliveries by time: the results collection and `smm report`.
    Index("ix_deliveries_status_published_at", "status", "published_at"),
    # Deletions due (the daemon's deletion job) and the next one.
    Index("ix_deliveries_status_delete_at", "status", "delete_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("owner", String(128), nullable=False),
    _time("started_at"),
    _time("finished_at", nullable=True),
    Column("outcome", String(16)),
    Column("error", Text),
    Column("remote_id", String(128)),
    Column("kind", String(8), nullable=False, default=AttemptKind.PUBLISH.value, server_default="publish"),
    CheckConstraint(f"outcome IS NULL OR outcome IN ({_OUTCOMES})", name="outcome"),
    # At most one open attempt per delivery: a partial unique index on both databases (the migrations create it).
    # The table names only SQLite's condition: naming PostgreSQL's makes SQLAlchemy import its PostgreSQL dialect
    # to check the argument, in every `smm add` and daemon on SQLite. The schema comes from the
    # migrations, never from this metadata (tests/integration/test_migrations.py checks both are partial).
    Index("uq_attempts_open", "delivery_id", unique=True, sqlite_where=text("outcome IS NULL")),
)

# A post in a channel's evergreen pool (`smm add --evergreen`): the daemon fills the channel's empty slots with it.
# Its uses are the post's deliveries on the channel with a `pool_use`.
pool = Table(
    "pool",
    metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(64), primary_key=True),
    _time("added_at"),
    _time("removed_at", nullable=True),  # taken out of the pool (`smm pool remove`)
    Index("ix_pool_channel_removed_at", "channel", "removed_at"),
)

# What the daemon learnt about a channel that a person must see (an expired token, missing rights).
channel_states = Table(
    "channel_states",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("needs_attention", Boolean, nullable=False, default=False),
    Column("reason", Text),
    _time("updated_at"),
)

# A running daemon, seen by the others through its heartbeat (PostgreSQL, several daemons).
instances = Table(
    "instances",
    metadata,
    Column("owner", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    _time("started_at"),
    _time("heartbeat_at"),
)

# Channels that share rate limits (one bot, one token, one Page) are published by one daemon at a time.
lease_groups = Table(
    "lease_groups",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("owner", String(128), nullable=False),
    _time("lease_until"),
)

# An entry of a feed that was seen once, and the post it became (remembered so it is queued only once).
feed_entries = Table(
    "feed_entries",
    metadata,
    # The feed's name in the config, else the URL or file it was read from (hashed when longer than 255).
    Column("feed", String(255), primary_key=True),
    Column("entry_key", String(64), primary_key=True),  # SHA-256 of the entry's id (ids are URLs or long strings)
    Column("entry_id", Text, nullable=False),
    Column("post_id", ForeignKey("posts.id", ondelete="SET NULL"), index=True),
    Column("title", Text),
    _time("seen_at"),
    Column("note", Text),  # why the entry was not queued (it could not be published on a channel), for the operator
)

# When a configured feed was last polled, its HTTP validators and its last error.
feed_states = Table(
    "feed_states",
    metadata,
    Column("feed", String(255), primary_key=True),
    _time("polled_at", nullable=True),
    Column("etag", String(1024)),
    Column("modified", String(255)),
    Column("last_error", Text),
)

# A published delivery's results as read back from its network at a planned age (1 h, 24 h, 7 days after
# publishing by default). A figure the network does not give is NULL, never a guess. A reading that found the post
# gone has ``gone`` set and no figures; a reading that failed has ``error`` and no figures (it is not retried before
# the next planned age). ``latest`` marks the newest successful reading of each delivery, the one reports use.
result_readings = Table(
    "result_readings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("age", Integer, nullable=False),  # the planned age of this reading, in seconds after publishing
    _time("read_at"),
    Column("views", Integer),
    Column("likes", Integer),
    Column("reposts", Integer),
    Column("comments", Integer),
    Column("gone", Boolean, nullable=False, default=False),
    Column("error", Text),
    Column("latest", Boolean, nullable=False, default=False),
    # One reading per planned age: two daemons (or a restart) never store it twice.
    Index("uq_result_readings_delivery_id_age", "delivery_id", "age", unique=True),
    # The report's "newest reading of each delivery".
    Index("ix_result_readings_latest_delivery_id", "latest", "delivery_id"),
)

# A channel's audience (followers, subscribers, members), read once a day; ``day`` is the UTC date of the reading.
audience_readings = Table(
    "audience_readings",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("members", Integer, nullable=False),
    _time("read_at"),
)

# One narrow row per published delivery, what ``smm report`` aggregates (its figures table, kept by
# :mod:`scheduler.store.figures`): the group keys, with the slot, weekday and hour in the channel's zone, the
# publication time (seconds since 1970, UTC), the latest reading's figures and the engagement per 1,000 followers.
# On SQLite the rows are stored in the order of the keys (WITHOUT ROWID), so that grouping by them reads the table
# once and sorts nothing. ``sample`` (0 to 2**20 - 1, spread evenly over delivery ids) picks a report's sample.
delivery_figures = Table(
    "delivery_figures",
    metadata,
    Column("channel", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("campaign", String(128), nullable=False),  # "" for none
    Column("slot", Integer, nullable=False),  # local weekday (0 = Monday) * 1440 + minute of due_at; -1: explicit
    Column("weekday", Integer, nullable=False),  # local weekday of the publication, 0 = Monday
    Column("hour", Integer, nullable=False),  # local hour of the publication
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("published", BigInteger, nullable=False),
    Column("measured", Integer, nullable=False),  # 1 when the delivery has a reading with figures
    Column("views", Integer),
    Column("likes", Integer),
    Column("reposts", Integer),
    Column("comments", Integer),
    Column("engagement", Float),
    Column("sample", Integer, nullable=False),
    PrimaryKeyConstraint("channel", "category", "campaign", "slot", "weekday", "hour", "delivery_id"),
    Index("uq_delivery_figures_delivery_id", "delivery_id", unique=True),
    sqlite_with_rowid=False,
)

# The channels whose figures are kept: the zone their local keys were computed in (a new zone fills them again),
# when they were last brought up to date (the next catch-up looks at publications from a margin before it), and
# while a fill runs in steps, the delivery id it goes on from (NULL once it is done; ``filled_until``: its start).
figure_channels = Table(
    "figure_channels",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("zone", String(64), nullable=False),
    _time("filled_until"),
    Column("next_id", BigInteger),
)

# A comment on a published delivery, as the daemon's comment watch read it (issue 20). Unique per delivery and
# network id: a comment read again (a restart, a second daemon) is ignored, so it is never reported twice.
comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("remote_id", String(128), nullable=False),  # the comment's id on the network
    Column("author", String(255), nullable=False, default=""),  # the author's display name
    Column("text", Text, nullable=False, default=""),
    _time("written_at"),
    Column("url", String(1024)),  # a link that opens the comment
    _time("seen_at"),  # when the daemon first read it
    _time("shown_at", nullable=True),  # when `smm comments` first listed it
    _time("digested_at", nullable=True),  # when a comment digest alert took it
    Column("digest", String(32)),  # which digest took it: each comment goes into at most one
    UniqueConstraint("delivery_id", "remote_id"),
    # Listing newest first (smm comments), and the digest's and the listing's "not yet" filters.
    Index("ix_comments_written_at", "written_at"),
    Index("ix_comments_digest", "digest"),
    Index("ix_comments_shown_at", "shown_at"),
)
