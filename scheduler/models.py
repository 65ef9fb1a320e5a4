"""The SQL schema: posts, their deliveries (one per post and channel) and the attempts to publish each delivery.

All times are stored in UTC and come back as aware UTC datetimes (:class:`UTCDateTime`). The schema is created
and changed only by the Alembic migrations in ``migrations/``; a test checks that they match these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


_STATUSES = ", ".join(f"'{s.value}'" for s in Status)
_OUTCOMES = ", ".join(f"'{o.value}'" for o in Outcome)


class Post(Base):
    """What to publish: the text, link and media, shared by the post's deliveries."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(2048))
    category: Mapped[str] = mapped_column(String(16), default="educational")
    media: Mapped[list[Any]] = mapped_column(default=list)
    """Items ``{"sha256", "name", "mime", "size", "width", "height", "ext"}`` in the media store."""
    created_at: Mapped[datetime]
    campaign: Mapped[str | None] = mapped_column(String(128))
    """``utm_campaign`` for the post's links (else the channel's)."""
    utm_content: Mapped[str | None] = mapped_column(String(128))
    variants: Mapped[dict[str, Any] | None]
    """Per-network texts ``{"telegram": "..."}`` used instead of ``text`` on that network's channels."""

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", order_by="Delivery.id", cascade="all, delete-orphan"
    )


class Delivery(Base):
    """A post on one channel: its own status, time, attempts and outcome."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        # "What is due next": the daemon's next-wake probe, due channels and late deliveries. (Not a partial
        # index: queries bind the status as a parameter, and SQLite then cannot use an index WHERE status='queued'.)
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # "What is queued on this channel" and slot occupancy.
        Index("ix_deliveries_channel_status_due_at", "channel", "status", "due_at"),
        # A channel's claim and its "more due" probe: without it they range over every due row of every channel,
        # so a backlog made each claim slower (B1 at 1M queued).
        Index("ix_deliveries_channel_status_next_attempt_at", "channel", "status", "next_attempt_at"),
        # Listing by time (smm queue).
        Index("ix_deliveries_status_due_at", "status", "due_at"),
        # Deliveries handed to a network ahead of time (verified, cancelled or moved by the daemon).
        # Partial on both databases (migration 0004); see uq_attempts_open for why only SQLite's condition is here.
        Index("ix_deliveries_native", "status", sqlite_where=text("native_id IS NOT NULL")),
        # Expired leases of in-flight deliveries.
        Index("ix_deliveries_status_lease_until", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=Status.QUEUED.value)
    due_at: Mapped[datetime]
    """When the delivery is planned to go out."""
    slotted: Mapped[bool] = mapped_column(Boolean, default=False)
    """Placed by the cadence (``add`` without a time); explicit times (``--at``, ``--now``) are not."""
    next_attempt_at: Mapped[datetime | None]
    """While queued: when to try next (``due_at`` at first, later after a backoff)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    """Stable idempotency key sent to networks that take one (VK's ``guid``)."""
    published_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(128))
    remote_url: Mapped[str | None] = mapped_column(String(1024))
    last_error: Mapped[str | None] = mapped_column(Text)
    native_id: Mapped[str | None] = mapped_column(String(128))
    """The network's id of the post handed to it ahead of time (native pre-scheduling), until it is settled."""
    native_at: Mapped[datetime | None]
    """The time the network was asked to publish it at."""
    note: Mapped[str | None] = mapped_column(Text)
    """Why the daemon moved this delivery without an error (e.g. deferred by a network's daily quota)."""
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    post: Mapped[Post] = relationship(back_populates="deliveries")
    attempt_rows: Mapped[list[Attempt]] = relationship(
        back_populates="delivery", order_by="Attempt.id", cascade="all, delete-orphan"
    )


class Attempt(Base):
    """One try at publishing a delivery, written and committed before the network is called."""

    __tablename__ = "attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR outcome IN ({_OUTCOMES})", name="outcome"),
        # At most one open attempt per delivery: a partial unique index on both databases (the migrations create
        # it). The model names only SQLite's condition: naming PostgreSQL's makes SQLAlchemy import its PostgreSQL
        # dialect to check the argument, 100 ms and 2 MiB in every `smm add` and daemon on SQLite. The schema comes
        # from the migrations, never from this metadata (tests/integration/test_migrations.py checks both are partial).
        Index("uq_attempts_open", "delivery_id", unique=True, sqlite_where=text("outcome IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(128))

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_rows")


class ChannelState(Base):
    """What the daemon learnt about a channel that a person must see (an expired token, missing rights)."""

    __tablename__ = "channel_states"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Instance(Base):
    """A running daemon, seen by the others through its heartbeat (PostgreSQL, several daemons)."""

    __tablename__ = "instances"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class LeaseGroup(Base):
    """Channels that share rate limits (one bot, one token, one Page) are published by one daemon at a time."""

    __tablename__ = "lease_groups"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime]


class FeedEntry(Base):
    """An entry of a feed that was seen once, and the post it became (remembered so it is queued only once)."""

    __tablename__ = "feed_entries"

    feed: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The feed's name in the config, else the URL or file it was read from (hashed when longer than 255)."""
    entry_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the entry's id (ids are URLs or long strings)."""
    entry_id: Mapped[str] = mapped_column(Text)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    """Why the entry was not queued (it could not be published on a channel), for the operator."""


class FeedState(Base):
    """When a configured feed was last polled, its HTTP validators and its last error."""

    __tablename__ = "feed_states"

    feed: Mapped[str] = mapped_column(String(255), primary_key=True)
    polled_at: Mapped[datetime | None]
    etag: Mapped[str | None] = mapped_column(String(1024))
    modified: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
