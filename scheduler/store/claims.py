"""Claims: a delivery taken for publishing (or reconciling), with the attempt opened on it.

The publishing state machine in SQL is this package: claims here, their outcomes in :mod:`.outcomes`, leases in
:mod:`.leases`, the reads of the queue in :mod:`.queue`, native pre-scheduling in :mod:`.native`.

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Boolean,
    ColumnElement,
    Connection,
    String,
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

from scheduler.db import rowcount
from scheduler.due import keeps_due_times
from scheduler.models import Attempt, Delivery, Post, Status
from scheduler.render import PostContent, StoredPost
from scheduler.store.common import PUBLISHING, QUEUED, at


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


#: What a claim sets on the delivery it takes (one channel's claim and the claims of many alike).
_CLAIMED_VALUES = {
    "status": PUBLISHING,
    "attempts": Delivery.attempts + 1,
    "lease_owner": bindparam("owner"),
    "lease_until": at("until"),
    "updated_at": at("now"),
}


def _due_on(channel: BindParameter[str] | ColumnElement[str]) -> tuple[ColumnElement[bool], ...]:
    """The queued deliveries of ``channel`` (a parameter or a column) due at the ``now`` parameter."""
    return (Delivery.channel == channel, Delivery.status == QUEUED, Delivery.next_attempt_at <= at("now"))


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
        Delivery.status == QUEUED,
    )
    .values(_CLAIMED_VALUES)
)
_OPEN_ATTEMPT = insert(Attempt).returning(Attempt.id)
_CONTENT = select(
    Post.text, Post.link, Post.media, Post.category, Post.campaign, Post.utm_content, Post.variants
).where(Post.id == bindparam("pid"))


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


class ClaimedRow(Protocol):
    """A claimed delivery as its statement returns it (the columns of ``_CLAIMED``)."""

    @property
    def id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def post_id(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def next_attempt_at(self) -> datetime | None: ...
    @property
    def native_id(self) -> str | None: ...
    @property
    def native_at(self) -> datetime | None: ...


class _ClaimedWithContent(ClaimedRow, StoredPost, Protocol):
    """A claimed delivery with its post's content and whether its channel has more due (``_CLAIM_RETURNING_ALL``)."""

    @property
    def more_due(self) -> bool: ...


class _ClaimedOpened(_ClaimedWithContent, Protocol):
    """As :class:`_ClaimedWithContent`, with the attempt opened in the same statement (``_CLAIM_MANY``)."""

    @property
    def attempt_id(self) -> int: ...


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
        f"'{QUEUED}' AND other.next_attempt_at <= deliveries.updated_at AND other.id != deliveries.id)",
        Boolean(),
    ).label("more_due"),
)


@keeps_due_times
def claim(session: Session, channel: str, now: datetime, owner: str, lease: timedelta) -> Claim | None:
    """Take the channel's oldest due delivery and open an attempt on it, or None when nothing is due.

    On SQLite the claimed row is found by a primary-key equality on a scalar subquery: a plain ``IN`` let SQLite's
    planner walk every queued row instead. On PostgreSQL it is one channel of :func:`claim_each`'s statement.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return _claim_many(conn, [channel], now, owner, lease)[0]
    params = {"ch": channel, "now": now, "owner": owner, "until": now + lease}
    row: _ClaimedWithContent | None = conn.execute(_CLAIM_RETURNING_ALL, params).first()
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
    .where(Delivery.id == _PICKED.c.id, Delivery.status == QUEUED)
    .values(_CLAIMED_VALUES)
    .returning(*_CLAIMED)
    .cte("claimed")
)
_OPENED_MANY = (
    insert(Attempt)
    .from_select(
        ["delivery_id", "number", "owner", "started_at"],
        select(_CLAIMED_MANY.c.id, _CLAIMED_MANY.c.attempts, bindparam("owner", type_=String()), at("now")),
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


def _claim_many(
    conn: Connection, channels: list[str], now: datetime, owner: str, lease: timedelta
) -> list[Claim | None]:
    """On PostgreSQL: the claims of distinct ``channels``, in their order (None where nothing is due)."""
    params = {"chs": channels, "now": now, "owner": owner, "until": now + lease}
    rows: Iterable[_ClaimedOpened] = conn.execute(_CLAIM_MANY, params)
    got = {row.channel: _claim_from(row, row.attempts, row.attempt_id, row, now, more_due=row.more_due) for row in rows}
    return [got.get(channel) for channel in channels]


def _claim_of(
    session: Session, row: ClaimedRow, number: int, now: datetime, owner: str, *, more_due: bool = False
) -> Claim:
    """Open the attempt on a claimed delivery (``row`` has the columns of ``_CLAIMED``)."""
    conn = session.connection()
    attempt_id = conn.execute(
        _OPEN_ATTEMPT, {"delivery_id": row.id, "number": number, "owner": owner, "started_at": now}
    ).scalar_one()
    post = conn.execute(_CONTENT, {"pid": row.post_id}).one()
    return _claim_from(row, number, attempt_id, post, now, more_due=more_due)


def _claim_from(
    row: ClaimedRow, number: int, attempt_id: int, post: StoredPost, now: datetime, *, more_due: bool
) -> Claim:
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
