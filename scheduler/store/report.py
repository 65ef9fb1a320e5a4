"""The report's SQL: the period's rows of the figures table (:mod:`scheduler.store.figures`, one per published
delivery) grouped and aggregated in the database (counts, totals, medians); rows come back one per group, never one
per delivery.

Within one read transaction (:func:`open_base`, a context manager), two temporary tables:

1. :data:`FINE`: the period's figures grouped by every key at once (channel, category, campaign, local slot,
   weekday and hour), with each group's count and total of each figure. On SQLite the figures table is stored in
   the order of these keys, so that this reads it once and sorts nothing. Every grouping's counts and totals are
   sums over it.
2. :data:`SAMPLED`: the rows the medians are taken from. All of the period's rows when it holds at most
   ``sample_size`` (the medians are exact); otherwise a sample of about ``sample_size`` of them, chosen by the
   figures' ``sample`` column, which spreads evenly over delivery ids (the medians are estimates, and
   :class:`Base` says so).

:func:`group_figures` aggregates both by a grouping (PostgreSQL: ``percentile_cont(0.5)``; SQLite, which has no
median aggregate: an index on the grouping's columns and the metric, walked to the middle of each group, one
statement per group and metric), and :func:`audiences` reads each channel's first and last audience reading of
the period.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    null,
    select,
)

from scheduler.mix import COMMERCIAL
from scheduler.store.figures import SAMPLE_RANGE
from scheduler.tables import audience_readings, delivery_figures

METRICS = ("views", "likes", "reposts", "comments")
"""The figures a network gives of a post, as stored in ``result_readings``."""
ENGAGEMENT = "engagement"
"""The column of engagement per 1,000 followers."""
KEYS = ("channel", "category", "campaign", "slot", "weekday", "hour")
"""The figures' group keys, in the order the figures table is stored in."""
SAMPLE_SIZE = 50_000
"""The most rows a report's medians are taken from (all of them up to this many)."""


def _key_columns() -> list[Column[Any]]:
    """The group keys of a temporary table (a column belongs to one table: each table gets its own)."""
    return [
        Column("channel", String(64)),
        Column("category", String(16)),
        Column("campaign", String(128)),
        Column("slot", Integer),
        Column("weekday", Integer),
        Column("hour", Integer),
        Column("commercial", Integer),  # 1 or 0
    ]


FINE = Table(
    "smm_report_fine",
    MetaData(),
    *_key_columns(),
    Column("posts", Integer),
    Column("measured", Integer),
    *(
        Column(f"{kind}_{name}", BigInteger if kind == "total" else Integer)
        for name in METRICS
        for kind in ("n", "total")
    ),
    Column(f"n_{ENGAGEMENT}", Integer),
    prefixes=["TEMPORARY"],
)
"""The period's figures by every key: one row per distinct keys, its count and each figure's count and total."""

SAMPLED = Table(
    "smm_report_sample",
    MetaData(),
    Column("delivery", Integer),
    *_key_columns(),
    *(Column(name, Integer) for name in METRICS),
    Column(ENGAGEMENT, Float),
    prefixes=["TEMPORARY"],
)
"""The rows the medians are taken from (see the module's docstring)."""

_WORK_MEM = "64MB"
"""PostgreSQL's memory for each sort of the report's transaction (its default, 4 MB, sorts on disk)."""


@dataclass(frozen=True)
class Figure:
    """One metric of one group: how many deliveries have it, its total (None for engagement) and its median (None
    where no delivery of the group has it, or none of those the medians are taken from)."""

    n: int
    total: int | None
    median: float | None
    sampled: int
    """How many of the ``n`` the median is taken from (``n`` when exact)."""


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


@dataclass(frozen=True)
class Base:
    """What :func:`open_base` opened: the period (seconds since 1970, ``until`` excluded), its channels, how many
    deliveries it holds, and how many of them the medians are taken from (``sampled == posts``: exact)."""

    since: int
    until: int
    channels: tuple[str, ...]
    posts: int
    sampled: int
    not_updated: str | None = None
    """Why the figures could not be brought up to date before (None: they were)."""

    def within(self) -> list[ColumnElement[bool]]:
        """The conditions that pick the period's rows of the figures table."""
        f = delivery_figures.c
        return [f.channel.in_(self.channels), f.published >= self.since, f.published < self.until]


