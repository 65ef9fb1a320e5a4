"""``smm report``: what the posts published in a period achieved, per group, and what the numbers say.

:func:`build_report` computes a :class:`Report` (typed, frozen; ``smm report --html`` renders the same model, and
``--json`` prints it as :func:`report_dict` gives it). Everything is aggregated in SQL by
:mod:`scheduler.store.report` over the figures table (:mod:`scheduler.store.figures`, brought up to date first):
what comes back is one row per group, whatever the number of deliveries.

What the figures mean:

- **posts**: the deliveries published in the period (``published_at`` in ``[since, until)``) on the report's
  channels; a post published on two channels counts twice. **measured**: those with a successful reading of their
  results. A delivery's figures are those of its latest successful reading (``result_readings.latest``).
- **views, likes, reposts, comments**: per group, the median and the total over the deliveries whose network gave
  that figure, and how many they are (``n``). A figure no delivery of the group has is ``None`` ("n/a"), never 0.
  Medians are exact up to :data:`scheduler.store.report.SAMPLE_SIZE` deliveries in the period; beyond, they are
  estimated from a sample of about that many, spread evenly over the deliveries (:attr:`Report.estimated`;
  ``sampled`` says from how many of a group's ``n``). Counts and totals are always exact.
  Telegram and the outbox give no post results (:attr:`Report.no_results` says so, with the reason): their
  deliveries count in ``posts`` and in no figure.
- **engagement per 1,000 followers** of a delivery: ``(likes + reposts + comments) / audience * 1000``, where the
  sum takes those of the three the network gave (none given: no engagement), and the audience is the channel's
  audience reading of the UTC day of publication or, failing that, the latest one before it, or failing that the
  earliest one after it (none, or 0: no engagement). Per group: its median over the deliveries that have one (no
  total: a sum of ratios means nothing).
- **slot**: a delivery placed by the cadence is keyed by its channel and the local weekday and time of its planned
  time (``due_at``) in the channel's zone, e.g. ``tue 10:00``; one placed at an explicit time (``--at``, ``--now``)
  is "explicit time". **weekday**, **hour**: of the publication time, in the channel's zone.
- **campaign**: the post's ``--campaign``; "(none)" for posts without one.
- **audience** of each channel: its first and last audience reading read within the period, and the growth between
  them (absolute, and in % of the first); growth is ``None`` with fewer than two readings.
- **best** category and slot of each channel that gives results: the highest median engagement per 1,000 followers
  among its groups of at least :data:`MIN_SAMPLE` deliveries with an engagement figure (in the sample, when
  estimated); ``key`` is ``None`` ("too few posts to say") when no group is that large, and ``n`` is then the
  largest group's size.
- **commercial share**: the commercial posts (:data:`scheduler.mix.COMMERCIAL`) among all, and the results of
  each side (median engagement per 1,000 followers and median views), to judge the content mix rule by its effect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from adapters import adapter_class
from scheduler.config import ChannelConfig
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.mix import CATEGORIES
from scheduler.slots import DAYS, Slot
from scheduler.store import figures
from scheduler.store import report as sql
from scheduler.timefmt import format_iso
from scheduler.views import JSON

if TYPE_CHECKING:
    from sqlalchemy import Connection

GROUPINGS = ("category", "channel", "slot", "weekday", "hour", "campaign")
"""What ``--by`` groups by; the first is the default."""
MIN_SAMPLE = 5
"""The fewest deliveries with an engagement figure a group needs to be named best."""
DEFAULT_DAYS = 30
"""The period without ``--since``: this many days up to ``--until`` (default: now)."""
EXPLICIT_TIME = "explicit time"
NO_CAMPAIGN = "(none)"

_KEYS: Mapping[str, tuple[str, ...]] = {
    "category": ("category",),
    "channel": ("channel",),
    "slot": ("channel", "slot"),
    "weekday": ("weekday",),
    "hour": ("hour",),
    "campaign": ("campaign",),
}


@dataclass(frozen=True)
class Period:
    """``[since, until)``, aware UTC times."""

    since: datetime
    until: datetime

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None, now: datetime) -> Period:
        """The period asked for: ``until`` defaults to ``now``, ``since`` to :data:`DEFAULT_DAYS` before ``until``.
        Raises :class:`InputError` when ``since`` is not before ``until``."""
        end = until or now
        start = since or end - timedelta(days=DEFAULT_DAYS)
        if start >= end:
            raise InputError("--since must be before --until")
        return cls(start, end)


@dataclass(frozen=True)
class Metric:
    """One figure of a group: how many deliveries have it, their median and total (``None``: n/a), and how many
    of them the median is taken from (``n``, unless the report's medians are estimated from a sample)."""

    n: int
    median: float | None
    total: int | None
    sampled: int


@dataclass(frozen=True)
class Group:
    """One row of the table. ``key`` is the group's label; ``channel`` is the slot's channel (``--by slot``), else
    ``None``."""

    key: str
    channel: str | None
    posts: int
    measured: int
    views: Metric
    likes: Metric
    reposts: Metric
    comments: Metric
    engagement: Metric
    """Per 1,000 followers; its total is always ``None``."""


@dataclass(frozen=True)
class Audience:
    """A channel's audience at the start and end of the period (its first and last reading in it)."""

    channel: str
    network: str
    start: int | None
    start_day: date | None
    end: int | None
    end_day: date | None
    growth: int | None
    growth_pct: float | None


@dataclass(frozen=True)
class Best:
    """A channel's best category or slot (``what``) by median engagement per 1,000 followers; ``key`` is ``None``
    when no group has :data:`MIN_SAMPLE` deliveries (too few posts to say), ``n`` the sample size."""

    channel: str
    what: str
    key: str | None
    median: float | None
    n: int


@dataclass(frozen=True)
class Side:
    """The commercial posts, or the others: how many, and their results."""

    posts: int
    engagement: Metric
    views: Metric


@dataclass(frozen=True)
class CommercialShare:
    """The share of commercial posts among all the period's posts (``None`` without posts), and each side's results."""

    share: float | None
    commercial: Side
    other: Side


@dataclass(frozen=True)
class NoResults:
    """A channel whose network gives no post results, and why (audience only, or nothing)."""

    channel: str
    network: str
    reason: str


@dataclass(frozen=True)
class Report:
    """The whole report: the table (``groups``, by ``by``), the audiences, and the lines under the table."""

    period: Period
    by: str
    channels: tuple[str, ...]
    groups: tuple[Group, ...]
    audiences: tuple[Audience, ...]
    best: tuple[Best, ...]
    commercial: CommercialShare
    no_results: tuple[NoResults, ...]
    posts: int
    """The deliveries published in the period on the report's channels."""
    median_sample: int
    """How many of them the medians are taken from: all (exact), or a sample when there are more than
    :data:`scheduler.store.report.SAMPLE_SIZE` (estimates; counts and totals stay exact)."""
    min_sample: int = MIN_SAMPLE
    not_updated: str | None = None
    """Why the figures were not brought up to date before the report (the database refused this user's writes):
    they are as the daemon or an earlier report last kept them. None when they were."""

    @property
    def estimated(self) -> bool:
        """Whether the medians are estimated from a sample."""
        return self.median_sample < self.posts


def build_report(
    db: Database, period: Period, channels: Sequence[ChannelConfig], by: str = "category", *, now: datetime
) -> Report:
    """The report of the deliveries published in ``period`` on ``channels``, grouped by ``by`` (one of
    :data:`GROUPINGS`), with the figures brought up to date at ``now`` first. Loads one row per group."""
    if by not in _KEYS:
        raise InputError(f"--by {by!r} is not one of {', '.join(GROUPINGS)}")
    with open_report(db, period, channels, now) as (conn, base):
        return report_in(conn, base, period, channels, by)


@contextmanager
def open_report(
    db: Database, period: Period, channels: Sequence[ChannelConfig], now: datetime
) -> Iterator[tuple[Connection, sql.Base]]:
    """Bring the channels' figures up to date at ``now`` (one short write transaction:
    :func:`scheduler.store.figures.catch_up`), then open a read transaction on the period's figures
    (:func:`scheduler.store.report.open_base`): for :func:`report_in` and what else a caller reads there. A user
    the database refuses writes to (a read-only role) gets the figures as they were kept (``Base.not_updated``)."""
    not_updated = None
    try:
        with db.write_core() as conn:
            figures.catch_up(conn, {c.name: c.timezone for c in channels}, now)
    except Exception as exc:
        if (not_updated := figures.write_refused(exc)) is None:
            raise
    with db.read_core() as conn, sql.open_base(conn, period.since, period.until, [c.name for c in channels]) as base:
        yield conn, replace(base, not_updated=not_updated)


def report_in(
    conn: Connection, base: sql.Base, period: Period, channels: Sequence[ChannelConfig], by: str = "category"
) -> Report:
    """:func:`build_report` inside :func:`open_report`."""
    no_results = tuple(
        NoResults(c.name, c.network, reason)
        for c in channels
        if (reason := adapter_class(c.network).unsupported.get("results")) is not None
    )
    measured = [c.name for c in channels if c.name not in {n.channel for n in no_results}]
    table = sql.group_figures(conn, _KEYS[by], [*sql.METRICS, sql.ENGAGEMENT])
    by_category = sql.group_figures(conn, ("channel", "category"), [sql.ENGAGEMENT])
    by_slot = sql.group_figures(conn, ("channel", "slot"), [sql.ENGAGEMENT])
    mix = sql.group_figures(conn, ("commercial",), [sql.ENGAGEMENT, "views"])
    spans = {s.channel: s for s in sql.audiences(conn, [c.name for c in channels], period.since, period.until)}
    order = [c.name for c in channels]
    groups = sorted((_group(by, g) for g in table), key=lambda g: _order(by, g, order))
    best = []
    for name in measured:
        best.append(_best(name, "category", [g for g in by_category if g.key[0] == name], _category_label))
        best.append(_best(name, "slot", [g for g in by_slot if g.key[0] == name], _slot_label))
    return Report(
        period=period,
        by=by,
        channels=tuple(order),
        groups=tuple(groups),
        audiences=tuple(_audience(c, spans.get(c.name)) for c in channels),
        best=tuple(best),
        commercial=_commercial(mix),
        no_results=no_results,
        posts=base.posts,
        median_sample=base.sampled,
        min_sample=MIN_SAMPLE,
        not_updated=base.not_updated,
    )


def caveats(report: Report) -> list[str]:
    """What a reader must know about the figures, one sentence each, for the text and the page: medians estimated
    from a sample, figures that could not be brought up to date."""
    said = []
    if report.estimated:
        said.append(
            f"medians are estimated from a sample of {report.median_sample:,} of the {report.posts:,} posts (each "
            "group's from its posts in the sample); counts and totals are exact"
        )
    if report.not_updated is not None:
        said.append(
            "the figures are as the daemon last kept them: this report could not bring them up to date: "
            + report.not_updated
        )
    return said


def report_dict(report: Report) -> dict[str, JSON]:
    """The report as JSON-ready values (times and days in ISO 8601); the shape ``--json`` prints (docs/json.md):
    the fields of :class:`Report` and its parts, so that the shape has one definition."""

    def plain(value: object) -> JSON:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, datetime):
            return format_iso(value)
        if isinstance(value, date):
            return value.isoformat()
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise TypeError(f"{type(value).__name__} has no JSON form")

    return {key: plain(value) for key, value in asdict(report).items()}


