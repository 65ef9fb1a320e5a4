"""Outcomes, fenced on the open attempt: ``UPDATE attempts ... WHERE id = :attempt AND outcome IS NULL``, so that a
late writer (a daemon presumed dead, a cancelled task) changes nothing."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from sqlalchemy import ARRAY, Integer, Text, Update, bindparam, func, select, update
from sqlalchemy.orm import Session

from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import Attempt, Delivery, Outcome, Status, UTCDateTime
from scheduler.store.claims import Claim
from scheduler.store.common import PUBLISHING, stored_ids


@functools.cache
def _settle_statements(
    attempt_keys: tuple[str, ...], delivery_keys: tuple[str, ...], undo_attempt: bool, one_trip: bool
) -> tuple[Update, ...]:
    """The fenced UPDATEs that close an attempt and move its delivery on, for one set of columns (built once).

    With ``one_trip`` (PostgreSQL) both go in one statement: the attempt's UPDATE in a data-modifying CTE, the
    delivery's conditioned on it. Parameters: ``aid``, ``did``, ``a_<column>`` and ``d_<column>``."""
    attempts, deliveries = Attempt.__table__.c, Delivery.__table__.c
    close = (
        update(Attempt)
        .where(Attempt.id == bindparam("aid"), Attempt.outcome.is_(None))
        .values({k: bindparam(f"a_{k}", type_=attempts[k].type) for k in attempt_keys})
    )
    values: dict[str, object] = {k: bindparam(f"d_{k}", type_=deliveries[k].type) for k in delivery_keys}
    if undo_attempt:
        values["attempts"] = Delivery.attempts - 1
    move = update(Delivery).where(Delivery.id == bindparam("did"), Delivery.status == PUBLISHING).values(values)
    if not one_trip:
        return close, move
    closed = close.returning(Attempt.delivery_id).cte("closed")
    return (move.where(Delivery.id == select(closed.c.delivery_id).scalar_subquery()),)


def settle(
    session: Session,
    claim: Claim,
    outcome: Outcome,
    now: datetime,
    error: str | None,
    *,
    undo_attempt: bool = False,
    **values: object,
) -> bool:
    """Close the open attempt with ``outcome`` and, if it was still open, move the delivery on and free its lease
    (``undo_attempt``: the attempt does not count, it was never sent).

    False when the attempt was already settled elsewhere: then nothing changes."""
    attempt: dict[str, object] = {"outcome": outcome.value, "finished_at": now, "error": error}
    if "remote_id" in values:
        attempt["remote_id"] = values["remote_id"]
    delivery = {"updated_at": now, "lease_owner": None, "lease_until": None, **values}
    conn = session.connection()
    statements = _settle_statements(tuple(attempt), tuple(delivery), undo_attempt, conn.dialect.name == "postgresql")
    params: dict[str, object] = {"aid": claim.attempt_id, "did": claim.delivery_id}
    params.update({f"a_{k}": v for k, v in attempt.items()})
    params.update({f"d_{k}": v for k, v in delivery.items()})
    # The delivery moves on only if the attempt was still open (all() stops at the first UPDATE that changed nothing).
    return all(rowcount(conn.execute(statement, params)) for statement in statements)


class _Cleared(TypedDict):
    last_error: None
    next_attempt_at: None
    native_id: None
    native_at: None


_PUBLISHED_CLEARS = _Cleared(last_error=None, next_attempt_at=None, native_id=None, native_at=None)
"""What a published delivery no longer has (its one outcome and its many outcomes alike)."""


@keeps_due_times
def record_published(
    session: Session,
    claim: Claim,
    now: datetime,
    remote_id: str,
    remote_url: str | None,
    note: str | None = None,
    more_ids: Sequence[str] = (),
) -> bool:
    """The network has the post (``more_ids``: its further messages, see :attr:`PublishResult.more_ids
    <adapters.base.PublishResult.more_ids>`)."""
    return settle(
        session,
        claim,
        Outcome.PUBLISHED,
        now,
        note,
        status=Status.PUBLISHED.value,
        published_at=now,
        remote_id=remote_id,
        remote_url=remote_url,
        more_remote_ids=stored_ids(more_ids),
        **_PUBLISHED_CLEARS,
    )


