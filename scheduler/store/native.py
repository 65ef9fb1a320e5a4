"""Native pre-scheduling rows: which deliveries to hand to their network, and the outcomes of a hand-over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.db import rowcount
from scheduler.models import Delivery, Outcome, Status
from scheduler.store.claims import Claim
from scheduler.store.outcomes import settle


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


def record_armed(
    session: Session, claim: Claim, now: datetime, remote_id: str, at: datetime, check_at: datetime, note: str
) -> bool:
    """The network took the post to publish at ``at``: queued again, to be checked at ``check_at``."""
    return settle(
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
    return settle(
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
    return settle(
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
