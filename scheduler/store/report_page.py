"""What the HTML page reads beyond the report's table: each channel's audience by day, the best and the worst posts,
and a sample of each category's engagement per post (for the dots of its chart).

The posts come from the report's figures (inside :func:`scheduler.store.report.open_base`), so a post's engagement
is the report's; what comes back is bounded (a few posts, at most ``size`` values per category), whatever the
number of deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, case, func, select

from scheduler.store.report import ENGAGEMENT, SAMPLED, Base
from scheduler.tables import audience_readings, deliveries, delivery_figures, posts


def audience_by_day(
    conn: Connection, channels: Sequence[str], since: datetime, until: datetime
) -> dict[str, list[tuple[date, int]]]:
    """Each channel's audience readings read within ``[since, until)``, by day (channels without one are left
    out): the readings the report's start and end figures come from."""
    a = audience_readings.c
    rows = conn.execute(
        select(a.channel, a.day, a.members)
        .where(
            and_(
                a.channel.in_(list(channels)),
                a.day >= since.astimezone(UTC).date(),
                a.day <= until.astimezone(UTC).date(),
                a.read_at >= since,
                a.read_at < until,
            )
        )
        .order_by(a.channel, a.day)
    )
    out: dict[str, list[tuple[date, int]]] = {}
    for channel, day, members in rows:
        out.setdefault(channel, []).append((day, int(members)))
    return out


class Ranked(NamedTuple):
    """A published delivery on the best or the worst list."""

    delivery_id: int
    post_id: int
    channel: str
    category: str
    text: str
    url: str | None
    published_at: datetime
    engagement: float
    views: int | None


def ranked(conn: Connection, base: Base, *, best: bool, limit: int) -> list[Ranked]:
    """The ``limit`` deliveries of the period with the highest (``best``) or the lowest engagement per 1,000
    followers; ties by delivery id."""
    f, d, p = delivery_figures.c, deliveries.c, posts.c
    order = [f[ENGAGEMENT].desc() if best else f[ENGAGEMENT], f.delivery_id]
    top = (
        select(f.delivery_id, f[ENGAGEMENT], f.views)
        .where(*base.within(), f[ENGAGEMENT].is_not(None))
        .order_by(*order)
        .limit(limit)
        .subquery()
    )
    t = top.c
    rows = conn.execute(
        select(d.id, d.post_id, d.channel, p.category, p.text, d.remote_url, d.published_at, t[ENGAGEMENT], t.views)
        .select_from(top.join(deliveries, d.id == t.delivery_id).join(posts, p.id == d.post_id))
        .order_by(t[ENGAGEMENT].desc() if best else t[ENGAGEMENT], d.id)
    )
    return [Ranked(*row) for row in rows]


def sample(conn: Connection, key: str, metric: str, size: int) -> dict[str, list[float]]:
    """Up to about ``size`` values of ``metric`` per value of the column ``key`` of the rows the medians are taken
    from (:data:`SAMPLED`), spread evenly over each group's sorted values (all of them in a group of at most
    ``size``)."""
    b = SAMPLED.c
    ranked_values = (
        select(
            b[key].label("k"),
            b[metric].label("v"),
            func.row_number().over(partition_by=b[key], order_by=b[metric]).label("rn"),
            func.count().over(partition_by=b[key]).label("n"),
        )
        .where(b[metric].is_not(None))
        .subquery()
    )
    r = ranked_values.c
    step = case((r.n > size, (r.n + size - 1) // size), else_=1)
    out: dict[str, list[float]] = {}
    for group, value in conn.execute(select(r.k, r.v).where((r.rn - 1) % step == 0).order_by(r.k, r.rn)):
        out.setdefault(str(group), []).append(float(value))
    return out
