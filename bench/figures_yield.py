"""The report figures' first fill never delays a post (issue 19): posts published on one VK channel while the
daemon fills that channel's figures table from scratch (as after the upgrade to it) for many earlier deliveries,
against the same posts with nothing to fill.

Run: ``.venv/bin/python -m bench.figures_yield`` (``--quick``: 100,000 earlier deliveries instead of 400,000, 6
posts timed instead of 12; ``--no-results``: print only). The daemon runs in this process (its real loop, timer and
VK adapter through vk_api) on SQLite against the VK fake; the earlier deliveries are written in SQL
(``tests/report_data.py``), published more than a year ago (so none is due a reading) with their readings and
audiences. The fill goes in transactions of ``FILL_BATCH`` deliveries on the daemon's database thread; posts are
timed from their due time to the start of their ``wall.post`` at the fake.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import Row, parser, report
from bench.yielding import configure, lateness_rows, start_daemon, timed_posts
from scheduler.config import Config
from scheduler.daemon.figures import FILL_BATCH, FILL_PAUSE
from scheduler.daemon.results import NEAR
from scheduler.db import Database
from scheduler.tables import delivery_figures, figure_channels
from tests.fakes.vk import FakeVk
from tests.report_data import seed_results


def filled(db: Database) -> tuple[int, bool]:
    """Rows in the figures table, and whether the channel's fill is done."""
    with db.read_core() as conn:
        rows = int(conn.execute(select(func.count()).select_from(delivery_figures)).scalar_one())
        state = conn.execute(select(figure_channels.c.next_id)).first()
    return rows, state is not None and state.next_id is None


async def run(config: Config, vk: FakeVk, timed: int, fill: bool) -> tuple[list[float], list[float], int, float]:
    """Publish ``timed`` posts due now and ``timed`` announced ones (during the fill when ``fill``); returns their
    lateness, the rows the fill added while they went, and how long the whole fill took."""
    daemon, main = await start_daemon(config)
    writer = Database(config.database_url)
    began = time.monotonic()
    done_at: list[float] = []

    async def watch() -> None:  # off the daemon's loop: the bench's reads must not stall it
        while not (await asyncio.to_thread(filled, writer))[1]:
            await asyncio.sleep(0.05)
        done_at.append(time.monotonic())

    daemon.background.results.start()
    watching = asyncio.create_task(watch())
    if fill:
        while (await asyncio.to_thread(filled, writer))[0] == 0:
            await asyncio.sleep(0.02)
    before = (await asyncio.to_thread(filled, writer))[0]
    now_late, ahead_late = await timed_posts(config, writer, vk, timed, "during the fill" if fill else "alone")
    during = (await asyncio.to_thread(filled, writer))[0] - before
    await watching
    daemon.request_stop("bench")
    await main
    writer.dispose()
    if fill:
        assert during > 0, "the fill ended before the posts: seed more deliveries"
    return now_late, ahead_late, during, done_at[0] - began


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    earlier, timed = (100_000, 6) if args.quick else (400_000, 12)
    results: dict[bool, tuple[list[float], list[float], int, float]] = {}
    for fill in (False, True):
        with FakeVk() as vk, tempfile.TemporaryDirectory() as folder:
            assert isinstance(vk, FakeVk)
            config = configure(Path(folder), vk, "[comments]\nenabled = false")
            db = Database(config.database_url)
            db.check_schema(create=True)
            if fill:
                with db.write_core() as conn:
                    start = datetime.now(UTC) - timedelta(days=800)
                    seed_results(conn, earlier, [("vk", "vk")], start, timedelta(days=365))
            db.dispose()
            results[fill] = asyncio.run(run(config, vk, timed, fill))
    (alone_now, alone_ahead, _, _), (now, ahead, during, took) = results[False], results[True]
    what = f"the first fill of {earlier:,} deliveries' figures"
    rows = [
        *lateness_rows((alone_now, alone_ahead), (now, ahead), what),
        Row(
            "figures rows the fill added while the posts went", f"{during:,}", "> 0 (the fill was going on)", during > 0
        ),
        Row("the whole fill, in the daemon, posts going", f"{took:.1f} s ({-(-earlier // FILL_BATCH)} transactions)"),
    ]
    notes = [
        f"{timed} posts of each kind per run, one every 0.7 s; the results collection is started just before the "
        f"first, and its run fills the channel's figures in transactions of {FILL_BATCH:,} deliveries, "
        f"{FILL_PAUSE:g} s apart, each once no post is publishing or due within {NEAR:g} s.",
    ]
    print("\n".join(f"{r.what}: {r.value}  [{r.verdict}]" for r in rows))
    if not args.no_results:
        report("Report figures", "a publish during the first fill of the figures table", rows, notes, quick=args.quick)


if __name__ == "__main__":
    main()
