"""Cluster rows on PostgreSQL: the live daemons (``instances``) and who holds each lease group (``lease_groups``).

What the rows mean, and how a daemon chooses its groups, is :mod:`scheduler.cluster`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import Instance, LeaseGroup


@keeps_due_times
def register(session: Session, owner: str, host: str, pid: int, now: datetime) -> None:
    session.add(Instance(owner=owner, host=host, pid=pid, started_at=now, heartbeat_at=now))


@keeps_due_times
def heartbeat(session: Session, owner: str, groups: Iterable[str], now: datetime, lease: timedelta) -> set[str]:
    """Renew this daemon's liveness and its groups' leases; returns the groups it still owns."""
    session.execute(update(Instance).where(Instance.owner == owner).values(heartbeat_at=now))
    names = list(groups)
    if not names:
        return set()
    session.execute(
        update(LeaseGroup)
        .where(LeaseGroup.name.in_(names), LeaseGroup.owner == owner)
        .values(lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(select(LeaseGroup.name).where(LeaseGroup.name.in_(names), LeaseGroup.owner == owner)))


@keeps_due_times
def live_instances(session: Session, now: datetime, lease: timedelta) -> list[str]:
    """Daemons whose heartbeat is younger than ``lease``."""
    return list(session.scalars(select(Instance.owner).where(Instance.heartbeat_at > now - lease)))


def acquire(session: Session, group: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take ``group`` if it is free (never held, or its lease expired) or already ours."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # clusters run on PostgreSQL only

    statement = pg_insert(LeaseGroup).values(name=group, owner=owner, lease_until=now + lease)
    statement = statement.on_conflict_do_update(
        index_elements=[LeaseGroup.name],
        set_={"owner": owner, "lease_until": now + lease},
        where=(LeaseGroup.lease_until < now) | (LeaseGroup.owner == owner),
    )
    return bool(rowcount(session.execute(statement)))


@keeps_due_times
def release(session: Session, groups: Iterable[str], owner: str) -> None:
    names = list(groups)
    if names:
        session.execute(
            delete(LeaseGroup)
            .where(LeaseGroup.name.in_(names), LeaseGroup.owner == owner)
            .execution_options(synchronize_session=False)
        )


def leave(session: Session, owner: str) -> None:
    """A clean stop: free every group at once and drop out of the live set."""
    session.execute(delete(LeaseGroup).where(LeaseGroup.owner == owner))
    session.execute(delete(Instance).where(Instance.owner == owner))


@keeps_due_times
def forget_dead(session: Session, now: datetime, keep: timedelta) -> int:
    """Remove instance rows silent for longer than ``keep`` (their groups expired long ago)."""
    return rowcount(session.execute(delete(Instance).where(Instance.heartbeat_at < now - keep)))