_OUTCOMES = (
    func.unnest(
        bindparam("aids", type_=ARRAY(Integer)),
        bindparam("dids", type_=ARRAY(Integer)),
        bindparam("ats", type_=ARRAY(UTCDateTime())),  # refuses a naive time, as one outcome does
        bindparam("notes", type_=ARRAY(Text)),
        bindparam("rids", type_=ARRAY(Text)),
        bindparam("urls", type_=ARRAY(Text)),
        bindparam("mores", type_=ARRAY(Text)),
    )
    .table_valued("aid", "did", "at", "note", "rid", "url", "more")
    .render_derived(name="outcome")
)
_PUBLISHED_ROWS = select(_OUTCOMES).cte("published")
_CLOSED_MANY = (
    update(Attempt)
    .where(
        Attempt.id == _PUBLISHED_ROWS.c.aid,
        Attempt.delivery_id == _PUBLISHED_ROWS.c.did,
        Attempt.outcome.is_(None),
    )
    .values(
        outcome=Outcome.PUBLISHED.value,
        finished_at=_PUBLISHED_ROWS.c.at,
        error=_PUBLISHED_ROWS.c.note,
        remote_id=_PUBLISHED_ROWS.c.rid,
    )
    .returning(Attempt.id, Attempt.delivery_id)
    .cte("closed")
)
# As record_published for many claims, in one statement: the attempts still open are closed, and the delivery of
# each one closed (still being published) moves on with that attempt's values; the attempts whose delivery moved
# come back. (A batch with two outcomes for one delivery or one attempt is recorded one call at a time.)
_RECORD_PUBLISHED_MANY = (
    update(Delivery)
    .where(
        Delivery.id == _CLOSED_MANY.c.delivery_id,
        _PUBLISHED_ROWS.c.aid == _CLOSED_MANY.c.id,
        Delivery.status == PUBLISHING,
    )
    .values(
        status=Status.PUBLISHED.value,
        published_at=_PUBLISHED_ROWS.c.at,
        updated_at=_PUBLISHED_ROWS.c.at,
        remote_id=_PUBLISHED_ROWS.c.rid,
        remote_url=_PUBLISHED_ROWS.c.url,
        more_remote_ids=_PUBLISHED_ROWS.c.more,
        lease_owner=None,
        lease_until=None,
        **_PUBLISHED_CLEARS,
    )
    .returning(_PUBLISHED_ROWS.c.aid)
)


PublishedCall = (
    tuple[Claim, datetime, str, str | None]
    | tuple[Claim, datetime, str, str | None, str | None]
    | tuple[Claim, datetime, str, str | None, str | None, Sequence[str]]
)
"""The arguments of one :func:`record_published` after the session: claim, now, remote id, URL[, note[, further
ids]]."""


def record_published_each(session: Session, calls: Sequence[PublishedCall]) -> list[bool]:
    """:func:`record_published` for each of ``calls`` (its arguments after the session), in order; on PostgreSQL
    one statement for all."""
    conn = session.connection()
    deliveries = {c[0].delivery_id for c in calls}
    if conn.dialect.name != "postgresql" or len(calls) < 2 or len(deliveries) < len(calls):
        return [record_published(session, *c) for c in calls]
    params = {
        "aids": [c[0].attempt_id for c in calls],
        "dids": [c[0].delivery_id for c in calls],
        "ats": [c[1] for c in calls],
        "notes": [c[4] if len(c) > 4 else None for c in calls],
        "rids": [c[2] for c in calls],
        "urls": [c[3] for c in calls],
        "mores": [stored_ids(c[5]) if len(c) > 5 else None for c in calls],
    }
    moved = set(conn.execute(_RECORD_PUBLISHED_MANY, params).scalars())
    return [c[0].attempt_id in moved for c in calls]


def record_retry(
    session: Session, claim: Claim, now: datetime, error: str, retry_at: datetime, outcome: Outcome = Outcome.TRANSIENT
) -> bool:
    """Surely not published: queue again for ``retry_at``."""
    return settle(
        session, claim, outcome, now, error, status=Status.QUEUED.value, next_attempt_at=retry_at, last_error=error
    )


def record_failed(
    session: Session, claim: Claim, now: datetime, error: str, outcome: Outcome = Outcome.PERMANENT
) -> bool:
    """Give up: the delivery failed (a person may ``smm retry`` it)."""
    return settle(
        session, claim, outcome, now, error, status=Status.FAILED.value, next_attempt_at=None, last_error=error
    )


def record_unknown(session: Session, claim: Claim, now: datetime, error: str) -> bool:
    """The outcome cannot be settled automatically: a person must check the channel."""
    return settle(
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
    return settle(session, claim, Outcome.ABANDONED, now, note, undo_attempt=True, status=Status.QUEUED.value)