def _metric(f: sql.Figure) -> Metric:
    return Metric(f.n, f.median, f.total, f.sampled)


def _group(by: str, g: sql.GroupFigures) -> Group:
    m = g.metrics
    channel = str(g.key[0]) if by == "slot" else None
    return Group(
        key=_label(by, g.key[-1]),
        channel=channel,
        posts=g.posts,
        measured=g.measured,
        views=_metric(m["views"]),
        likes=_metric(m["likes"]),
        reposts=_metric(m["reposts"]),
        comments=_metric(m["comments"]),
        engagement=_metric(m[sql.ENGAGEMENT]),
    )


def _label(by: str, key: str | int) -> str:
    if by == "slot":
        return _slot_label(key)
    if by == "weekday":
        return DAYS[int(key)]
    if by == "hour":
        return f"{int(key):02d}:00"
    if by == "campaign":
        return str(key) or NO_CAMPAIGN
    return str(key)


def _slot_label(code: str | int) -> str:
    code = int(code)
    if code == figures.EXPLICIT:
        return EXPLICIT_TIME
    return str(Slot(code // 1440, time(code % 1440 // 60, code % 60)))


def _category_label(key: str | int) -> str:
    return str(key)


def _order(by: str, g: Group, channels: list[str]) -> tuple[Any, ...]:
    if by == "category":
        return (CATEGORIES.index(g.key) if g.key in CATEGORIES else len(CATEGORIES), g.key)
    if by == "channel":
        return (channels.index(g.key) if g.key in channels else len(channels), g.key)
    if by == "slot":
        explicit = g.key == EXPLICIT_TIME
        slot = (0, "") if explicit else (DAYS.index(g.key[:3]), g.key[4:])
        return (channels.index(g.channel) if g.channel in channels else len(channels), explicit, slot)
    if by == "weekday":
        return (DAYS.index(g.key),)
    if by == "campaign":
        return (g.key == NO_CAMPAIGN, g.key)
    return (g.key,)


def _best(channel: str, what: str, groups: list[sql.GroupFigures], label: Any) -> Best:
    ranked = [(g.metrics[sql.ENGAGEMENT], label(g.key[1])) for g in groups]
    large = [(f, key) for f, key in ranked if f.sampled >= MIN_SAMPLE and f.median is not None]
    if not large:
        return Best(channel, what, None, None, max((f.sampled for f, _ in ranked), default=0))
    figure, key = min(large, key=lambda fk: (-(fk[0].median or 0.0), -fk[0].n, fk[1]))  # ties: larger, then name
    return Best(channel, what, key, figure.median, figure.sampled)


def _audience(channel: ChannelConfig, span: sql.AudienceSpan | None) -> Audience:
    if span is None:
        return Audience(channel.name, channel.network, None, None, None, None, None, None)
    growth = span.last - span.first if span.last_day != span.first_day else None
    pct = growth * 100.0 / span.first if growth is not None and span.first else None
    return Audience(channel.name, channel.network, span.first, span.first_day, span.last, span.last_day, growth, pct)


def _commercial(groups: list[sql.GroupFigures]) -> CommercialShare:
    sides = {int(g.key[0]): g for g in groups}

    def side(flag: int) -> Side:
        g = sides.get(flag)
        if g is None:
            return Side(0, Metric(0, None, None, 0), Metric(0, None, None, 0))
        return Side(g.posts, _metric(g.metrics[sql.ENGAGEMENT]), _metric(g.metrics["views"]))

    commercial, other = side(1), side(0)
    total = commercial.posts + other.posts
    return CommercialShare(commercial.posts / total if total else None, commercial, other)
