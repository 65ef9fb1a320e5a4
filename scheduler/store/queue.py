"""Reads of the queue: what is due, what falls due next, what is new, how much each channel holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from scheduler.models import Delivery, Status
from scheduler.store.common import PUBLISHING, QUEUED, at

_NEXT_DUE = select(func.min(Delivery.next_attempt_at)).where(
    Delivery.status == QUEUED, Delivery.next_attempt_at > at("after")
)
_DUE_CHANNELS = (
    select(Delivery.channel)
    .where(Delivery.status == QUEUED, Delivery.next_attempt_at <= at("now"))
    .group_by(Delivery.channel)
    .order_by(func.min(Delivery.next_attempt_at))
    .limit(bindparam("lim"))
)
# What falls due next, in order, up to a time: the daemon reads the coming seconds ahead, once, instead of looking at
# the queue again at every due time (one look a post).
_UPCOMING = (
    select(Delivery.next_attempt_at, Delivery.channel)
    .where(Delivery.status == QUEUED, Delivery.next_attempt_at > at("after"), Delivery.next_attempt_at <= at("until"))
    .order_by(Delivery.next_attempt_at)
    .limit(bindparam("lim"))
)
_NEWEST_ID = select(func.max(Delivery.id))
# A cycle's first read, one statement of four index probes: the newest delivery, the first time anything is due (is
# something due now?), the next one after this cycle's, and the first lease to run out (has one run out?). An idle
# or a routine cycle needs nothing more.
_GLANCE = select(
    _NEWEST_ID.scalar_subquery(),
    select(func.min(Delivery.next_attempt_at)).where(Delivery.status == QUEUED).scalar_subquery(),
    _NEXT_DUE.scalar_subquery(),
    select(func.min(Delivery.lease_until)).where(Delivery.status == PUBLISHING).scalar_subquery(),
)


def upcoming(session: Session, after: datetime, until: datetime, limit: int) -> list[tuple[datetime, str]]:
    """``(due time, channel)`` of the queued deliveries falling due after ``after`` up to ``until``, the first
    ``limit`` of them in time order."""
    rows = session.connection().execute(_UPCOMING, {"after": after, "until": until, "lim": limit})
    return [(due, channel) for due, channel in rows if due is not None]  # never None: due after ``after``


def due_channels(session: Session, now: datetime, limit: int = 10_000) -> list[str]:
    """Channels with at least one queued delivery due at ``now``."""
    rows = session.connection().execute(_DUE_CHANNELS, {"now": now, "lim": limit})
    return [row[0] for row in rows]


def overdue(session: Session, cutoff: datetime, limit: int = 1000) -> list[Delivery]:
    """Queued deliveries that were due before ``cutoff``, oldest first."""
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.status == Status.QUEUED, Delivery.next_attempt_at < cutoff)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
    )


_QUEUED_ON = select(func.count(), func.min(Delivery.next_attempt_at), func.max(Delivery.next_attempt_at)).where(
    Delivery.channel == bindparam("ch"), Delivery.status == QUEUED
)


def queued_per_channel(
    session: Session, channels: Iterable[str]
) -> dict[str, tuple[int, datetime | None, datetime | None]]:
    """Per channel: how many deliveries are queued, and when the first and the last will go.

    One covering range of the ``(channel, status, next_attempt_at)`` index per channel: no row is read, nothing is
    sorted or grouped in a temporary table (one grouped query over the whole queue reads every queued row and
    builds a temporary B-tree). A queued delivery always has its ``next_attempt_at`` (its due time, or a later
    retry or deferral): it is when it goes.
    """
    conn = session.connection()
    counts: dict[str, tuple[int, datetime | None, datetime | None]] = {}
    for channel in channels:
        count, first, last = conn.execute(_QUEUED_ON, {"ch": channel}).one()
        counts[channel] = (count, first, last)
    return counts


@dataclass(frozen=True)
class Glance:
    """The queue at a glance (see ``_GLANCE``)."""

    newest_id: int
    first_due: datetime | None
    next_due: datetime | None
    first_lease_end: datetime | None


def glance(session: Session, after: datetime) -> Glance:
    """The newest delivery's id, when the first queued delivery is due, the next one strictly after ``after``, and
    when the first lease of a delivery being published runs out."""
    row: tuple[int | None, datetime | None, datetime | None, datetime | None]
    row = session.connection().execute(_GLANCE, {"after": after}).one()
    newest, first_due, next_due, first_lease_end = row
    return Glance(int(newest or 0), first_due, next_due, first_lease_end)


def newest_id(session: Session) -> int:
    return int(session.connection().execute(_NEWEST_ID).scalar() or 0)


def queued_since(session: Session, after_id: int, newest: int, limit: int = 20) -> tuple[list[Delivery], int]:
    """Deliveries created after ``after_id`` up to ``newest`` (the newest id, just read: the first ``limit``), and
    the newest id (``after_id`` when none)."""
    if newest <= after_id:
        return [], after_id
    rows = list(session.scalars(select(Delivery).where(Delivery.id > after_id).order_by(Delivery.id).limit(limit)))
    return rows, newest
