"""Every query and state change of the queue, as functions of a session and ``now``.

What placing a post reads and writes lives in :mod:`scheduler.timeline` (Core only, for ``smm add``).

State changes are conditional updates (``... WHERE status = 'queued'``) whose row count says whether they won, so
the CLI and the daemon can race without corrupting anything: a cancel that loses to a claim fails cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session, selectinload

from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import ACTIVE, Attempt, ChannelState, Delivery, FeedEntry, FeedState, Outcome, Post, Status


def upcoming_categories(
    session: Session, channel: str, statuses: Sequence[str], limit: int
) -> list[tuple[datetime, str]]:
    """The first ``limit`` deliveries of ``channel`` in ``statuses`` by time: their time and category."""
    rows = session.execute(
        select(Delivery.due_at, Post.category)
        .join(Post, Post.id == Delivery.post_id)
        .where(Delivery.channel == channel, Delivery.status.in_(statuses))
        .order_by(Delivery.due_at, Delivery.id)
        .limit(limit)
    )
    return [(due, category) for due, category in rows]


class Planned(NamedTuple):
    """A delivery on a channel's calendar: which, when, its status and what its post is."""

    id: int
    post_id: int
    due_at: datetime
    status: str
    category: str
    text: str
    link: str | None


def planned_between(
    session: Session, channel: str, since: datetime, until: datetime, statuses: Sequence[str]
) -> list[Planned]:
    """The deliveries of ``channel`` in ``statuses`` due from ``since`` to before ``until``, by time."""
    rows = session.execute(
        select(Delivery.id, Delivery.post_id, Delivery.due_at, Delivery.status, Post.category, Post.text, Post.link)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Delivery.channel == channel,
            Delivery.status.in_(statuses),
            Delivery.due_at >= since,
            Delivery.due_at < until,
        )
        .order_by(Delivery.due_at, Delivery.id)
    )
    return [Planned(*row) for row in rows]


# -- reading ------------------------------------------------------------------------------------------------------


def get_post(session: Session, post_id: int) -> Post | None:
    return session.scalar(select(Post).where(Post.id == post_id).options(selectinload(Post.deliveries)))


def list_posts(
    session: Session,
    *,
    statuses: Sequence[str] | None,
    channel: str | None = None,
    limit: int | None = None,
) -> tuple[list[tuple[Post, list[Delivery]]], int]:
    """Posts with their matching deliveries, by the earliest matching delivery's time; and the total count."""
    conditions: list[ColumnElement[bool]] = []
    if statuses is not None:
        conditions.append(Delivery.status.in_(statuses))
    if channel is not None:
        conditions.append(Delivery.channel == channel)
    where = and_(*conditions) if conditions else and_(True)
    total = session.scalar(select(func.count(func.distinct(Delivery.post_id))).where(where)) or 0
    first_due = func.min(Delivery.due_at).label("first_due")
    ids_query = (
        select(Delivery.post_id, first_due)
        .where(where)
        .group_by(Delivery.post_id)
        .order_by(first_due, Delivery.post_id)
    )
    if limit:
        ids_query = ids_query.limit(limit)
    ids = [post_id for post_id, _ in session.execute(ids_query)]
    if not ids:
        return [], total
    posts = {p.id: p for p in session.scalars(select(Post).where(Post.id.in_(ids)))}
    deliveries: dict[int, list[Delivery]] = {i: [] for i in ids}
    for d in session.scalars(
        select(Delivery).where(Delivery.post_id.in_(ids), where).order_by(Delivery.due_at, Delivery.id)
    ):
        deliveries[d.post_id].append(d)
    return [(posts[i], deliveries[i]) for i in ids], total


