"""The publishing state machine in SQL: claim, record, lease, reconcile.

Invariants, each enforced by the statements here:

- a delivery is claimed by one conditional update (``WHERE status = 'queued'``; on PostgreSQL the candidate row is
  locked with ``FOR UPDATE SKIP LOCKED`` in a CTE), in the same transaction that opens its attempt row, and that
  transaction commits before the network is called;
- at most one open attempt per delivery (a partial unique index);
- outcomes are fenced: ``UPDATE attempts ... WHERE id = :attempt AND outcome IS NULL``, so a late writer (a daemon
  presumed dead, a cancelled task) changes nothing;
- a delivery whose attempt is open is never re-sent without reconciliation: it stays ``publishing`` with a lease,
  and whoever takes over an expired lease must settle the open attempt first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from scheduler.models import Attempt, Delivery, Outcome, Post, Status
from scheduler.render import PostContent
from scheduler.repository import rowcount


@dataclass(frozen=True)
class Claim:
    """A delivery this process may now publish (or reconcile), with what it needs to do so."""

    delivery_id: int
    attempt_id: int
    post_id: int
    channel: str
    network: str
    key: str
    due_at: datetime
    attempt_number: int
    started_at: datetime
    content: PostContent
    #: When the open attempt being reconciled started (None for a fresh claim).
    open_since: datetime | None = None
    #: When the delivery was to go out when claimed (its due time, or a later retry or deferral).
    publish_at: datetime | None = None
    #: The network's id of the post handed to it ahead of time, and the time it was handed over for
    #: (None when the delivery was moved since: the handed-over post must be deleted first).
    native_id: str | None = None
    native_at: datetime | None = None
    #: Whether the channel had another delivery due when this one was claimed (the worker goes on without asking).
    more_due: bool = False

    @property
    def arming(self) -> bool:
        """Whether the (open) attempt hands the post to the network ahead of its time rather than publishing it."""
        started = self.open_since or self.started_at
        return self.native_id is None and self.publish_at is not None and self.publish_at - started > ARM_MARGIN


ARM_MARGIN = timedelta(minutes=5)
"""An attempt started this long before its delivery's time was an arming, not a publish."""


def next_due(session: Session, after: datetime) -> datetime | None:
    """When the next queued delivery falls due, strictly after ``after`` (an index-only lookup)."""
    return session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.status == Status.QUEUED, Delivery.next_attempt_at > after
        )
    )


def next_lease_expiry(session: Session, after: datetime) -> datetime | None:
    """When the next lease of a delivery being published runs out, strictly after ``after``."""
    return session.scalar(
        select(func.min(Delivery.lease_until)).where(Delivery.status == Status.PUBLISHING, Delivery.lease_until > after)
    )


def due_channels(session: Session, now: datetime, limit: int = 10_000) -> list[str]:
    """Channels with at least one queued delivery due at ``now``."""
    rows = session.execute(
        select(Delivery.channel)
        .where(Delivery.status == Status.QUEUED, Delivery.next_attempt_at <= now)
        .group_by(Delivery.channel)
        .order_by(func.min(Delivery.next_attempt_at))
        .limit(limit)
    )
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


_CLAIMED = (
    Delivery.id,
    Delivery.attempts,
    Delivery.post_id,
    Delivery.channel,
    Delivery.network,
    Delivery.key,
    Delivery.due_at,
    Delivery.next_attempt_at,
    Delivery.native_id,
    Delivery.native_at,
)


