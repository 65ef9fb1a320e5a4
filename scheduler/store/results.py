"""Results read back from the networks: which published deliveries are due a reading, the readings and the
audience as they are stored, and a post's history of readings (``smm stats``).

A delivery is read at planned ages after it was published (``[results] ages``). A reading is due when the largest
planned age that has passed has no reading yet: a daemon that was down past several ages takes one reading, for
the largest, and a reading that failed (stored with its ``error``) is not tried again before the next age. A
reading that found the post gone ends its collection. ``latest`` marks the newest reading with figures (no error,
not gone) of each delivery: exactly one per delivery that has one, moved in the transaction that stores the newer
reading, under a lock of the delivery's row (two daemons on PostgreSQL serialise there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Integer, bindparam, case, exists, literal, or_, select, update
from sqlalchemy.orm import Session

from scheduler.due import keeps_due_times
from scheduler.store import figures
from scheduler.store.common import at, upsert
from scheduler.tables import Status, audience_readings, deliveries, posts, result_readings

PUBLISHED = Status.PUBLISHED.value
_d = deliveries.c
_r = result_readings.c


@dataclass(frozen=True)
class DueReading:
    """A published delivery due a reading of its results at planned ``age`` (seconds after publishing)."""

    delivery_id: int
    post_id: int
    channel: str
    remote_id: str
    published_at: datetime
    age: int


@dataclass(frozen=True)
class Reading:
    """One reading of a delivery's results to store: figures (``None`` where the network gives none), or
    ``gone`` (the network no longer has the post), or ``error`` (the read failed; no figures)."""

    delivery_id: int
    age: int
    read_at: datetime
    views: int | None = None
    likes: int | None = None
    reposts: int | None = None
    comments: int | None = None
    gone: bool = False
    error: str | None = None

    @property
    def counts(self) -> bool:
        """Whether it holds figures (what ``latest`` marks)."""
        return self.error is None and not self.gone


@dataclass(frozen=True)
class StoredReading:
    """A reading as ``smm stats`` shows it."""

    age: int
    read_at: datetime
    views: int | None
    likes: int | None
    reposts: int | None
    comments: int | None
    gone: bool
    error: str | None
    latest: bool


@dataclass(frozen=True)
class DeliveryHistory:
    """A published (or other) delivery of a post with its readings, oldest first."""

    delivery_id: int
    channel: str
    network: str
    status: str
    published_at: datetime | None
    remote_url: str | None
    readings: tuple[StoredReading, ...]


def collection_window(ages: Sequence[int]) -> timedelta:
    """How long after publishing a delivery may still be read: its last planned age, and as long again for a
    reading the daemon's downtime made late. Older deliveries are never read (enabling the collection on a
    database with years of posts reads none of them), and the due readings' query ranges over this window only."""
    return timedelta(seconds=2 * max(ages))


def due_readings(
    session: Session, channels: Sequence[str], ages: Sequence[int], now: datetime, limit: int
) -> list[DueReading]:
    """Published deliveries on ``channels`` (with a remote id, not gone) whose largest planned age that has passed
    at ``now`` has no reading (and none of a larger age), oldest first, at most ``limit``."""
    if not channels or not ages:
        return []
    ordered = sorted(ages)
    # The largest planned age that has passed: published at or before now - age.
    planned = case(
        *((_d.published_at <= at(f"cut{i}"), literal(age, Integer)) for i, age in reversed(list(enumerate(ordered)))),
        else_=None,
    )
    taken = exists().where(_r.delivery_id == _d.id, or_(_r.age >= planned, _r.gone))
    query = (
        select(_d.id, _d.post_id, _d.channel, _d.remote_id, _d.published_at, planned.label("age"))
        .where(
            _d.status == PUBLISHED,
            _d.published_at > at("oldest"),
            _d.published_at <= at(f"cut{0}"),
            _d.channel.in_(bindparam("channels", expanding=True)),
            _d.remote_id.is_not(None),
            ~taken,
        )
        .order_by(_d.published_at, _d.id)
        .limit(bindparam("lim"))
    )
    params: dict[str, object] = {f"cut{i}": now - timedelta(seconds=age) for i, age in enumerate(ordered)}
    params |= {"oldest": now - collection_window(ordered), "channels": list(channels), "lim": limit}
    rows = session.connection().execute(query, params)
    return [DueReading(int(i), int(p), str(ch), str(rid), pub, int(age)) for i, p, ch, rid, pub, age in rows]


