"""Many published deliveries with their results and audiences, written in SQL (``INSERT ... SELECT`` over a
recursive sequence), for the report's row-traffic test and benchmark B11: a million deliveries in seconds.

Delivery ``i`` (1..n) is post ``i``'s only delivery, on ``channels[i % len(channels)]``, published at
``start + i * span / n``; a post's category cycles through :data:`scheduler.mix.CATEGORIES`, one in seven has a
campaign, two in three were placed by the cadence. A delivery on a network that gives results has three readings
(1 h, 24 h, 7 days; the last is the latest), one in ten without views; each channel has one audience reading a day.
A slotted delivery is due at a slot (every 6 hours, UTC) and published a few seconds after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from adapters import adapter_class
from scheduler.mix import CATEGORIES

AGES = (3600, 86400, 7 * 86400)


def _values(rows: Sequence[tuple[object, ...]]) -> str:
    def sql(v: object) -> str:
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(sql(v) for v in row) + ")" for row in rows)


def seed_results(
    conn: Connection, n: int, channels: Sequence[tuple[str, str]], start: datetime, span: timedelta
) -> None:
    """Write ``n`` published deliveries on ``channels`` (name, network) over ``[start, start + span)`` into an empty
    database, with their readings and the channels' daily audiences (see the module's docstring)."""
    sqlite = conn.dialect.name == "sqlite"

    def ts(epoch: str) -> str:
        return f"(datetime({epoch}, 'unixepoch') || '.000000')" if sqlite else f"to_timestamp({epoch})"

    def day(epoch: str) -> str:
        return f"date({epoch}, 'unixepoch')" if sqlite else f"CAST(to_timestamp({epoch}) AT TIME ZONE 'UTC' AS DATE)"

    boolean = ("0", "1") if sqlite else ("false", "true")
    measured = [(k, name, net) for k, (name, net) in enumerate(channels)]
    with_results = [net for _, _, net in measured if "results" not in adapter_class(net).unsupported]
    categories = " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(CATEGORIES))
    t0, seconds = int(start.timestamp()), int(span.total_seconds())
    head = (
        f"WITH RECURSIVE seq(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM seq WHERE i < {n}), "
        f"chan(k, name, network) AS (VALUES {_values(measured)}), "
        f"b AS (SELECT i, name, network, {t0} + i * {seconds} / {n} AS t "
        f"FROM seq JOIN chan ON chan.k = i % {len(channels)}), "
        # a slotted delivery is due at a slot (every 6 hours) and published a few seconds after it
        "d AS (SELECT i, name, network, CASE WHEN i % 3 = 0 THEN t ELSE t - t % 21600 END AS due, "
        "CASE WHEN i % 3 = 0 THEN t ELSE t - t % 21600 + i % 7 END AS e FROM b) "
    )
    media = "'[]'" if sqlite else "CAST('[]' AS JSON)"
    conn.execute(
        text(
            head + "INSERT INTO posts (id, text, category, media, created_at, campaign) "
            f"SELECT i, '', CASE i % {len(CATEGORIES)} {categories} END, {media}, {ts('e - 86400')}, "
            "CASE WHEN i % 7 = 0 THEN 'campaign-' || (i % 3) END FROM d"
        )
    )
    conn.execute(
        text(
            head + "INSERT INTO deliveries (id, post_id, channel, network, status, due_at, slotted, attempts, key, "
            "published_at, remote_id, updated_at) "
            f"SELECT i, i, name, network, 'published', {ts('due')}, "
            f"CASE WHEN i % 3 = 0 THEN {boolean[0]} ELSE {boolean[1]} END, 1, 'report-' || i, {ts('e')}, "
            f"CAST(i AS VARCHAR(20)), {ts('e')} FROM d"
        )
    )
    if with_results:
        ages = _values([(k + 1, age) for k, age in enumerate(AGES)])
        nets = ", ".join(f"'{net}'" for net in sorted(set(with_results)))
        conn.execute(
            text(
                head + ", ages(k, age) AS (VALUES " + ages + ") "
                "INSERT INTO result_readings (delivery_id, age, read_at, views, likes, reposts, comments, gone, "
                "latest) "
                f"SELECT i, age, {ts('e + age')}, CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 7919 % 10000) * k END, "
                f"(i * 31 % 500) * k, (i * 17 % 50) * k, (i * 13 % 30) * k, {boolean[0]}, "
                f"CASE WHEN k = {len(AGES)} THEN {boolean[1]} ELSE {boolean[0]} END "
                f"FROM d CROSS JOIN ages WHERE network IN ({nets})"
            )
        )
    days = seconds // 86400 + 1
    conn.execute(
        text(
            f"WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {days - 1}), "
            f"chan(k, name, network) AS (VALUES {_values(measured)}) "
            "INSERT INTO audience_readings (channel, day, members, read_at) "
            f"SELECT name, {day(f'{t0} + i * 86400')}, 1000 + k * 100 + i * 3, {ts(f'{t0} + i * 86400 + 21600')} "
            "FROM seq CROSS JOIN chan"
        )
    )


@contextmanager
def counting_rows() -> Iterator[list[int]]:
    """While inside, ``counter[0]`` counts the rows that statements run through SQLAlchemy's ``Connection.execute``
    return to Python (each result is read whole, then handed on unchanged)."""
    original = Connection.execute
    counter = [0]

    def execute(self: Connection, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        result = original(self, statement, parameters, **kwargs)
        if not result.returns_rows:
            return result
        frozen = result.freeze()
        counter[0] += len(frozen.data)
        return frozen()

    Connection.execute = execute  # type: ignore[assignment,method-assign]
    try:
        yield counter
    finally:
        Connection.execute = original  # type: ignore[method-assign]
