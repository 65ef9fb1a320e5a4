"""The report's figures table (:data:`scheduler.tables.delivery_figures`): one narrow row per published delivery,
kept where its sources change, so that ``smm report`` reads one table and joins nothing.

- :func:`catch_up` adds the deliveries published since a channel's last catch-up (from :data:`MARGIN` before it);
  it fills a channel whole the first time, and again when its time zone changed (the local keys depend on it). The
  daemon's results collection runs it after each run, ``smm report`` before it reads.
- :func:`note_reading`: a delivery's new latest reading, in the transaction that stores it.
- :func:`note_audience`: an audience reading, for the deliveries whose engagement divides by it.
- :func:`forget`: a delivery deleted from its network leaves the report.

A row's figures are its latest reading's; its engagement per 1,000 followers is ``(likes + reposts + comments) *
1000 / audience`` (the sum of those of the three the network gave; none given: none), where the audience is the
channel's reading of the UTC day of publication, else the latest one before it, else the earliest one after it
(none, or 0: no engagement). Local times are computed in SQL from the UTC epoch plus the channel zone's offset at
that instant, written into the statement as the zone's offsets and their transitions (:func:`zone_offsets`), so
that SQLite (which has no time zones) and PostgreSQL give the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Float,
    Integer,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.orm import Session

from scheduler.db import connection_of
from scheduler.due import keeps_due_times
from scheduler.errors import DatabaseError
from scheduler.store.common import upsert
from scheduler.tables import (
    Status,
    audience_readings,
    deliveries,
    delivery_figures,
    figure_channels,
    posts,
    result_readings,
)

SAMPLE_RANGE = 1 << 20
"""``delivery_figures.sample`` runs from 0 to this, excluded."""
_SPREAD = 648_055
"""Odd and near ``SAMPLE_RANGE`` / golden ratio: consecutive delivery ids get samples spread evenly over the range."""
MARGIN = timedelta(days=2)
"""How far before a channel's last catch-up the next one looks for publications: a publication is stamped with its
attempt's time, which a slow attempt or another daemon's clock may put a little before the catch-up that missed it."""
EXPLICIT = -1
"""``slot`` of a delivery placed at an explicit time (``--at``, ``--now``), not by the cadence."""
_ZONE_MARGIN = timedelta(days=400)
"""How far before the publications the zones' offsets are written out: a late delivery's due time precedes them."""

_f = delivery_figures.c


def zone_offsets(zone: tzinfo, start: datetime, end: datetime) -> list[tuple[int, int]]:
    """``zone``'s UTC offset in seconds from ``start`` to ``end``: ``[(from epoch second, offset), ...]``, the first
    at ``start``, then one at each change (found to the second)."""

    def offset(epoch: int) -> int:
        delta = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    t, stop = int(start.timestamp()), int(end.timestamp())
    out = [(t, offset(t))]
    step = 6 * 3600
    while t < stop:
        nxt = min(t + step, stop)
        if offset(nxt) != out[-1][1]:
            lo, hi = t, nxt  # offset(lo) is the current one, offset(hi) is not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == out[-1][1] else (lo, mid)
            out.append((hi, offset(hi)))
        t = nxt
    return out


def epoch(conn: Connection, column: ColumnElement[datetime]) -> ColumnElement[int]:
    """Whole seconds since 1970 of a stored UTC time."""
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    # date_part gives a float; EXTRACT gives a numeric, whose arithmetic is far slower over many rows
    return cast(func.floor(func.date_part("epoch", column)), BigInteger)


def _zone_case(seconds: ColumnElement[int], offsets: Sequence[tuple[int, int]]) -> ColumnElement[int]:
    if len(offsets) == 1:
        return literal(offsets[0][1], Integer)
    whens = [(seconds < offsets[i + 1][0], literal(offsets[i][1], Integer)) for i in range(len(offsets) - 1)]
    return case(*whens, else_=literal(offsets[-1][1], Integer))


def _local_time(
    seconds: ColumnElement[int],
    channel: ColumnElement[str],
    zones: Mapping[str, tzinfo],
    start: datetime,
    end: datetime,
) -> ColumnElement[int]:
    """The channel's local wall-clock time as seconds since 1970: ``seconds`` plus its zone's offset then."""
    by_zone: dict[str, list[str]] = {}
    zone_of: dict[str, tzinfo] = {}
    for name, zone in zones.items():
        by_zone.setdefault(str(zone), []).append(name)
        zone_of[str(zone)] = zone
    cases = {key: _zone_case(seconds, zone_offsets(zone_of[key], start, end)) for key in by_zone}
    keys = list(by_zone)
    if len(keys) == 1:
        return seconds + cases[keys[0]]
    whens = [(channel.in_(by_zone[key]), cases[key]) for key in keys[:-1]]
    return seconds + case(*whens, else_=cases[keys[-1]])


def _weekday(local: ColumnElement[int]) -> ColumnElement[int]:
    """Monday 0 to Sunday 6 of a local time in seconds since 1970 (a Thursday, 3)."""
    return (local // 86400 + 3) % 7


def day_date(conn: Connection, day: ColumnElement[int]) -> ColumnElement[date]:
    """The UTC date of a day number (days since 1970-01-01)."""
    if conn.dialect.name == "sqlite":
        return func.date(day * 86400, "unixepoch", type_=Date)
    return cast(func.timezone("UTC", func.to_timestamp(day * 86400)), Date)


def _engagement(
    conn: Connection,
    channel: ColumnElement[str],
    published: ColumnElement[int],
    likes: ColumnElement[int | None],
    reposts: ColumnElement[int | None],
    comments: ColumnElement[int | None],
) -> ColumnElement[float]:
    """Engagement per 1,000 followers of a delivery on ``channel`` published at ``published`` (epoch seconds)."""
    interactions = case(
        (and_(likes.is_(None), reposts.is_(None), comments.is_(None)), null()),
        else_=func.coalesce(likes, 0) + func.coalesce(reposts, 0) + func.coalesce(comments, 0),
    )
    a = audience_readings.c
    day = day_date(conn, published // 86400)
    before = select(a.members).where(a.channel == channel, a.day <= day).order_by(a.day.desc()).limit(1)
    after = select(a.members).where(a.channel == channel, a.day > day).order_by(a.day).limit(1)
    members = func.coalesce(before.scalar_subquery(), after.scalar_subquery())
    return cast(cast(interactions, Float) * 1000.0 / cast(func.nullif(members, 0), Float), Float)


@keeps_due_times
def catch_up(
    session: Session | Connection, zones: Mapping[str, tzinfo], now: datetime, *, batch: int | None = None
) -> bool:
    """Bring the figures of the channels ``zones`` (name to time zone) up to date at ``now``: add the deliveries
    published since each channel's last catch-up, and fill whole a channel new to the table or whose zone changed.

    With ``batch``, a whole fill adds at most that many deliveries per call and says whether there is more to do
    (False: call again), so that a caller sharing the database with posts keeps each transaction short; the
    channels being filled are caught up once their fill ends. Two catch-ups at once add each row once. Returns
    whether every channel is up to date."""
    if not zones:
        return True
    conn = connection_of(session)
    c = figure_channels.c
    known = {
        row.channel: row
        for row in conn.execute(select(c.channel, c.zone, c.filled_until, c.next_id).where(c.channel.in_(list(zones))))
    }
    changed = [name for name, zone in zones.items() if name not in known or known[name].zone != str(zone)]
    if changed:  # start (again) from the first delivery; the catch-ups after the fill look from its start
        conn.execute(delete(delivery_figures).where(_f.channel.in_(changed)))
        _set(conn, [{"channel": name, "zone": str(zones[name]), "filled_until": now, "next_id": 0} for name in changed])
    filling = {name for name in zones if name in changed or known[name].next_id is not None}
    kept = {name: zone for name, zone in zones.items() if name not in filling}
    if kept:
        since = min(known[name].filled_until for name in kept) - MARGIN
        recent = [deliveries.c.published_at >= since, ~exists().where(_f.delivery_id == deliveries.c.id)]
        _fill(conn, kept, recent, "INDEXED BY ix_deliveries_status_published_at")
        _set(
            conn,
            [{"channel": name, "zone": str(zone), "filled_until": now, "next_id": None} for name, zone in kept.items()],
        )
    for name in sorted(filling):
        start = 0 if name in changed else int(known[name].next_id)
        stop = _batch_end(conn, name, start, batch)
        d = deliveries.c
        _fill(conn, {name: zones[name]}, [d.id >= start] + ([d.id < stop] if stop is not None else []), "NOT INDEXED")
        started = now if name in changed else known[name].filled_until
        _set(conn, [{"channel": name, "zone": str(zones[name]), "filled_until": started, "next_id": stop}])
        if stop is not None:
            return False
    return True


def write_refused(exc: BaseException) -> str | None:
    """Why :func:`catch_up` failed, when it is because the database refuses this user's writes (a read-only file,
    a PostgreSQL role without the right, a read-only transaction); None for any other failure."""
    if isinstance(exc, DatabaseError) and "read-only" in str(exc):
        return str(exc)
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in ("42501", "25006"):  # insufficient privilege, read-only transaction
        return str(orig).strip().splitlines()[0]
    return None


def _batch_end(conn: Connection, channel: str, start: int, batch: int | None) -> int | None:
    """The delivery id before which the next ``batch`` published deliveries of ``channel`` from id ``start`` lie
    (None: to the end)."""
    if batch is None:
        return None
    d = deliveries.c
    found = conn.execute(
        select(d.id)
        .where(d.channel == channel, d.status == Status.PUBLISHED.value, d.id >= start)
        .order_by(d.id)
        .offset(batch)
        .limit(1)
        .with_hint(deliveries, "NOT INDEXED", "sqlite")
    ).scalar()
    return None if found is None else int(found)


def _set(conn: Connection, rows: list[dict[str, object]]) -> None:
    c = figure_channels.c
    insert = upsert(conn.dialect.name, figure_channels)
    columns = ("zone", "filled_until", "next_id")
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[c.channel], set_={name: insert.excluded[name] for name in columns}
        ),
        rows,
    )


def _fill(conn: Connection, zones: Mapping[str, tzinfo], which: list[ColumnElement[bool]], hint: str) -> None:
    """Add the rows of the published deliveries of ``zones``' channels that meet ``which`` (a row already there,
    another catch-up's or an earlier one's, is left as it is). ``hint`` tells SQLite which way to find them (left
    to itself, it walks all the channel's published deliveries through the index on channel and status)."""
    d, p, r = deliveries.c, posts.c, result_readings.c
    chosen = [d.status == Status.PUBLISHED.value, d.channel.in_(list(zones)), *which]
    bounds = select(func.min(d.published_at), func.max(d.published_at)).where(*chosen)
    first, last = conn.execute(bounds.with_hint(deliveries, hint, "sqlite")).one()
    if first is None:
        return
    start, end = first - _ZONE_MARGIN, last + timedelta(days=1)
    published = epoch(conn, d.published_at)
    local_pub = _local_time(published, d.channel, zones, start, end)
    local_due = _local_time(epoch(conn, d.due_at), d.channel, zones, start, end)
    source = (
        select(
            d.channel,
            p.category,
            func.coalesce(p.campaign, ""),
            case((d.slotted, _weekday(local_due) * 1440 + local_due % 86400 // 60), else_=literal(EXPLICIT, Integer)),
            _weekday(local_pub),
            local_pub % 86400 // 3600,
            d.id,
            published,
            case((r.id.is_(None), 0), else_=1),
            r.views,
            r.likes,
            r.reposts,
            r.comments,
            _engagement(conn, d.channel, published, r.likes, r.reposts, r.comments),
            cast(d.id, BigInteger) % SAMPLE_RANGE * _SPREAD % SAMPLE_RANGE,
        )
        .select_from(
            deliveries.join(posts, p.id == d.post_id).outerjoin(result_readings, and_(r.delivery_id == d.id, r.latest))
        )
        .where(*chosen)
        .with_hint(deliveries, hint, "sqlite")
    )
    columns = [col.name for col in delivery_figures.c]
    insert = upsert(conn.dialect.name, delivery_figures).from_select(columns, source)
    conn.execute(insert.on_conflict_do_nothing())


def note_reading(
    session: Session | Connection,
    delivery_id: int,
    views: int | None,
    likes: int | None,
    reposts: int | None,
    comments: int | None,
) -> None:
    """A delivery's new latest reading (a delivery without a row yet gets it at the next catch-up)."""
    conn = connection_of(session)
    conn.execute(
        update(delivery_figures)
        .where(_f.delivery_id == delivery_id)
        .values(
            measured=1,
            views=views,
            likes=likes,
            reposts=reposts,
            comments=comments,
            engagement=_engagement(
                conn,
                _f.channel,
                _f.published,
                literal(likes, Integer),
                literal(reposts, Integer),
                literal(comments, Integer),
            ),
        )
    )


def note_audience(session: Session | Connection, channel: str, day: date) -> None:
    """The channel's audience reading of ``day`` was stored: the engagement of the deliveries that divide by it
    (published from ``day`` to the next reading, and before it when it is the first) is computed again."""
    conn = connection_of(session)
    a = audience_readings.c
    earlier = conn.execute(select(func.max(a.day)).where(a.channel == channel, a.day < day)).scalar()
    later = conn.execute(select(func.min(a.day)).where(a.channel == channel, a.day > day)).scalar()
    which = [_f.channel == channel]
    if earlier is not None:
        which.append(_f.published >= _day_start(day))
    if later is not None:
        which.append(_f.published < _day_start(later))
    conn.execute(
        update(delivery_figures)
        .where(*which)
        .values(engagement=_engagement(conn, _f.channel, _f.published, _f.likes, _f.reposts, _f.comments))
    )


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def forget(session: Session | Connection, delivery_id: int) -> None:
    """A delivery is no longer published (deleted from its network): its row goes."""
    connection_of(session).execute(delete(delivery_figures).where(_f.delivery_id == delivery_id))
