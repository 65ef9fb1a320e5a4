"""The report's SQL: a period's published deliveries with their latest results and their channel's audience, grouped
and aggregated in the database (counts, totals, medians); rows come back one per group, never one per delivery.

Within one read transaction (:func:`open_base`, a context manager):

1. the period's published deliveries of the report's channels go into a temporary table (:data:`BASE`), one row
   each, in one ``INSERT ... SELECT``: the group keys (channel, category, campaign, the channel's local slot,
   weekday and hour) and the figures (the latest reading's views, likes, reposts and comments, and the engagement
   per 1,000 followers, defined in :mod:`scheduler.report`);
2. :func:`group_figures` aggregates it by a grouping: one ``GROUP BY`` for the counts and totals, and the medians
   (PostgreSQL: ``percentile_cont(0.5)`` in the same statement; SQLite, which has no such aggregate: an index on
   the grouping's columns and the metric, walked to the middle of each group, one statement per group and metric);
3. :func:`audiences` reads each channel's first and last audience reading of the period (one statement).

Local times are computed in SQL from the UTC epoch plus the channel zone's UTC offset at that instant, written into
the statement as the zone's offsets and their transitions over the period (:func:`zone_offsets`), so that SQLite
(which has no time zones) and PostgreSQL give the same keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    true,
)
from sqlalchemy.sql import Select

from scheduler.mix import COMMERCIAL
from scheduler.tables import Status, audience_readings, deliveries, posts, result_readings

METRICS = ("views", "likes", "reposts", "comments")
"""The figures a network gives of a post, as stored in ``result_readings``."""
ENGAGEMENT = "engagement"
"""The base table's column of engagement per 1,000 followers."""

BASE = Table(
    "smm_report_base",
    MetaData(),
    Column("delivery", Integer),  # the delivery's id (the HTML page lists the best and the worst posts)
    Column("channel", String(64)),
    Column("category", String(16)),
    Column("campaign", String(128)),  # "" for none
    Column("slot", Integer),  # local weekday (0 = Monday) * 1440 + minute of day of due_at; -1: not slotted
    Column("weekday", Integer),  # local weekday of published_at, 0 = Monday
    Column("hour", Integer),  # local hour of published_at
    Column("commercial", Integer),  # 1 or 0
    Column("measured", Integer),  # 1 when the delivery has a successful reading
    *(Column(name, Integer) for name in METRICS),
    Column(ENGAGEMENT, Float),
    prefixes=["TEMPORARY"],
)
"""One row per published delivery of the period: the temporary table every aggregate reads."""

AUDIENCE = Table(
    "smm_report_audience",
    MetaData(),
    Column("channel", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),  # days since 1970-01-01, UTC
    Column("members", Integer),
    prefixes=["TEMPORARY"],
)
"""Each channel's audience on each day of the period: what a delivery's engagement per follower divides by."""

_WORK_MEM = "64MB"
"""PostgreSQL's memory for each sort of the report's transaction (its default, 4 MB, sorts a million rows on disk)."""

EXPLICIT = -1
"""``BASE.slot`` of a delivery placed at an explicit time (``--at``, ``--now``), not by the cadence."""

_ZONE_MARGIN = timedelta(days=400)
"""How far before the period the zones' offsets are written out: a late delivery's due time precedes it."""


@dataclass(frozen=True)
class Figure:
    """One metric of one group: how many deliveries have it, its total (None for engagement) and its median; None
    where no delivery of the group has it."""

    n: int
    total: int | None
    median: float | None


@dataclass(frozen=True)
class GroupFigures:
    """One group's row: its key (the grouping's columns), its deliveries, those with results, and each metric."""

    key: tuple[str | int, ...]
    posts: int
    measured: int
    metrics: Mapping[str, Figure]


@dataclass(frozen=True)
class AudienceSpan:
    """A channel's first and last audience reading read within the period."""

    channel: str
    first_day: date
    first: int
    last_day: date
    last: int


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


def _epoch(conn: Connection, column: ColumnElement[datetime]) -> ColumnElement[int]:
    """Whole seconds since 1970 of a stored UTC time."""
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    # date_part gives a float; EXTRACT gives a numeric, whose arithmetic cost a second a million rows
    return cast(func.floor(func.date_part("epoch", column)), BigInteger)


def _zone_case(epoch: ColumnElement[int], offsets: Sequence[tuple[int, int]]) -> ColumnElement[int]:
    if len(offsets) == 1:
        return literal(offsets[0][1], Integer)
    whens = [(epoch < offsets[i + 1][0], literal(offsets[i][1], Integer)) for i in range(len(offsets) - 1)]
    return case(*whens, else_=literal(offsets[-1][1], Integer))