def claim(session: Session, channel: str, now: datetime, owner: str, lease: timedelta) -> Claim | None:
    """Take the channel's oldest due delivery and open an attempt on it, or None when nothing is due.

    The claimed row is found by a primary-key equality on a scalar subquery (locked with ``FOR UPDATE SKIP
    LOCKED`` on PostgreSQL): a plain ``IN`` let SQLite's planner walk every queued row instead.
    """
    due = (Delivery.channel == channel, Delivery.status == Status.QUEUED, Delivery.next_attempt_at <= now)
    pick = (
        select(Delivery.id)
        .where(*due)
        .order_by(Delivery.due_at, Delivery.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = session.execute(
        update(Delivery)
        .where(Delivery.id == pick, Delivery.status == Status.QUEUED)
        .values(
            status=Status.PUBLISHING.value,
            attempts=Delivery.attempts + 1,
            lease_owner=owner,
            lease_until=now + lease,
            updated_at=now,
        )
        .returning(*_CLAIMED)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    more = session.scalar(select(Delivery.id).where(*due, Delivery.id != row.id).limit(1)) is not None
    return _claim_of(session, row, row.attempts, now, owner, more_due=more)


def _claim_of(session: Session, row: Any, number: int, now: datetime, owner: str, *, more_due: bool = False) -> Claim:
    """Open the attempt on a claimed delivery (``row`` has the columns of ``_CLAIMED``)."""
    attempt = Attempt(delivery_id=row.id, number=number, owner=owner, started_at=now)
    session.add(attempt)
    post = session.get(Post, row.post_id)
    assert post is not None
    session.flush()
    return Claim(
        delivery_id=row.id,
        attempt_id=attempt.id,
        post_id=row.post_id,
        channel=row.channel,
        network=row.network,
        key=row.key,
        due_at=row.due_at,
        attempt_number=number,
        started_at=now,
        content=PostContent.from_post(post),
        publish_at=row.next_attempt_at,
        native_id=row.native_id,
        native_at=row.native_at,
        more_due=more_due,
    )


def expired_leases(session: Session, now: datetime, exclude: set[int], limit: int = 100) -> list[int]:
    """Ids of ``publishing`` deliveries whose lease ran out (a crash, or an ambiguous outcome to settle)."""
    ids = session.scalars(
        select(Delivery.id)
        .where(Delivery.status == Status.PUBLISHING, Delivery.lease_until <= now)
        .order_by(Delivery.lease_until)
        .limit(limit + len(exclude))
    )
    return [i for i in ids if i not in exclude][:limit]


def all_publishing(session: Session) -> list[int]:
    return list(session.scalars(select(Delivery.id).where(Delivery.status == Status.PUBLISHING)))


def take_over(session: Session, delivery_id: int, now: datetime, owner: str, lease: timedelta) -> Claim | None:
    """Take an in-doubt delivery to reconcile it: its lease expired; its open attempt (if any) stays open."""
    won = rowcount(
        session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == Status.PUBLISHING,
                (Delivery.lease_until <= now) | (Delivery.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_until=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if not won:
        return None
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    attempt = session.scalar(
        select(Attempt).where(Attempt.delivery_id == delivery_id, Attempt.outcome.is_(None)).limit(1)
    )
    if attempt is None:
        # Claimed but no attempt survived (cannot happen with one transaction; kept safe): nothing was sent.
        attempt = Attempt(delivery_id=delivery_id, number=delivery.attempts, owner=owner, started_at=now)
        session.add(attempt)
        session.flush()
        open_since = None
    else:
        open_since = attempt.started_at
    return Claim(
        delivery_id=delivery.id,
        attempt_id=attempt.id,
        post_id=delivery.post_id,
        channel=delivery.channel,
        network=delivery.network,
        key=delivery.key,
        due_at=delivery.due_at,
        attempt_number=attempt.number,
        started_at=attempt.started_at,
        content=PostContent.from_post(delivery.post),
        open_since=open_since,
        publish_at=delivery.due_at if delivery.native_id is None else delivery.native_at,
        native_id=delivery.native_id,
        native_at=delivery.native_at,
    )


def extend_lease(session: Session, delivery_ids: list[int], owner: str, until: datetime) -> int:
    """Heartbeat: keep this process's in-flight deliveries leased."""
    if not delivery_ids:
        return 0
    return int(
        rowcount(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids), Delivery.status == Status.PUBLISHING, Delivery.lease_owner == owner
                )
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
        )
    )


# -- outcomes (fenced on the open attempt) ------------------------------------------------------------------------


def _close_attempt(session: Session, claim: Claim, outcome: Outcome, now: datetime, **values: Any) -> bool:
    return bool(
        rowcount(
            session.execute(
                update(Attempt)
                .where(Attempt.id == claim.attempt_id, Attempt.outcome.is_(None))
                .values(outcome=outcome.value, finished_at=now, **values)
                .execution_options(synchronize_session=False)
            )
        )
    )


def _set_delivery(session: Session, claim: Claim, now: datetime, **values: Any) -> bool:
    return bool(
        rowcount(
            session.execute(
                update(Delivery)
                .where(Delivery.id == claim.delivery_id, Delivery.status == Status.PUBLISHING)
                .values(updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
        )
    )


def _settle(session: Session, claim: Claim, outcome: Outcome, now: datetime, error: str | None, **values: Any) -> bool:
    """Close the open attempt with ``outcome`` and, if it was still open, move the delivery on and free its lease.

    False when the attempt was already settled elsewhere: then nothing changes."""
    attempt_values: dict[str, Any] = {"error": error}
    if "remote_id" in values:
        attempt_values["remote_id"] = values["remote_id"]
    if not _close_attempt(session, claim, outcome, now, **attempt_values):
        return False
    return _set_delivery(session, claim, now, lease_owner=None, lease_until=None, **values)


def record_published(
    session: Session, claim: Claim, now: datetime, remote_id: str, remote_url: str | None, note: str | None = None
) -> bool:
    """The network has the post."""
    return _settle(
        session,
        claim,
        Outcome.PUBLISHED,
        now,
        note,
        status=Status.PUBLISHED.value,
        published_at=now,
        remote_id=remote_id,
        remote_url=remote_url,
        last_error=None,
        next_attempt_at=None,
        native_id=None,
        native_at=None,
    )


def record_retry(
    session: Session, claim: Claim, now: datetime, error: str, retry_at: datetime, outcome: Outcome = Outcome.TRANSIENT
) -> bool:
    """Surely not published: queue again for ``retry_at``."""
    return _settle(
        session, claim, outcome, now, error, status=Status.QUEUED.value, next_attempt_at=retry_at, last_error=error
    )


def record_failed(
    session: Session, claim: Claim, now: datetime, error: str, outcome: Outcome = Outcome.PERMANENT
) -> bool:
    """Give up: the delivery failed (a person may ``smm retry`` it)."""
    return _settle(
        session, claim, outcome, now, error, status=Status.FAILED.value, next_attempt_at=None, last_error=error
    )


def record_unknown(session: Session, claim: Claim, now: datetime, error: str) -> bool:
    """The outcome cannot be settled automatically: a person must check the channel."""
    return _settle(
        session, claim, Outcome.UNKNOWN, now, error, status=Status.UNKNOWN.value, next_attempt_at=None, last_error=error
    )


def record_in_doubt(session: Session, claim: Claim, now: datetime, error: str, check_at: datetime) -> bool:
    """The outcome is ambiguous: keep the attempt open and the delivery leased until ``check_at``, then reconcile."""
    return bool(
        rowcount(
            session.execute(
                update(Delivery)
                .where(Delivery.id == claim.delivery_id, Delivery.status == Status.PUBLISHING)
                .values(last_error=error, lease_until=check_at, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
    )


def release(session: Session, claim: Claim, now: datetime, note: str) -> bool:
    """Hand a claimed delivery back untouched (it was never sent): the attempt is abandoned, the delivery queued."""
    return _settle(
        session, claim, Outcome.ABANDONED, now, note, status=Status.QUEUED.value, attempts=Delivery.attempts - 1
    )


def queued_per_channel(session: Session) -> dict[str, tuple[int, datetime | None, datetime | None]]:
    """Per channel: how many deliveries are queued, and when the first and the last will go (one grouped query).

    A delivery goes at its ``next_attempt_at`` when set (a retry, a quota's deferral), else at its ``due_at``.
    """
    goes = func.coalesce(Delivery.next_attempt_at, Delivery.due_at)
    rows = session.execute(
        select(Delivery.channel, func.count(), func.min(goes), func.max(goes))
        .where(Delivery.status == Status.QUEUED)
        .group_by(Delivery.channel)
    )
    return {channel: (count, first, last) for channel, count, first, last in rows}


def newest_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Delivery.id))) or 0)


def queued_since(session: Session, after_id: int, limit: int = 20) -> tuple[list[Delivery], int]:
    """Deliveries created after ``after_id`` (the first ``limit``), and the newest id."""
    rows = list(session.scalars(select(Delivery).where(Delivery.id > after_id).order_by(Delivery.id).limit(limit)))
    return rows, newest_id(session) if rows else after_id


# -- native pre-scheduling ----------------------------------------------------------------------------------------


def arm_candidates(
    session: Session, channels: list[str], earliest: datetime, latest: datetime, limit: int
) -> list[int]:
    """Queued deliveries on ``channels`` to hand to their network now: due between ``earliest`` and ``latest``."""
    if not channels:
        return []
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.status == Status.QUEUED,
                Delivery.next_attempt_at >= earliest,
                Delivery.next_attempt_at <= latest,
                Delivery.channel.in_(channels),
                Delivery.native_id.is_(None),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        )
    )


def claim_for_arming(session: Session, delivery_id: int, now: datetime, owner: str, lease: timedelta) -> Claim | None:
    """Claim one queued delivery to hand it to its network ahead of time (its attempt records the hand-over)."""
    row = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == Status.QUEUED, Delivery.native_id.is_(None))
        .values(status=Status.PUBLISHING.value, lease_owner=owner, lease_until=now + lease, updated_at=now)
        .returning(*_CLAIMED)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    # Hand-overs do not count against the publish attempts, but each gets its own attempt number (and key).
    number = session.scalar(select(func.count()).where(Attempt.delivery_id == delivery_id)) or 0
    return _claim_of(session, row, number + 1, now, owner)


def record_armed(
    session: Session, claim: Claim, now: datetime, remote_id: str, at: datetime, check_at: datetime, note: str
) -> bool:
    """The network took the post to publish at ``at``: queued again, to be checked at ``check_at``."""
    return _settle(
        session,
        claim,
        Outcome.SCHEDULED,
        now,
        note,
        status=Status.QUEUED.value,
        native_id=remote_id,
        native_at=at,
        next_attempt_at=check_at,
        note=note,
        last_error=None,
    )


def record_disarmed(session: Session, claim: Claim, now: datetime, note: str, retry_at: datetime) -> bool:
    """The post handed to the network is gone (deleted, or never taken): queued again to publish at ``retry_at``."""
    return _settle(
        session,
        claim,
        Outcome.NOT_FOUND,
        now,
        note,
        status=Status.QUEUED.value,
        native_id=None,
        native_at=None,
        next_attempt_at=retry_at,
        note=note,
    )


def record_native_gone(session: Session, claim: Claim, now: datetime, error: str) -> bool:
    """The handed-over post disappeared from the network before its time: failed, for a person to decide."""
    return _settle(
        session,
        claim,
        Outcome.NOT_FOUND,
        now,
        error,
        status=Status.FAILED.value,
        native_id=None,
        native_at=None,
        next_attempt_at=None,
        last_error=error,
    )


def stale_native(session: Session, limit: int = 50) -> list[tuple[int, str, str, str]]:
    """Posts handed to a network that must be deleted there: their delivery was cancelled, failed or moved.

    Returns ``(delivery id, channel, native id, status)``."""
    rows = session.execute(
        select(Delivery.id, Delivery.channel, Delivery.native_id, Delivery.status)
        .where(
            Delivery.native_id.is_not(None),
            (Delivery.status.in_((Status.CANCELLED, Status.FAILED))) | (Delivery.native_at.is_(None)),
            Delivery.status != Status.PUBLISHING,
        )
        .limit(limit)
    )
    return [(r[0], r[1], str(r[2]), r[3]) for r in rows]


def clear_native(session: Session, delivery_id: int) -> None:
    """The handed-over post was deleted on the network by the worker that holds the delivery."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(native_id=None, native_at=None)
        .execution_options(synchronize_session=False)
    )


def forget_native(session: Session, delivery_id: int, native_id: str, now: datetime, note: str) -> bool:
    """The network deleted the handed-over post: the delivery no longer refers to it."""
    return bool(
        rowcount(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id, Delivery.native_id == native_id, Delivery.status != Status.PUBLISHING
                )
                .values(native_id=None, native_at=None, note=note, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
    )
