"""Leases of deliveries being published: when they run out, which have, and the heartbeat that keeps them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import Delivery, Status
from scheduler.store.common import PUBLISHING, at

_NEXT_LEASE_EXPIRY = select(func.min(Delivery.lease_until)).where(
    Delivery.status == PUBLISHING, Delivery.lease_until > at("after")
)
_EXPIRED = (
    select(Delivery.id)
    .where(Delivery.status == PUBLISHING, Delivery.lease_until <= at("now"))
    .order_by(Delivery.lease_until)
    .limit(bindparam("lim"))
)


def next_lease_expiry(session: Session, after: datetime) -> datetime | None:
    """When the next lease of a delivery being published runs out, strictly after ``after``."""
    value: datetime | None = session.connection().execute(_NEXT_LEASE_EXPIRY, {"after": after}).scalar()
    return value


def expired_leases(session: Session, now: datetime, exclude: set[int], limit: int = 100) -> list[int]:
    """Ids of ``publishing`` deliveries whose lease ran out (a crash, or an ambiguous outcome to settle)."""
    ids = session.connection().execute(_EXPIRED, {"now": now, "lim": limit + len(exclude)}).scalars()
    return [i for i in ids if i not in exclude][:limit]


def count_expired_leases(session: Session, now: datetime) -> int:
    """How many ``publishing`` deliveries' leases ran out (:func:`expired_leases` reads them a batch at a time)."""
    query = select(func.count()).where(Delivery.status == PUBLISHING, Delivery.lease_until <= now)
    return int(session.execute(query).scalar_one())


def posts_and_channels(session: Session, delivery_ids: list[int]) -> list[tuple[int, str]]:
    """The post and channel of each of ``delivery_ids``, by post, then channel."""
    query = (
        select(Delivery.post_id, Delivery.channel)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.post_id, Delivery.channel)
    )
    return [(post_id, channel) for post_id, channel in session.execute(query)]


def all_publishing(session: Session) -> list[int]:
    return list(session.scalars(select(Delivery.id).where(Delivery.status == Status.PUBLISHING)))


def expire_leases(session: Session, ids: list[int], now: datetime) -> None:
    """End the leases of ``ids`` at ``now`` (at start: this daemon's own deliveries left in flight by a crash)."""
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(lease_until=now)
            .execution_options(synchronize_session=False)
        )


def owned_in_doubt(session: Session, owner: str) -> list[datetime]:
    """When the leases of the deliveries ``owner`` is publishing run out."""
    query = select(Delivery.lease_until).where(Delivery.status == Status.PUBLISHING, Delivery.lease_owner == owner)
    return [until for until in session.scalars(query) if until is not None]  # a claim always sets it


@keeps_due_times
def extend_lease(session: Session, delivery_ids: list[int], owner: str, until: datetime) -> int:
    """Heartbeat: keep this process's in-flight deliveries leased (being published, or published and being
    deleted)."""
    if not delivery_ids:
        return 0
    return int(
        rowcount(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    Delivery.status.in_((Status.PUBLISHING, Status.PUBLISHED)),
                    Delivery.lease_owner == owner,
                )
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
        )
    )