def _local_time(
    epoch: ColumnElement[int],
    channel: ColumnElement[str],
    channels: Mapping[str, tzinfo],
    start: datetime,
    end: datetime,
) -> ColumnElement[int]:
    """The channel's local wall-clock time as seconds since 1970: ``epoch`` plus its zone's offset at that instant."""
    by_zone: dict[str, list[str]] = {}
    zone_of: dict[str, tzinfo] = {}
    for name, zone in channels.items():
        by_zone.setdefault(str(zone), []).append(name)
        zone_of[str(zone)] = zone
    cases = {key: _zone_case(epoch, zone_offsets(zone_of[key], start, end)) for key in by_zone}
    keys = list(by_zone)
    if len(keys) == 1:
        return epoch + cases[keys[0]]
    whens = [(channel.in_(by_zone[key]), cases[key]) for key in keys[:-1]]
    return epoch + case(*whens, else_=cases[keys[-1]])


def _weekday(local: ColumnElement[int]) -> ColumnElement[int]:
    """Monday 0 to Sunday 6 of a local time in seconds since 1970 (a Thursday, 3)."""
    return (local // 86400 + 3) % 7


def _day_date(conn: Connection, day: ColumnElement[int]) -> ColumnElement[date]:
    """The UTC date of a day number (days since 1970-01-01)."""
    if conn.dialect.name == "sqlite":
        return func.date(day * 86400, "unixepoch", type_=Date)
    return cast(func.timezone("UTC", func.to_timestamp(day * 86400)), Date)


def _fill_audience(conn: Connection, since: datetime, until: datetime, channels: Sequence[str]) -> None:
    """:data:`AUDIENCE`: each channel's audience on each day of the period, from its reading of that day, else the
    latest one before, else the earliest one after (``channels`` x days rows, each two index probes)."""
    a = audience_readings.c
    first, last = int(since.timestamp()) // 86400, (math.ceil(until.timestamp()) - 1) // 86400
    days = select(literal(first, Integer).label("n")).cte("days", recursive=True)
    days = days.union_all(select(days.c.n + 1).where(days.c.n < last))
    # the channels with readings: the others have no audience on any day
    names = select(a.channel.label("name")).where(a.channel.in_(channels)).distinct().subquery("names")
    day = _day_date(conn, days.c.n)
    before = select(a.members).where(a.channel == names.c.name, a.day <= day).order_by(a.day.desc()).limit(1)
    after = select(a.members).where(a.channel == names.c.name, a.day > day).order_by(a.day).limit(1)
    rows = select(names.c.name, days.c.n, func.coalesce(before.scalar_subquery(), after.scalar_subquery()))
    conn.execute(
        AUDIENCE.insert().from_select(["channel", "day", "members"], rows.select_from(days.join(names, true())))
    )


def _source(conn: Connection, since: datetime, until: datetime, channels: Mapping[str, tzinfo]) -> Select[Any]:
    """One row of :data:`BASE` per delivery published in ``[since, until)`` on ``channels``."""
    d, p, r, au = deliveries.c, posts.c, result_readings.c, AUDIENCE.c
    start, end = since - _ZONE_MARGIN, until + timedelta(days=1)
    published = _epoch(conn, d.published_at)
    local_pub = _local_time(published, d.channel, channels, start, end)
    local_due = _local_time(_epoch(conn, d.due_at), d.channel, channels, start, end)
    interactions = case(
        (and_(r.likes.is_(None), r.reposts.is_(None), r.comments.is_(None)), null()),
        else_=func.coalesce(r.likes, 0) + func.coalesce(r.reposts, 0) + func.coalesce(r.comments, 0),
    )
    engagement = cast(interactions, Float) * 1000.0 / cast(func.nullif(au.members, 0), Float)
    joined = (
        deliveries.join(posts, p.id == d.post_id)
        .outerjoin(result_readings, and_(r.delivery_id == d.id, r.latest))
        .outerjoin(AUDIENCE, and_(au.channel == d.channel, au.day == published // 86400))
    )
    return (
        select(
            d.id,
            d.channel,
            p.category,
            func.coalesce(p.campaign, ""),
            case((d.slotted, _weekday(local_due) * 1440 + local_due % 86400 // 60), else_=literal(EXPLICIT, Integer)),
            _weekday(local_pub),
            local_pub % 86400 // 3600,
            case((p.category == COMMERCIAL, 1), else_=0),
            case((r.id.is_(None), 0), else_=1),
            *(r[name] for name in METRICS),
            engagement,
        )
        .select_from(joined)
        .where(
            d.status == Status.PUBLISHED.value,
            d.published_at >= since,
            d.published_at < until,
            d.channel.in_(list(channels)),
        )
    )


@contextmanager
def open_base(conn: Connection, since: datetime, until: datetime, channels: Mapping[str, tzinfo]) -> Iterator[None]:
    """Fill :data:`BASE` with the deliveries published in ``[since, until)`` on ``channels`` (name to time zone),
    for the statements run inside; the temporary tables are dropped after."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")
    AUDIENCE.create(conn)
    BASE.create(conn)
    try:
        if channels:
            _fill_audience(conn, since, until, list(channels))
            conn.execute(BASE.insert().from_select([c.name for c in BASE.c], _source(conn, since, until, channels)))
        yield
    finally:
        BASE.drop(conn)
        AUDIENCE.drop(conn)


def group_figures(conn: Connection, keys: Sequence[str], metrics: Sequence[str]) -> list[GroupFigures]:
    """:data:`BASE` grouped by the columns ``keys``: each group's deliveries, those measured, and for each of
    ``metrics`` (names of :data:`METRICS` or :data:`ENGAGEMENT`) its count, total and median."""
    b = BASE.c
    cols = [b[k] for k in keys]
    sqlite = conn.dialect.name == "sqlite"
    fields: list[ColumnElement[Any]] = [func.count(), func.sum(b.measured)]
    for m in metrics:
        fields += [func.count(b[m]), func.sum(b[m]) if m != ENGAGEMENT else null()]
        if not sqlite:
            fields.append(func.percentile_cont(0.5).within_group(b[m]))
    rows = conn.execute(select(*cols, *fields).group_by(*cols)).all()
    width, per = len(keys), 2 if sqlite else 3
    out = []
    for row in rows:
        key = tuple(row[:width])
        figures = {}
        for i, m in enumerate(metrics):
            n, total = int(row[width + 2 + i * per]), row[width + 3 + i * per]
            median = (_sqlite_median(conn, keys, key, m, n) if n else None) if sqlite else row[width + 4 + i * per]
            figures[m] = Figure(
                n=n,
                total=None if total is None else int(total),
                median=None if median is None else float(median),
            )
        out.append(GroupFigures(key, int(row[width]), int(row[width + 1] or 0), figures))
    return out


def _sqlite_median(conn: Connection, keys: Sequence[str], key: tuple[object, ...], metric: str, n: int) -> float:
    """The median of ``metric`` over the ``n`` rows of :data:`BASE` of one group that have it: SQLite has no
    median aggregate, so an index on the group's columns and the metric (made once) is walked to the middle one or
    two rows. An index and a walk cost less than ``row_number()`` over each group (measured: bench/RESULTS.md, B11)."""
    value = BASE.c[metric]
    columns = [*keys, metric]  # names of BASE's columns, not input
    index = f"{BASE.name}_{'_'.join(columns)}"
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {index} ON {BASE.name} ({', '.join(columns)})")
    middle = (
        select(value.label("v"))
        .where(*(BASE.c[k] == bindparam(f"k{i}") for i, k in enumerate(keys)), value.is_not(None))
        .order_by(value)
        .limit(bindparam("lim"))
        .offset(bindparam("off"))
        .subquery()
    )
    params: dict[str, object] = {f"k{i}": k for i, k in enumerate(key)} | {"lim": 2 - n % 2, "off": (n - 1) // 2}
    return float(conn.execute(select(func.avg(middle.c.v)), params).scalar_one())


def audiences(conn: Connection, channels: Sequence[str], since: datetime, until: datetime) -> list[AudienceSpan]:
    """Each channel's first and last audience reading read within ``[since, until)`` (channels without one are
    left out)."""
    a = audience_readings.c
    within = and_(
        a.channel.in_(list(channels)),
        a.day >= since.astimezone(UTC).date(),
        a.day <= until.astimezone(UTC).date(),
        a.read_at >= since,
        a.read_at < until,
    )
    span = (
        select(a.channel, func.min(a.day).label("first"), func.max(a.day).label("last"))
        .where(within)
        .group_by(a.channel)
        .subquery()
    )
    first, last = audience_readings.alias("first_reading"), audience_readings.alias("last_reading")
    rows = conn.execute(
        select(span.c.channel, span.c.first, first.c.members, span.c.last, last.c.members)
        .join(first, and_(first.c.channel == span.c.channel, first.c.day == span.c.first))
        .join(last, and_(last.c.channel == span.c.channel, last.c.day == span.c.last))
    )
    return [AudienceSpan(ch, day0, int(n0), day1, int(n1)) for ch, day0, n0, day1, n1 in rows]