@contextmanager
def open_base(
    conn: Connection, since: datetime, until: datetime, channels: Sequence[str], sample_size: int | None = None
) -> Iterator[Base]:
    """Fill :data:`FINE` and :data:`SAMPLED` with the figures of the deliveries published in ``[since, until)`` on
    ``channels``, for the statements run inside (medians from at most ``sample_size`` rows, default
    :data:`SAMPLE_SIZE`); the temporary tables are dropped after."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")
    FINE.create(conn)
    SAMPLED.create(conn)
    try:
        base = Base(int(since.timestamp()), math.ceil(until.timestamp()), tuple(channels), 0, 0)
        if channels:
            base = _fill(conn, base, SAMPLE_SIZE if sample_size is None else sample_size)
        yield base
    finally:
        SAMPLED.drop(conn)
        FINE.drop(conn)


def _fill(conn: Connection, base: Base, sample_size: int) -> Base:
    f = delivery_figures.c
    keys = [f[k] for k in KEYS]
    commercial = case((f.category == COMMERCIAL, 1), else_=0)
    counts: list[ColumnElement[Any]] = [func.count(), func.sum(f.measured)]
    for name in METRICS:
        counts += [func.count(f[name]), func.sum(f[name])]
    counts.append(func.count(f[ENGAGEMENT]))
    fine = select(*keys, func.max(commercial), *counts).where(*base.within()).group_by(*keys)
    conn.execute(FINE.insert().from_select([c.name for c in FINE.c], fine))
    posts = int(conn.execute(select(func.coalesce(func.sum(FINE.c.posts), 0))).scalar_one())
    rows = select(f.delivery_id, *keys, commercial, *(f[name] for name in METRICS), f[ENGAGEMENT]).where(*base.within())
    if posts > sample_size:
        rows = rows.where(f.sample < math.ceil(sample_size * SAMPLE_RANGE / posts))
    conn.execute(SAMPLED.insert().from_select([c.name for c in SAMPLED.c], rows))
    sampled = int(conn.execute(select(func.count()).select_from(SAMPLED)).scalar_one())
    return Base(base.since, base.until, base.channels, posts, sampled)


def group_figures(conn: Connection, keys: Sequence[str], metrics: Sequence[str]) -> list[GroupFigures]:
    """The period's deliveries grouped by the columns ``keys``: each group's deliveries, those measured, and for
    each of ``metrics`` (names of :data:`METRICS` or :data:`ENGAGEMENT`) its count, total and median."""
    fine = FINE.c
    fields: list[ColumnElement[Any]] = [func.sum(fine.posts), func.sum(fine.measured)]
    for m in metrics:
        fields += [func.sum(fine[f"n_{m}"]), func.sum(fine[f"total_{m}"]) if m != ENGAGEMENT else null()]
    cols = [fine[k] for k in keys]
    rows = conn.execute(select(*cols, *fields).group_by(*cols)).all()
    medians = _medians(conn, keys, metrics)
    width = len(keys)
    out = []
    for row in rows:
        key = tuple(row[:width])
        figures = {}
        for i, m in enumerate(metrics):
            n, total = int(row[width + 2 + 2 * i] or 0), row[width + 3 + 2 * i]
            median, sampled = medians.get((key, m), (None, 0))
            figures[m] = Figure(n=n, total=None if total is None else int(total), median=median, sampled=sampled)
        out.append(GroupFigures(key, int(row[width]), int(row[width + 1] or 0), figures))
    return out


def _medians(conn: Connection, keys: Sequence[str], metrics: Sequence[str]) -> dict[tuple[Any, str], tuple[float, int]]:
    """The median of each of ``metrics`` in each group of :data:`SAMPLED` by ``keys`` that has it, and how many rows
    it is the median of."""
    s = SAMPLED.c
    cols = [s[k] for k in keys]
    width, many = len(keys), len(metrics)
    counts = [func.count(s[m]) for m in metrics]
    out: dict[tuple[Any, str], tuple[float, int]] = {}
    if conn.dialect.name == "postgresql":
        medians = [func.percentile_cont(0.5).within_group(s[m]) for m in metrics]
        for row in conn.execute(select(*cols, *counts, *medians).group_by(*cols)):
            for i, m in enumerate(metrics):
                if row[width + i]:
                    out[(tuple(row[:width]), m)] = (float(row[width + many + i]), int(row[width + i]))
        return out
    groups = conn.execute(select(*cols, *counts).group_by(*cols)).all()
    for i, m in enumerate(metrics):
        columns = [*keys, m]  # names of SAMPLED's columns, not input
        index = f"{SAMPLED.name}_{'_'.join(columns)}"
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {index} ON {SAMPLED.name} ({', '.join(columns)})")
        for row in groups:
            if n := int(row[width + i]):
                key = tuple(row[:width])
                out[(key, m)] = (_sqlite_median(conn, keys, key, m, n), n)
    return out


def _sqlite_median(conn: Connection, keys: Sequence[str], key: tuple[object, ...], metric: str, n: int) -> float:
    """The median of ``metric`` over the ``n`` rows of :data:`SAMPLED` of one group that have it: SQLite has no
    median aggregate, so an index on the group's columns and the metric (made by the caller) is walked to the middle
    one or two rows. An index and a walk cost less than ``row_number()`` over each group (bench/RESULTS.md, B11)."""
    value = SAMPLED.c[metric]
    middle = (
        select(value.label("v"))
        .where(*(SAMPLED.c[k] == bindparam(f"k{i}") for i, k in enumerate(keys)), value.is_not(None))
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
