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

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Boolean,
    Integer,
    String,
    Text,
    Update,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from scheduler.models import Attempt, Delivery, Outcome, Post, Status, UTCDateTime
from scheduler.render import PostContent
from scheduler.timeline import rowcount


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


# The daemon's per-post statements are built once and run on the session's connection: building an ORM statement
# and running it through the Session costs several times as much CPU, and a post takes about a dozen of them.
# Bind names differ from column names: in an UPDATE those are reserved.
def _at(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


_QUEUED = Status.QUEUED.value
_PUBLISHING = Status.PUBLISHING.value
_NEXT_DUE = select(func.min(Delivery.next_attempt_at)).where(
    Delivery.status == _QUEUED, Delivery.next_attempt_at > _at("after")
)
_NEXT_LEASE_EXPIRY = select(func.min(Delivery.lease_until)).where(
    Delivery.status == _PUBLISHING, Delivery.lease_until > _at("after")
)
_DUE_CHANNELS = (
    select(Delivery.channel)
    .where(Delivery.status == _QUEUED, Delivery.next_attempt_at <= _at("now"))
    .group_by(Delivery.channel)
    .order_by(func.min(Delivery.next_attempt_at))
    .limit(bindparam("lim"))
)
_EXPIRED = (
    select(Delivery.id)
    .where(Delivery.status == _PUBLISHING, Delivery.lease_until <= _at("now"))
    .order_by(Delivery.lease_until)
    .limit(bindparam("lim"))
)
# What falls due next, in order, up to a time: the daemon reads the coming seconds ahead, once, instead of looking at
# the queue again at every due time (one look a post).
_UPCOMING = (
    select(Delivery.next_attempt_at, Delivery.channel)
    .where(
        Delivery.status == _QUEUED, Delivery.next_attempt_at > _at("after"), Delivery.next_attempt_at <= _at("until")
    )
    .order_by(Delivery.next_attempt_at)
    .limit(bindparam("lim"))
)
_NEWEST_ID = select(func.max(Delivery.id))
# A cycle's first read, one statement of four index probes: the newest delivery, the first time anything is due (is
# something due now?), the next one after this cycle's, and the first lease to run out (has one run out?). An idle
# or a routine cycle needs nothing more.
_GLANCE = select(
    _NEWEST_ID.scalar_subquery(),
    select(func.min(Delivery.next_attempt_at)).where(Delivery.status == _QUEUED).scalar_subquery(),
    _NEXT_DUE.scalar_subquery(),
    select(func.min(Delivery.lease_until)).where(Delivery.status == _PUBLISHING).scalar_subquery(),
)
#: What a claim sets on the delivery it takes (one channel's claim and the claims of many alike).
_CLAIMED_VALUES = {
    "status": _PUBLISHING,
    "attempts": Delivery.attempts + 1,
    "lease_owner": bindparam("owner"),
    "lease_until": _at("until"),
    "updated_at": _at("now"),
}


def _due_on(channel: Any) -> tuple[Any, ...]:
    """The queued deliveries of ``channel`` (a parameter or a column) due at the ``now`` parameter."""
    return (Delivery.channel == channel, Delivery.status == _QUEUED, Delivery.next_attempt_at <= _at("now"))


_CLAIM = (
    update(Delivery)
    .where(
        Delivery.id
        == select(Delivery.id)
        .where(*_due_on(bindparam("ch")))
        .order_by(Delivery.due_at, Delivery.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery(),
        Delivery.status == _QUEUED,
    )
    .values(_CLAIMED_VALUES)
)
_OPEN_ATTEMPT = insert(Attempt).returning(Attempt.id)
_CONTENT = select(
    Post.text, Post.link, Post.media, Post.category, Post.campaign, Post.utm_content, Post.variants
).where(Post.id == bindparam("pid"))


def next_lease_expiry(session: Session, after: datetime) -> datetime | None:
    """When the next lease of a delivery being published runs out, strictly after ``after``."""
    value: datetime | None = session.connection().execute(_NEXT_LEASE_EXPIRY, {"after": after}).scalar()
    return value


def upcoming(session: Session, after: datetime, until: datetime, limit: int) -> list[tuple[datetime, str]]:
    """``(due time, channel)`` of the queued deliveries falling due after ``after`` up to ``until``, the first
    ``limit`` of them in time order."""
    rows: Any = session.connection().execute(_UPCOMING, {"after": after, "until": until, "lim": limit})
    return [(row[0], row[1]) for row in rows]


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

# SQLite takes a claim in two statements: the claiming UPDATE returns, besides the delivery, the post's content and
# whether the channel has another delivery due (subqueries in RETURNING); the attempt's INSERT follows.
# (Written out: SQLAlchemy renders the columns of RETURNING without their table, which would make "the channel's
# other deliveries" compare each row with itself. RETURNING sees the row as updated: its updated_at is the now. A
# value of RETURNING has no column affinity, so without the CAST SQLite could not search the channel's index with
# it and ranged over every due delivery instead, which a burst makes many.)
_CLAIM_RETURNING_ALL = _CLAIM.returning(
    *_CLAIMED,
    *(
        literal_column(f"(SELECT posts.{c.key} FROM posts WHERE posts.id = deliveries.post_id)", c.type).label(c.key)
        for c in _CONTENT.selected_columns
    ),
    literal_column(
        "EXISTS (SELECT 1 FROM deliveries AS other WHERE other.channel = CAST(deliveries.channel AS TEXT) "
        "AND other.status = "
        f"'{_QUEUED}' AND other.next_attempt_at <= deliveries.updated_at AND other.id != deliveries.id)",
        Boolean(),
    ).label("more_due"),
)


def claim(session: Session, channel: str, now: datetime, owner: str, lease: timedelta) -> Claim | None:
    """Take the channel's oldest due delivery and open an attempt on it, or None when nothing is due.

    On SQLite the claimed row is found by a primary-key equality on a scalar subquery: a plain ``IN`` let SQLite's
    planner walk every queued row instead. On PostgreSQL it is one channel of :func:`claim_each`'s statement.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return _claim_many(conn, [channel], now, owner, lease)[0]
    params = {"ch": channel, "now": now, "owner": owner, "until": now + lease}
    row = conn.execute(_CLAIM_RETURNING_ALL, params).first()
    if row is None:
        return None
    attempt_id = conn.execute(
        _OPEN_ATTEMPT, {"delivery_id": row.id, "number": row.attempts, "owner": owner, "started_at": now}
    ).scalar_one()
    return _claim_from(row, row.attempts, attempt_id, row, now, more_due=bool(row.more_due))


# PostgreSQL takes the claims of one or many channels (the daemon's group commit gathers them) in one statement:
# each channel's oldest due delivery through a LATERAL probe of its index range, the claiming UPDATE and the
# attempts' INSERT in data-modifying CTEs, the posts' content and whether each channel has another delivery due.
# The round trips, not the statements' work, set the pace there: N claims in one cost a fraction of N.
_CHANNELS = func.unnest(bindparam("chs", type_=ARRAY(String))).table_valued("name").render_derived(name="due_on")
_OLDEST = (
    select(Delivery.id)
    .where(*_due_on(_CHANNELS.c.name))
    .order_by(Delivery.due_at, Delivery.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .lateral("oldest")
)
_PICKED = select(_OLDEST.c.id).select_from(_CHANNELS).join(_OLDEST, true()).cte("picked")
_CLAIMED_MANY = (
    update(Delivery)
    .where(Delivery.id == _PICKED.c.id, Delivery.status == _QUEUED)
    .values(_CLAIMED_VALUES)
    .returning(*_CLAIMED)
    .cte("claimed")
)
_OPENED_MANY = (
    insert(Attempt)
    .from_select(
        ["delivery_id", "number", "owner", "started_at"],
        select(_CLAIMED_MANY.c.id, _CLAIMED_MANY.c.attempts, bindparam("owner", type_=String()), _at("now")),
    )
    .returning(Attempt.id, Attempt.delivery_id)
    .cte("opened")
)
_CLAIM_MANY = (
    select(
        *_CLAIMED_MANY.c,
        _OPENED_MANY.c.id.label("attempt_id"),
        *_CONTENT.selected_columns,
        exists(select(Delivery.id).where(*_due_on(_CLAIMED_MANY.c.channel), Delivery.id != _CLAIMED_MANY.c.id)).label(
            "more_due"
        ),
    )
    .join_from(_CLAIMED_MANY, _OPENED_MANY, _OPENED_MANY.c.delivery_id == _CLAIMED_MANY.c.id)
    .join(Post, Post.id == _CLAIMED_MANY.c.post_id)
)

ClaimCall = tuple[str, datetime, str, timedelta]
"""The arguments of one :func:`claim` after the session: channel, now, owner, lease."""


def claim_each(session: Session, calls: Sequence[ClaimCall]) -> list[Claim | None]:
    """:func:`claim` for each of ``calls``, in order; on PostgreSQL one statement for all (when they are for distinct
    channels and one owner and lease, as the daemon's are), with the latest of their ``now``."""
    channels = [c[0] for c in calls]
    owners = {(c[2], c[3]) for c in calls}
    conn = session.connection()
    if conn.dialect.name != "postgresql" or len(owners) > 1 or len(set(channels)) < len(channels):
        return [claim(session, *c) for c in calls]
    (owner, lease), now = owners.pop(), max(c[1] for c in calls)
    return _claim_many(conn, channels, now, owner, lease)


def _claim_many(conn: Any, channels: list[str], now: datetime, owner: str, lease: timedelta) -> list[Claim | None]:
    """On PostgreSQL: the claims of distinct ``channels``, in their order (None where nothing is due)."""
    params = {"chs": channels, "now": now, "owner": owner, "until": now + lease}
    got = {
        row.channel: _claim_from(row, row.attempts, row.attempt_id, row, now, more_due=row.more_due)
        for row in conn.execute(_CLAIM_MANY, params)
    }
    return [got.get(channel) for channel in channels]


def _claim_of(session: Session, row: Any, number: int, now: datetime, owner: str, *, more_due: bool = False) -> Claim:
    """Open the attempt on a claimed delivery (``row`` has the columns of ``_CLAIMED``)."""
    conn = session.connection()
    attempt_id = conn.execute(
        _OPEN_ATTEMPT, {"delivery_id": row.id, "number": number, "owner": owner, "started_at": now}
    ).scalar_one()
    post = conn.execute(_CONTENT, {"pid": row.post_id}).one()
    return _claim_from(row, number, attempt_id, post, now, more_due=more_due)


def _claim_from(row: Any, number: int, attempt_id: int, post: Any, now: datetime, *, more_due: bool) -> Claim:
    return Claim(
        delivery_id=row.id,
        attempt_id=attempt_id,
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
    ids = session.connection().execute(_EXPIRED, {"now": now, "lim": limit + len(exclude)}).scalars()
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
    values: dict[str, Any] = {k: bindparam(f"d_{k}", type_=deliveries[k].type) for k in delivery_keys}
    if undo_attempt:
        values["attempts"] = Delivery.attempts - 1
    move = update(Delivery).where(Delivery.id == bindparam("did"), Delivery.status == _PUBLISHING).values(values)
    if not one_trip:
        return close, move
    closed = close.returning(Attempt.delivery_id).cte("closed")
    return (move.where(Delivery.id == select(closed.c.delivery_id).scalar_subquery()),)


def _settle(
    session: Session,
    claim: Claim,
    outcome: Outcome,
    now: datetime,
    error: str | None,
    *,
    undo_attempt: bool = False,
    **values: Any,
) -> bool:
    """Close the open attempt with ``outcome`` and, if it was still open, move the delivery on and free its lease
    (``undo_attempt``: the attempt does not count, it was never sent).

    False when the attempt was already settled elsewhere: then nothing changes."""
    attempt: dict[str, Any] = {"outcome": outcome.value, "finished_at": now, "error": error}
    if "remote_id" in values:
        attempt["remote_id"] = values["remote_id"]
    delivery = {"updated_at": now, "lease_owner": None, "lease_until": None, **values}
    conn = session.connection()
    statements = _settle_statements(tuple(attempt), tuple(delivery), undo_attempt, conn.dialect.name == "postgresql")
    params: dict[str, Any] = {"aid": claim.attempt_id, "did": claim.delivery_id}
    params.update({f"a_{k}": v for k, v in attempt.items()})
    params.update({f"d_{k}": v for k, v in delivery.items()})
    # The delivery moves on only if the attempt was still open (all() stops at the first UPDATE that changed nothing).
    return all(rowcount(conn.execute(statement, params)) for statement in statements)


_PUBLISHED_CLEARS: dict[str, Any] = {"last_error": None, "next_attempt_at": None, "native_id": None, "native_at": None}
"""What a published delivery no longer has (its one outcome and its many outcomes alike)."""


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
    )
    .table_valued("aid", "did", "at", "note", "rid", "url")
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
        Delivery.status == _PUBLISHING,
    )
    .values(
        status=Status.PUBLISHED.value,
        published_at=_PUBLISHED_ROWS.c.at,
        updated_at=_PUBLISHED_ROWS.c.at,
        remote_id=_PUBLISHED_ROWS.c.rid,
        remote_url=_PUBLISHED_ROWS.c.url,
        lease_owner=None,
        lease_until=None,
        **_PUBLISHED_CLEARS,
    )
    .returning(_PUBLISHED_ROWS.c.aid)
)


def record_published_each(session: Session, calls: Sequence[tuple[Any, ...]]) -> list[bool]:
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
    }
    moved = set(conn.execute(_RECORD_PUBLISHED_MANY, params).scalars())
    return [c[0].attempt_id in moved for c in calls]


COMBINED: dict[Callable[..., Any], Callable[[Session, Any], list[Any]]] = {
    claim: claim_each,
    record_published: record_published_each,
}
"""Calls the daemon's group commit may run together as one (see :class:`scheduler.batch.WriteBatcher`)."""


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
    return _settle(session, claim, Outcome.ABANDONED, now, note, undo_attempt=True, status=Status.QUEUED.value)


_QUEUED_ON = select(func.count(), func.min(Delivery.next_attempt_at), func.max(Delivery.next_attempt_at)).where(
    Delivery.channel == bindparam("ch"), Delivery.status == _QUEUED
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
    newest, first_due, next_due, first_lease_end = session.connection().execute(_GLANCE, {"after": after}).one()
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
