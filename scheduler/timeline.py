"""A channel's timeline in SQL: what slot placement and the content mix read, and the writes that queue a post.

Core statements over :mod:`scheduler.tables`, so that ``smm add`` and ``smm import`` never load the ORM. Each
function takes either a Core connection or an ORM session inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, cast

from sqlalchemy import Connection, CursorResult, Result, func, insert, select, text, update

from scheduler.db import connection_of
from scheduler.tables import Status, deliveries, posts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Executor: TypeAlias = Connection | Session

IN_SEQUENCE = (Status.QUEUED, Status.PUBLISHING, Status.PUBLISHED, Status.UNKNOWN)
"""Statuses of the deliveries that make a channel's sequence for the content mix (sent, or to be sent)."""

_TAKEN = (Status.QUEUED, Status.PUBLISHING, Status.PUBLISHED)
"""Statuses whose deliveries occupy their time on the channel."""

_d = deliveries.c


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(cast(CursorResult[Any], result).rowcount)


def new_key() -> str:
    return uuid.uuid4().hex


def lock_channel(conn: Executor, channel: str) -> None:
    """Serialise slot placement on ``channel`` until the transaction ends (SQLite's BEGIN IMMEDIATE already does)."""
    if connection_of(conn).dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": f"smm-channel:{channel}"})


@dataclass(frozen=True)
class ChannelTimes:
    """What slot placement needs to know about a channel's queue."""

    last_slotted: datetime | None
    occupied: frozenset[datetime]


def channel_times(conn: Executor, channel: str, now: datetime) -> ChannelTimes:
    """The last queue-placed delivery's time and the future times taken on ``channel`` after it."""
    last = conn.scalar(
        select(func.max(_d.due_at)).where(_d.channel == channel, _d.status == Status.QUEUED, _d.slotted.is_(True))
    )
    after = max(now, last) if last is not None else now
    return ChannelTimes(last, taken_times(conn, channel, after))


def taken_times(conn: Executor, channel: str, since: datetime) -> frozenset[datetime]:
    """Every time on ``channel`` from ``since`` on that a delivery holds (queue-placed or explicit)."""
    return frozenset(
        conn.scalars(select(_d.due_at).where(_d.channel == channel, _d.status.in_(_TAKEN), _d.due_at >= since))
    )


class Slotted(NamedTuple):
    """A queue-placed delivery: which, and when."""

    id: int
    due_at: datetime


def slotted_queue(conn: Executor, channel: str, since: datetime) -> list[Slotted]:
    """The channel's queue-placed deliveries due at or after ``since``, in order."""
    rows = conn.execute(
        select(_d.id, _d.due_at)
        .where(_d.channel == channel, _d.status == Status.QUEUED, _d.slotted.is_(True), _d.due_at >= since)
        .order_by(_d.due_at, _d.id)
    )
    return [Slotted(r.id, r.due_at) for r in rows]


def explicit_times(conn: Executor, channel: str, since: datetime) -> list[datetime]:
    """Times on ``channel`` after ``since`` taken by deliveries that keep their time (not queue-placed)."""
    return list(
        conn.scalars(
            select(_d.due_at).where(
                _d.channel == channel, _d.status.in_(_TAKEN), _d.slotted.is_(False), _d.due_at >= since
            )
        )
    )


@dataclass(frozen=True)
class MixEntry:
    """A delivery as the content mix sees it: when, which (for ties), and whether its post is commercial."""

    due_at: datetime
    id: int
    commercial: bool


def _mix_select(channel: str) -> Any:
    return (
        select(_d.due_at, _d.id, (posts.c.category == "commercial").label("commercial"))
        .join(posts, posts.c.id == _d.post_id)
        .where(_d.channel == channel, _d.status.in_(IN_SEQUENCE))
    )


def mix_before(conn: Executor, channel: str, at: datetime, count: int, *, inclusive: bool = False) -> list[MixEntry]:
    """The last ``count`` deliveries of ``channel`` before ``at`` (or at it, with ``inclusive``), in order."""
    if count <= 0:
        return []
    bound = _d.due_at <= at if inclusive else _d.due_at < at
    rows = conn.execute(_mix_select(channel).where(bound).order_by(_d.due_at.desc(), _d.id.desc()).limit(count)).all()
    return [MixEntry(r.due_at, r.id, bool(r.commercial)) for r in reversed(rows)]


def mix_from(
    conn: Executor,
    channel: str,
    at: datetime,
    count: int | None = None,
    *,
    inclusive: bool = True,
    until: datetime | None = None,
) -> list[MixEntry]:
    """The deliveries of ``channel`` from ``at`` (or after it, without ``inclusive``) on, at most ``count``."""
    query = _mix_select(channel).where(_d.due_at >= at if inclusive else _d.due_at > at)
    if until is not None:
        query = query.where(_d.due_at <= until)
    query = query.order_by(_d.due_at, _d.id)
    if count is not None:
        query = query.limit(count)
    return [MixEntry(r.due_at, r.id, bool(r.commercial)) for r in conn.execute(query)]


def move_delivery(conn: Executor, delivery_id: int, due_at: datetime, now: datetime, *, slotted: bool) -> bool:
    """Give a queued delivery a new time; False if it is no longer queued."""
    result = conn.execute(
        update(deliveries)
        .where(_d.id == delivery_id, _d.status == Status.QUEUED)
        # A post already handed to its network for the old time must be deleted there first (native_at cleared).
        .values(due_at=due_at, next_attempt_at=due_at, slotted=slotted, native_at=None, updated_at=now)
    )
    return bool(rowcount(result))


def insert_post(
    conn: Executor,
    *,
    text: str,
    link: str | None,
    category: str,
    media: list[dict[str, object]],
    now: datetime,
    plan: Iterable[tuple[str, str, datetime, bool]],
    campaign: str | None = None,
    utm_content: str | None = None,
    variants: dict[str, str] | None = None,
) -> int:
    """Insert a post and its deliveries ``(channel, network, due_at, slotted)``; returns the post's id."""
    result = cast(
        CursorResult[Any],
        conn.execute(
            insert(posts).values(
                text=text,
                link=link,
                category=category,
                media=media,
                created_at=now,
                campaign=campaign,
                utm_content=utm_content,
                variants=variants or None,
            )
        ),
    )
    key = result.inserted_primary_key
    assert key is not None
    post_id = int(key[0])
    rows = [
        {
            "post_id": post_id,
            "channel": channel,
            "network": network,
            "status": Status.QUEUED.value,
            "due_at": due_at,
            "next_attempt_at": due_at,
            "slotted": slotted,
            "attempts": 0,
            "key": new_key(),
            "updated_at": now,
        }
        for channel, network, due_at, slotted in plan
    ]
    if rows:
        conn.execute(insert(deliveries), rows)
    return post_id


def post_rows(conn: Executor, post_id: int) -> tuple[Any, list[Any]]:
    """A post's row and its deliveries' rows (in id order), read back as the database holds them."""
    post = conn.execute(select(posts).where(posts.c.id == post_id)).one()
    return post, list(conn.execute(select(deliveries).where(_d.post_id == post_id).order_by(_d.id)))
