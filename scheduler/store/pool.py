"""The rows of the evergreen pool: which posts are in a channel's pool, and their uses there (their deliveries on
the channel that are sent or to be sent)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.tables import Status, deliveries, pool, posts
from scheduler.timeline import IN_SEQUENCE

_d = deliveries.c
_p = pool.c


@dataclass(frozen=True)
class PoolPost:
    """A post in a channel's pool: its category and text, when it was used there (in order: sent or to be sent),
    the slots of its fills there that a person cancelled (they count for the cooldown, so the post is not put
    straight back), and of its uses those that went out (published) and those still queued."""

    post_id: int
    channel: str
    category: str
    text: str
    added_at: datetime
    used: tuple[datetime, ...]
    cancelled: tuple[datetime, ...] = ()
    published: tuple[datetime, ...] = ()
    queued: tuple[datetime, ...] = ()

    @property
    def last_used(self) -> datetime | None:
        """Its latest use, gone out or still to go."""
        return self.used[-1] if self.used else None

    @property
    def last_published(self) -> datetime | None:
        """Its latest use that went out."""
        return self.published[-1] if self.published else None

    @property
    def queued_fill(self) -> datetime | None:
        """Its next use still queued."""
        return self.queued[0] if self.queued else None


class Neighbour(NamedTuple):
    """A delivery next to a slot: when, and its post."""

    due_at: datetime
    post_id: int


def pool_channels(session: Session) -> set[str]:
    """The channels whose pool holds at least one post."""
    return set(session.scalars(select(_p.channel).where(_p.removed_at.is_(None)).distinct()))


def pool_posts(session: Session, channels: Collection[str] | None = None, post_id: int | None = None) -> list[PoolPost]:
    """The posts in the pools of ``channels`` (None: every channel; ``post_id``: that post only), by channel and
    post, with their uses."""
    query = (
        select(_p.post_id, _p.channel, _p.added_at, posts.c.category, posts.c.text)
        .join(posts, posts.c.id == _p.post_id)
        .where(_p.removed_at.is_(None))
        .order_by(_p.channel, _p.post_id)
    )
    uses = (
        select(_d.post_id, _d.channel, _d.due_at, _d.status)
        .join(pool, (_p.post_id == _d.post_id) & (_p.channel == _d.channel))
        .where(
            _p.removed_at.is_(None),
            _d.status.in_(IN_SEQUENCE) | ((_d.status == Status.CANCELLED) & _d.pool_use.is_not(None)),
        )
        .order_by(_d.due_at)
    )
    if channels is not None:
        query = query.where(_p.channel.in_(list(channels)))
        uses = uses.where(_p.channel.in_(list(channels)))
    if post_id is not None:
        query = query.where(_p.post_id == post_id)
        uses = uses.where(_p.post_id == post_id)
    rows = session.execute(query).all()
    if not rows:
        return []
    by_status: dict[tuple[int, str], dict[str, list[datetime]]] = {}
    for post, channel, due_at, status in session.execute(uses):
        by_status.setdefault((post, channel), {}).setdefault(status, []).append(due_at)
    found: list[PoolPost] = []
    for r in rows:
        times = by_status.get((r.post_id, r.channel), {})
        found.append(
            PoolPost(
                r.post_id,
                r.channel,
                r.category,
                r.text,
                r.added_at,
                used=_times(times, *IN_SEQUENCE),
                cancelled=_times(times, Status.CANCELLED),
                published=_times(times, Status.PUBLISHED),
                queued=_times(times, Status.QUEUED, Status.PUBLISHING),
            )
        )
    return found


def _times(by_status: Mapping[str, list[datetime]], *statuses: Status) -> tuple[datetime, ...]:
    return tuple(sorted(t for status in statuses for t in by_status.get(status, ())))


def neighbours(session: Session, channel: str, when: datetime) -> tuple[Neighbour | None, Neighbour | None]:
    """The deliveries on ``channel`` just before and just after ``when`` (sent or to be sent): their time and post."""
    around = select(_d.due_at, _d.post_id).where(_d.channel == channel, _d.status.in_(IN_SEQUENCE))
    found: list[Neighbour | None] = []
    for bound, order in ((_d.due_at < when, (_d.due_at.desc(), _d.id.desc())), (_d.due_at > when, (_d.due_at, _d.id))):
        row = session.execute(around.where(bound).order_by(*order).limit(1)).first()
        found.append(None if row is None else Neighbour(row.due_at, row.post_id))
    return found[0], found[1]


def members(session: Session, post_id: int, channel: str | None = None) -> list[str]:
    """The channels whose pool holds ``post_id`` (of ``channel`` only, when given)."""
    query = select(_p.channel).where(_p.post_id == post_id, _p.removed_at.is_(None)).order_by(_p.channel)
    if channel is not None:
        query = query.where(_p.channel == channel)
    return list(session.scalars(query))


def remove(session: Session, post_id: int, now: datetime, channel: str | None = None) -> list[str]:
    """Take ``post_id`` out of every pool (or ``channel``'s); the channels whose pool held it."""
    held = members(session, post_id, channel)
    if held:
        session.execute(
            update(pool)
            .where(_p.post_id == post_id, _p.channel.in_(held), _p.removed_at.is_(None))
            .values(removed_at=now)
        )
    return held
