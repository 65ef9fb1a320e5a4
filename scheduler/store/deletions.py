"""Deletions: a published delivery taken down from its network, as an attempt like a publish
(docs/reliability.md#deleting-a-published-post).

A delivery is due for deletion while it is ``published`` with ``delete_at`` at or before now (``smm delete`` sets
it to now, ``--expire-at`` to the expiry). The invariants of :mod:`.claims` hold for deletions too:

- a deletion is claimed by one conditional update of the delivery's lease (``WHERE status = 'published' AND
  delete_at <= now AND`` the lease is free or run out), in the transaction that opens its attempt of kind
  ``delete``; that transaction commits before the network is called;
- at most one open attempt per delivery (the same partial unique index as publishing);
- outcomes are fenced on the open attempt;
- an attempt left open (an unclear answer, a crash) is settled before the delete is sent again: whoever claims the
  delivery next finds it open and reads the post back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from scheduler import timeline
from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import Attempt, AttemptKind, Delivery, Outcome, Status
from scheduler.store import figures
from scheduler.store.common import loaded_ids

PUBLISHED = Status.PUBLISHED.value
DELETE = AttemptKind.DELETE.value


@dataclass(frozen=True)
class Deletion:
    """A published delivery this process may now delete (or whose unclear deletion it must settle)."""

    delivery_id: int
    attempt_id: int
    post_id: int
    channel: str
    network: str
    remote_id: str
    published_at: datetime
    #: This deletion's attempt number (deletion attempts are counted apart from publishing ones).
    attempt_number: int
    #: When the first deletion attempt started (the retry policy's ``max_age`` counts from it).
    first_at: datetime
    started_at: datetime
    #: When the open attempt being settled started (None for a fresh claim).
    open_since: datetime | None = None
    #: The post's further messages, deleted with it (none for a post of one, or published before they were kept).
    more_ids: tuple[str, ...] = ()
    #: The published post's address, where the network gave one.
    remote_url: str | None = None


def request_deletion(session: Session, delivery_ids: list[int], now: datetime) -> int:
    """``smm delete``: the published deliveries ``delivery_ids`` are to be deleted now (an earlier refusal's error is
    cleared; one already due keeps its time); returns how many."""
    if not delivery_ids:
        return 0
    return int(
        rowcount(
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(delivery_ids), Delivery.status == PUBLISHED)
                .values(
                    delete_at=case((Delivery.delete_at < now, Delivery.delete_at), else_=now),
                    last_error=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        )
    )


def deletions_due(
    session: Session, now: datetime, channels: list[str], limit: int = 50
) -> list[tuple[int, str, datetime]]:
    """Published deliveries on ``channels`` due to be deleted and not leased by anyone, the earliest first: their
    id, channel and when they were due."""
    if not channels:
        return []
    return [
        (delivery_id, channel, delete_at or now)
        for delivery_id, channel, delete_at in session.execute(
            select(Delivery.id, Delivery.channel, Delivery.delete_at)
            .where(
                Delivery.status == PUBLISHED,
                Delivery.delete_at <= now,
                Delivery.channel.in_(channels),
                Delivery.lease_until.is_(None) | (Delivery.lease_until <= now),
            )
            .order_by(Delivery.delete_at, Delivery.id)
            .limit(limit)
        )
    ]


def next_deletion(session: Session, after: datetime) -> datetime | None:
    """When the next deletion (or expiry of a queued delivery) falls due, strictly after ``after``."""
    when: datetime | None = session.scalar(
        select(func.min(Delivery.delete_at)).where(
            Delivery.status.in_((Status.PUBLISHED, Status.QUEUED)), Delivery.delete_at > after
        )
    )
    return when


def expired_queued(session: Session, now: datetime) -> list[int]:
    """The queued deliveries whose post expired before they went out (a read: the job writes only when there are)."""
    return list(session.scalars(select(Delivery.id).where(Delivery.status == Status.QUEUED, Delivery.delete_at <= now)))


@keeps_due_times
def expire_queued(session: Session, delivery_ids: list[int], now: datetime) -> list[tuple[int, str]]:
    """Cancel the queued deliveries ``delivery_ids`` whose post expired before they went out; their ``(post id,
    channel)``."""
    return timeline.expire_queued(session, delivery_ids, now)


@keeps_due_times
def claim_deletion(session: Session, delivery_id: int, now: datetime, owner: str, lease: timedelta) -> Deletion | None:
    """Take a published delivery due for deletion, and open its attempt (or find the one left open); None when it
    is no longer due or another daemon holds it."""
    row = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == PUBLISHED,
            Delivery.delete_at <= now,
            Delivery.lease_until.is_(None) | (Delivery.lease_until <= now) | (Delivery.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=now + lease, updated_at=now)
        .returning(
            Delivery.post_id,
            Delivery.channel,
            Delivery.network,
            Delivery.remote_id,
            Delivery.published_at,
            Delivery.more_remote_ids,
            Delivery.remote_url,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    post_id, channel, network, remote_id, published_at, more_ids, remote_url = row
    open_attempt = session.execute(
        select(Attempt.id, Attempt.number, Attempt.started_at).where(
            Attempt.delivery_id == delivery_id, Attempt.outcome.is_(None), Attempt.kind == DELETE
        )
    ).first()
    done, first = session.execute(
        select(func.count(), func.min(Attempt.started_at)).where(
            Attempt.delivery_id == delivery_id, Attempt.kind == DELETE
        )
    ).one()
    fresh = Deletion(
        delivery_id=delivery_id,
        attempt_id=0,
        post_id=post_id,
        channel=channel,
        network=network,
        remote_id=str(remote_id or ""),
        published_at=published_at or now,
        attempt_number=done + 1,
        first_at=first or now,
        started_at=now,
        more_ids=loaded_ids(more_ids),
        remote_url=remote_url,
    )
    if open_attempt is not None:
        attempt_id, number, started = open_attempt
        return replace(fresh, attempt_id=attempt_id, attempt_number=number, started_at=started, open_since=started)
    return replace(fresh, attempt_id=_open(session, delivery_id, done + 1, owner, now))


def _open(session: Session, delivery_id: int, number: int, owner: str, now: datetime) -> int:
    return int(
        session.execute(
            insert(Attempt)
            .values(delivery_id=delivery_id, number=number, owner=owner, started_at=now, kind=DELETE)
            .returning(Attempt.id)
        ).scalar_one()
    )


def _close(session: Session, deletion: Deletion, outcome: Outcome, now: datetime, error: str | None) -> bool:
    return bool(
        rowcount(
            session.execute(
                update(Attempt)
                .where(Attempt.id == deletion.attempt_id, Attempt.outcome.is_(None))
                .values(outcome=outcome.value, finished_at=now, error=error)
                .execution_options(synchronize_session=False)
            )
        )
    )


def _move(session: Session, deletion: Deletion, now: datetime, **values: object) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == deletion.delivery_id, Delivery.status == PUBLISHED)
        .values(updated_at=now, lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )


@keeps_due_times
def record_deleted(session: Session, deletion: Deletion, now: datetime, note: str | None = None) -> bool:
    """The network no longer has the post: the delivery is ``deleted``. False when the attempt was settled
    elsewhere (then nothing changes)."""
    if not _close(session, deletion, Outcome.DELETED, now, note):
        return False
    _move(session, deletion, now, status=Status.DELETED.value, deleted_at=now, delete_at=None, last_error=None)
    figures.forget(session, deletion.delivery_id)
    return True


@keeps_due_times
def record_delete_retry(session: Session, deletion: Deletion, now: datetime, error: str, retry_at: datetime) -> bool:
    """Surely not deleted (or found still there): try again at ``retry_at``."""
    if not _close(session, deletion, Outcome.TRANSIENT, now, error):
        return False
    _move(session, deletion, now, delete_at=retry_at, last_error=error)
    return True


@keeps_due_times
def record_delete_failed(session: Session, deletion: Deletion, now: datetime, error: str) -> bool:
    """The network refused (too old, no right): the delivery stays ``published`` with the error; no more tries."""
    if not _close(session, deletion, Outcome.PERMANENT, now, error):
        return False
    _move(session, deletion, now, delete_at=None, last_error=error)
    return True


@keeps_due_times
def record_delete_in_doubt(session: Session, deletion: Deletion, now: datetime, error: str, check_at: datetime) -> bool:
    """Unclear whether the network deleted it: keep the attempt open and the delivery leased until ``check_at``,
    when whoever claims it reads the post back first."""
    return bool(
        rowcount(
            session.execute(
                update(Delivery)
                .where(Delivery.id == deletion.delivery_id, Delivery.status == PUBLISHED)
                .values(last_error=error, lease_until=check_at, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
    )


@keeps_due_times
def reopen_deletion(
    session: Session, deletion: Deletion, now: datetime, owner: str, outcome: Outcome, why: str
) -> Deletion | None:
    """Settle an unclear attempt with ``outcome`` (the post is still there, or cannot be read back) and open the
    next one, in one transaction; None when the attempt was settled elsewhere."""
    if not _close(session, deletion, outcome, now, why):
        return None
    number = deletion.attempt_number + 1
    attempt_id = _open(session, deletion.delivery_id, number, owner, now)
    return replace(deletion, attempt_id=attempt_id, attempt_number=number, started_at=now, open_since=None)
