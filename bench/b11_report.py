"""B11 ``smm report`` over 1,000,000 published deliveries with 3 readings each: the time of ``build_report`` for
the default grouping and each ``--by``, on SQLite and PostgreSQL, and the rows the database hands to Python.

Goal: report over 1,000,000 deliveries with 3 readings each <= 2 s, never all rows in Python.

The data (``tests/report_data.py``, written in SQL in one transaction): 1,000,000 deliveries over a year on 12
channels (8 VK in Europe/Moscow, 2 Facebook in Europe/Berlin with its DST changes, 2 Telegram without results), three
readings each where the network gives results (2,500,000 readings), one audience reading a day per channel. Each
grouping is timed over the whole year (every delivery is in the report) and over the default period, the last 30 days
(about 82,000 of the million). The figures table is filled from scratch first (timed apart: it happens once), then
PostgreSQL's statistics are gathered (ANALYZE, as its autovacuum would after such a load); SQLite has none, as smm
runs it.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import PG_URL, Row, create_schema, fresh_folder, parser, postgres_version, report

START = datetime(2025, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
CHANNELS = [(f"vk{i}", "vk") for i in range(8)] + [("fb0", "facebook"), ("fb1", "facebook"), ("tg0", "telegram")]
CHANNELS.append(("tg1", "telegram"))
GOAL = 2.0


def config_text(db_url: str) -> str:
    keys = {
        "vk": 'group_id = 1\ntoken_env = "BENCH_NONE"\ntimezone = "Europe/Moscow"\n',
        "facebook": 'page_id = 1\ntoken_env = "BENCH_NONE"\ntimezone = "Europe/Berlin"\n',
        "telegram": 'chat_id = -1001000000000\ntoken_env = "BENCH_NONE"\n',
    }
    text = f'[database]\nurl = "{db_url}"\n\n'
    for name, network in CHANNELS:
        text += f'[[channels]]\nname = "{name}"\nnetwork = "{network}"\n{keys[network]}\n'
    return text


def run(backend: str, db_url: str, folder: Path, n: int, repeat: int) -> tuple[list[Row], list[str]]:
    from scheduler.config import load_config
    from scheduler.db import Database
    from scheduler.report import GROUPINGS, Period, build_report
    from scheduler.store.figures import catch_up
    from tests.report_data import counting_rows, seed_results

    create_schema(db_url)
    db = Database(db_url)
    try:
        t0 = time.perf_counter()
        with db.write_core() as conn:
            seed_results(conn, n, CHANNELS, START, SPAN)
        seeded = time.perf_counter() - t0
        path = folder / f"{backend}.toml"
        path.write_text(config_text(db_url))
        channels = load_config(str(path)).channels
        rows, notes = [], [f"{backend}: {n:,} deliveries seeded in {seeded:.1f} s"]
        end = START + SPAN
        t0 = time.perf_counter()
        with db.write_core() as conn:
            catch_up(conn, {c.name: c.timezone for c in channels}, end)
        notes.append(
            f"{backend}: the figures table filled from scratch in {time.perf_counter() - t0:.1f} s (once: after the "
            "upgrade to it, by the daemon's first results run or the first report; later runs add the new rows)"
        )
        if backend == "postgresql":
            with db.write_core() as conn:
                conn.exec_driver_sql("ANALYZE")
        month = Period(end - timedelta(days=30), end)
        periods = [("the whole year", Period(START, end)), ("the default 30 days", month)]
        for label, period in periods:
            build_report(db, period, channels, now=end)  # a first run warms the caches, as a later report finds them
            for by in GROUPINGS:
                walls, cpus = [], []
                for _ in range(repeat):
                    c0, w0 = time.process_time(), time.perf_counter()
                    with counting_rows() as fetched:
                        result = build_report(db, period, channels, by, now=end)
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                wall, cpu = statistics.median(walls), statistics.median(cpus)
                posts = sum(g.posts for g in result.groups)
                what = f"{backend}, {label}: `--by {by}`{' (default)' if by == GROUPINGS[0] else ''}"
                medians = "exact" if not result.estimated else f"estimated from {result.median_sample:,}"
                value = (
                    f"**{wall:.2f} s** (median of {repeat}; this process's CPU {cpu:.2f} s); {len(result.groups)} "
                    f"groups of {posts:,} deliveries; medians {medians}; {fetched[0]} rows fetched"
                )
                rows.append(Row(what, value, f"<= {GOAL:.0f} s", wall <= GOAL))
        return rows, notes
    finally:
        db.dispose()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--deliveries", type=int, default=None, help="default 1,000,000 (--quick: 50,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each grouping (the median is reported)")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = p.parse_args()
    n = args.deliveries or (50_000 if args.quick else 1_000_000)
    folder = fresh_folder("b11")
    rows: list[Row] = []
    notes: list[str] = []
    if args.backend in ("sqlite", "both"):
        r, nt = run("sqlite", f"sqlite:///{folder / 'smm.db'}", folder, n, args.repeat)
        rows += r
        notes += nt
    if args.backend in ("postgresql", "both"):
        if postgres_version() is None:
            notes.append(f"PostgreSQL not reachable at {PG_URL}: not measured")
        else:
            import psycopg

            schema = f"b11_{uuid.uuid4().hex[:8]}"
            conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                sep = "&" if "?" in PG_URL else "?"
                r, nt = run("postgresql", f"{PG_URL}{sep}options=-csearch_path%3D{schema}", folder, n, args.repeat)
                rows += r
                notes += nt
            finally:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    notes.append(
        "rows fetched: every row SQLAlchemy returned to Python during one report (one per group and statement, "
        "never one per delivery)"
    )
    title = f"smm report over {n:,} deliveries with 3 readings each"
    if args.no_results:
        for row in rows:
            print(f"{row.what}: {row.value} [{row.verdict}]")
        print("\n".join(notes))
        return
    report("B11", title, rows, notes, quick=args.quick)


if __name__ == "__main__":
    main()