@keeps_due_times
def record_readings(session: Session, readings: Sequence[Reading]) -> int:
    """Store ``readings``, each once: a reading of a delivery at an age already stored (another daemon, a run
    before a restart) is left as it was. Moves ``latest`` to a new reading with figures of a larger age than the
    delivery's current latest. Returns how many were stored."""
    conn = session.connection()
    stored = 0
    for reading in readings:
        # Lock the delivery's row: readings of one delivery are stored one transaction at a time (PostgreSQL).
        locked = conn.execute(select(_d.id).where(_d.id == reading.delivery_id).with_for_update()).first()
        if locked is None:
            continue  # the post was deleted meanwhile
        new_id = conn.execute(
            upsert(conn.dialect.name, result_readings)
            .values(
                delivery_id=reading.delivery_id,
                age=reading.age,
                read_at=reading.read_at,
                views=reading.views,
                likes=reading.likes,
                reposts=reading.reposts,
                comments=reading.comments,
                gone=reading.gone,
                error=reading.error,
                latest=False,
            )
            .on_conflict_do_nothing(index_elements=[_r.delivery_id, _r.age])
            .returning(_r.id)
        ).scalar()
        if new_id is None:
            continue  # stored already
        stored += 1
        if reading.counts:
            current = conn.execute(_LATEST_OF, {"d": reading.delivery_id}).first()
            if current is None or current.age < reading.age:
                if current is not None:
                    conn.execute(update(result_readings).where(_r.id == current.id).values(latest=False))
                conn.execute(update(result_readings).where(_r.id == new_id).values(latest=True))
                figures.note_reading(
                    conn, reading.delivery_id, reading.views, reading.likes, reading.reposts, reading.comments
                )
    return stored


_LATEST_OF = select(_r.id, _r.age).where(_r.delivery_id == bindparam("d"), _r.latest.is_(True))


def audience_due(session: Session, channels: Sequence[str], day: date) -> list[str]:
    """The channels among ``channels`` whose audience has no reading on ``day`` (UTC) yet."""
    if not channels:
        return []
    rows = session.connection().execute(
        select(audience_readings.c.channel).where(
            audience_readings.c.day == day, audience_readings.c.channel.in_(list(channels))
        )
    )
    done = {row[0] for row in rows}
    return [name for name in channels if name not in done]


@keeps_due_times
def record_audience(session: Session, channel: str, members: int, read_at: datetime) -> None:
    """Store the channel's audience for ``read_at``'s UTC day; a second reading that day replaces the first."""
    day = read_at.astimezone(UTC).date()
    a = audience_readings.c
    conn = session.connection()
    changed = conn.execute(
        update(audience_readings).where(a.channel == channel, a.day == day).values(members=members, read_at=read_at)
    ).rowcount
    if not changed:
        conn.execute(audience_readings.insert().values(channel=channel, day=day, members=members, read_at=read_at))
    figures.note_audience(conn, channel, day)


def audience_of(session: Session, channels: Sequence[str]) -> dict[str, tuple[date, int]]:
    """Each channel's latest audience reading: its day and members."""
    a = audience_readings.c
    newest = select(a.channel, a.day, a.members).where(a.channel.in_(list(channels))).order_by(a.channel, a.day.desc())
    found: dict[str, tuple[date, int]] = {}
    for channel, day, members in session.connection().execute(newest):
        found.setdefault(channel, (day, members))
    return found


def history(session: Session, post_id: int) -> list[DeliveryHistory] | None:
    """Each delivery of post ``post_id`` with its readings, by delivery then by age; None when there is no such
    post."""
    conn = session.connection()
    if conn.execute(select(posts.c.id).where(posts.c.id == post_id)).first() is None:
        return None
    rows = conn.execute(
        select(_d.id, _d.channel, _d.network, _d.status, _d.published_at, _d.remote_url)
        .where(_d.post_id == post_id)
        .order_by(_d.id)
    ).all()
    readings: dict[int, list[StoredReading]] = {}
    if rows:
        found = conn.execute(
            select(
                _r.delivery_id,
                _r.age,
                _r.read_at,
                _r.views,
                _r.likes,
                _r.reposts,
                _r.comments,
                _r.gone,
                _r.error,
                _r.latest,
            )
            .where(_r.delivery_id.in_([row.id for row in rows]))
            .order_by(_r.delivery_id, _r.age)
        )
        for delivery_id, *fields in found:
            readings.setdefault(delivery_id, []).append(StoredReading(*fields))
    return [
        DeliveryHistory(
            row.id,
            row.channel,
            row.network,
            row.status,
            row.published_at,
            row.remote_url,
            tuple(readings.get(row.id, ())),
        )
        for row in rows
    ]


def last_published(session: Session, channels: Sequence[str]) -> dict[str, str]:
    """Each channel's most recently published delivery's remote id (``smm doctor`` reads it back)."""
    found: dict[str, str] = {}
    conn = session.connection()
    for channel in channels:
        remote_id = conn.execute(
            select(_d.remote_id)
            .where(_d.channel == channel, _d.status == PUBLISHED, _d.remote_id.is_not(None))
            .order_by(_d.published_at.desc())
            .limit(1)
        ).scalar()
        if remote_id is not None:
            found[channel] = str(remote_id)
    return found