def upcoming(session: Session, channel: str | None, limit: int | None) -> list[Delivery]:
    """Queued deliveries in the order they will be tried, with their posts loaded."""
    when = func.coalesce(Delivery.next_attempt_at, Delivery.due_at)
    query = (
        select(Delivery)
        .where(Delivery.status == Status.QUEUED)
        .options(selectinload(Delivery.post))
        .order_by(when, Delivery.id)
    )
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def channel_summary(session: Session) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries are in each status."""
    summary: dict[str, dict[str, int]] = {}
    for channel, status, count in session.execute(
        select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)
    ):
        summary.setdefault(channel, {})[status] = count
    return summary


@keeps_due_times
def attention(session: Session) -> dict[str, str]:
    """Channels that need a person, with the reason."""
    return {
        row.channel: row.reason or ""
        for row in session.scalars(select(ChannelState).where(ChannelState.needs_attention.is_(True)))
    }


@keeps_due_times
def set_attention(session: Session, channel: str, reason: str | None, now: datetime) -> None:
    """Mark ``channel`` as needing a person (``reason``) or clear the mark (``None``)."""
    state = session.get(ChannelState, channel)
    if state is None:
        if reason is None:
            return
        state = ChannelState(channel=channel)
        session.add(state)
    state.needs_attention = reason is not None
    state.reason = reason
    state.updated_at = now


# -- feeds --------------------------------------------------------------------------------------------------------


def feed_entry_keys(session: Session, feed: str, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` (entry keys) ``feed`` has seen before."""
    if not keys:
        return set()
    return set(
        session.scalars(select(FeedEntry.entry_key).where(FeedEntry.feed == feed, FeedEntry.entry_key.in_(keys)))
    )


def remember_entry(
    session: Session,
    feed: str,
    key: str,
    entry_id: str,
    title: str | None,
    post_id: int | None,
    now: datetime,
    note: str | None,
) -> None:
    """Record that ``feed``'s entry was seen (and the post it became, or why it did not become one)."""
    session.add(
        FeedEntry(feed=feed, entry_key=key, entry_id=entry_id, title=title, post_id=post_id, seen_at=now, note=note)
    )


def feed_polls(session: Session) -> dict[str, datetime | None]:
    """When each configured feed was last polled."""
    return {row.feed: row.polled_at for row in session.scalars(select(FeedState))}


# -- operator actions ---------------------------------------------------------------------------------------------


def cancel_deliveries(
    session: Session,
    post_id: int,
    now: datetime,
    channel: str | None = None,
    statuses: Sequence[Status] = (Status.QUEUED, Status.UNKNOWN, Status.FAILED),
) -> int:
    """Cancel the post's deliveries in ``statuses`` (default: queued, unknown and failed); returns how many."""
    conditions = [Delivery.post_id == post_id, Delivery.status.in_(statuses)]
    if channel is not None:
        conditions.append(Delivery.channel == channel)
    ids = list(session.scalars(select(Delivery.id).where(*conditions)))
    if not ids:
        return 0
    _abandon_open_attempts(session, ids, now, "cancelled")
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status.in_(statuses))
        .values(status=Status.CANCELLED.value, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def requeue(session: Session, delivery_ids: Sequence[int], when: datetime, now: datetime, note: str) -> int:
    """Put failed or unknown deliveries back in the queue, due at ``when``."""
    if not delivery_ids:
        return 0
    _abandon_open_attempts(session, delivery_ids, now, note)
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status.in_((Status.FAILED, Status.UNKNOWN)))
        .values(
            status=Status.QUEUED.value,
            next_attempt_at=when,
            attempts=0,
            last_error=None,  # the attempts keep it; shown beside a queued delivery it reads as a current problem
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def mark_published_by_hand(session: Session, delivery_id: int, url: str | None, now: datetime) -> bool:
    """An operator says an unknown delivery did go out (``smm resolve --published``)."""
    _abandon_open_attempts(session, [delivery_id], now, "settled by an operator: published")
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == Status.UNKNOWN)
        .values(
            status=Status.PUBLISHED.value,
            published_at=now,
            remote_url=url,
            next_attempt_at=None,
            lease_owner=None,
            lease_until=None,
            last_error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def _abandon_open_attempts(session: Session, delivery_ids: Sequence[int], now: datetime, note: str) -> None:
    session.execute(
        update(Attempt)
        .where(Attempt.delivery_id.in_(delivery_ids), Attempt.outcome.is_(None))
        .values(outcome=Outcome.ABANDONED.value, finished_at=now, error=note)
        .execution_options(synchronize_session=False)
    )


def active_or(include_all: bool) -> Sequence[str] | None:
    return None if include_all else [s.value for s in ACTIVE]


def skip_delivery(session: Session, delivery_id: int, now: datetime, reason: str) -> bool:
    """Fail a queued delivery without sending it (late_policy = skip)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == Status.QUEUED)
        .values(status=Status.FAILED.value, last_error=reason, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))
