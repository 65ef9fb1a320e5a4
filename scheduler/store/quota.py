"""Quotas in SQL: a channel's recent and upcoming deliveries, and the deferral of those over its quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from adapters.base import Quota
from scheduler.models import Attempt, Delivery, Status
from scheduler.quota import plan
from scheduler.timefmt import format_duration, format_local


class Deferral(NamedTuple):
    """A delivery deferred by a quota: its post, when it was due, and when it goes out now."""

    post_id: int
    due_at: datetime
    goes_at: datetime


def deferral_note(label: str, quota: Quota, due_at: datetime, goes_at: datetime) -> str:
    """``deferred: vk (vk-group:45) takes 50 posts per day; due ..., goes out at ... when the window has room``,
    where ``label`` names what takes the quota."""
    per = format_duration(timedelta(seconds=quota.per), "window")
    due, goes = (format_local(t, UTC, weekday=False) for t in (due_at, goes_at))
    return (
        f"deferred: {label} takes {quota.limit} posts per {per}; due {due}, goes out at {goes} when the window has room"
    )


def defer_over_quota(session: Session, channel: str, quota: Quota, now: datetime, label: str) -> list[Deferral]:
    """Apply :func:`scheduler.quota.plan` to ``channel``'s deliveries, each deferred one noted with
    :func:`deferral_note`; returns them."""
    window = timedelta(seconds=quota.per)
    used_published = session.scalars(
        select(Delivery.published_at).where(
            Delivery.channel == channel, Delivery.status == Status.PUBLISHED, Delivery.published_at > now - window
        )
    ).all()
    used_inflight = session.scalars(
        select(Attempt.started_at)
        .join(Delivery, Delivery.id == Attempt.delivery_id)
        .where(Delivery.channel == channel, Delivery.status == Status.PUBLISHING, Attempt.outcome.is_(None))
    ).all()
    used = [t for t in (*used_published, *used_inflight) if t is not None]
    horizon = now + window
    rows = session.execute(
        select(Delivery.id, Delivery.next_attempt_at, Delivery.due_at, Delivery.post_id)
        .where(
            Delivery.channel == channel,
            Delivery.status == Status.QUEUED,
            or_(Delivery.due_at <= horizon, Delivery.next_attempt_at <= horizon),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
    ).all()
    if len(used) + len(rows) <= quota.limit:
        return []
    upcoming = [(delivery_id, max(next_at or due_at, now)) for delivery_id, next_at, due_at, _ in rows]
    info = {row[0]: row for row in rows}
    deferred = []
    for delivery_id, when in plan(used, upcoming, quota.limit, window):
        _, next_at, due_at, post_id = info[delivery_id]
        if next_at is not None and when <= next_at:
            continue
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == Status.QUEUED)
            .values(next_attempt_at=when, note=deferral_note(label, quota, due_at, when), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        deferred.append(Deferral(post_id, due_at, when))
    return deferred
