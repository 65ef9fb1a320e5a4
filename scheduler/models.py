"""The ORM classes, mapped onto the Core tables of :mod:`scheduler.tables` (which define the schema).

The daemon and the commands that read or change posts work through these classes; ``smm add`` and ``smm import``
use the tables directly and never load the ORM.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from scheduler import tables
from scheduler.tables import ACTIVE, NAMING_CONVENTION, AttemptKind, Outcome, Status, UTCDateTime

__all__ = [
    "ACTIVE",
    "NAMING_CONVENTION",
    "Attempt",
    "AttemptKind",
    "Base",
    "ChannelState",
    "Delivery",
    "FeedEntry",
    "FeedState",
    "Instance",
    "LeaseGroup",
    "Outcome",
    "Post",
    "Status",
    "UTCDateTime",
]


class Base(DeclarativeBase):
    metadata = tables.metadata


class Post(Base):
    """What to publish: the text, link and media, shared by the post's deliveries."""

    __table__ = tables.posts

    id: Mapped[int]
    text: Mapped[str]
    link: Mapped[str | None]
    category: Mapped[str]
    media: Mapped[list[dict[str, object]]]
    created_at: Mapped[datetime]
    campaign: Mapped[str | None]
    utm_content: Mapped[str | None]
    variants: Mapped[dict[str, str] | None]

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", order_by="Delivery.id", cascade="all, delete-orphan"
    )


class Delivery(Base):
    """A post on one channel: its own status, time, attempts and outcome."""

    __table__ = tables.deliveries

    id: Mapped[int]
    post_id: Mapped[int]
    channel: Mapped[str]
    network: Mapped[str]
    status: Mapped[str]
    due_at: Mapped[datetime]
    slotted: Mapped[bool]
    next_attempt_at: Mapped[datetime | None]
    attempts: Mapped[int]
    key: Mapped[str]
    published_at: Mapped[datetime | None]
    remote_id: Mapped[str | None]
    remote_url: Mapped[str | None]
    more_remote_ids: Mapped[str | None]
    last_error: Mapped[str | None]
    native_id: Mapped[str | None]
    native_at: Mapped[datetime | None]
    delete_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    note: Mapped[str | None]
    pool_use: Mapped[int | None]
    lease_owner: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    post: Mapped[Post] = relationship(back_populates="deliveries")
    attempt_rows: Mapped[list[Attempt]] = relationship(
        back_populates="delivery", order_by="Attempt.id", cascade="all, delete-orphan"
    )


class Attempt(Base):
    """One try at publishing (or deleting) a delivery, written and committed before the network is called."""

    __table__ = tables.attempts

    id: Mapped[int]
    delivery_id: Mapped[int]
    number: Mapped[int]
    owner: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None]
    error: Mapped[str | None]
    remote_id: Mapped[str | None]
    kind: Mapped[str]

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_rows")


class ChannelState(Base):
    """What the daemon learnt about a channel that a person must see (an expired token, missing rights)."""

    __table__ = tables.channel_states

    channel: Mapped[str]
    needs_attention: Mapped[bool]
    reason: Mapped[str | None]
    updated_at: Mapped[datetime]


class Instance(Base):
    """A running daemon, seen by the others through its heartbeat (PostgreSQL, several daemons)."""

    __table__ = tables.instances

    owner: Mapped[str]
    host: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class LeaseGroup(Base):
    """Channels that share rate limits (one bot, one token, one Page) are published by one daemon at a time."""

    __table__ = tables.lease_groups

    name: Mapped[str]
    owner: Mapped[str]
    lease_until: Mapped[datetime]


class FeedEntry(Base):
    """An entry of a feed that was seen once, and the post it became (remembered so it is queued only once)."""

    __table__ = tables.feed_entries

    feed: Mapped[str]
    entry_key: Mapped[str]
    entry_id: Mapped[str]
    post_id: Mapped[int | None]
    title: Mapped[str | None]
    seen_at: Mapped[datetime]
    note: Mapped[str | None]


class FeedState(Base):
    """When a configured feed was last polled, its HTTP validators and its last error."""

    __table__ = tables.feed_states

    feed: Mapped[str]
    polled_at: Mapped[datetime | None]
    etag: Mapped[str | None]
    modified: Mapped[str | None]
    last_error: Mapped[str | None]
