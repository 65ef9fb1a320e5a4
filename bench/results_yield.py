"""Reading results back never delays a post (issue 19): posts published on one VK token while the daemon reads the
results of many earlier posts on it from a slow VK, against the same posts with nothing read.

Run: ``.venv/bin/python -m bench.results_yield`` (``--quick``: 100 posts due a reading instead of 500, 6 posts timed
instead of 12; ``--no-results``: print only). The daemon runs in this process (its real loop, timer, limiter and
VK adapter through vk_api) against the VK fake with its real limit (3 requests a second per token, error 6 above
it), every ``wall.getById`` answered ``SLOW`` seconds late. Posts are timed from their due time to the start of
their ``wall.post`` at the fake: posts queued to go at once (``smm add --now``: nothing announced them) and posts
queued 5 s ahead (the daemon knows their time, and the collection steps aside before it).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.common import Row, instrument, parser, report
from bench.yielding import busiest_row, busiest_second, configure, lateness_rows, seed, start_daemon, timed_posts
from scheduler.config import Config
from scheduler.db import Database
from scheduler.tables import result_readings
from tests.fakes.base import Fault
from tests.fakes.vk import FakeVk

SLOW = 0.5
"""Seconds the slow VK takes to answer each wall.getById."""
PUBLISHED_AGO = timedelta(hours=26)
"""The seeded posts' age: their 24-hour reading is due."""


def aged(vk: FakeVk) -> Callable[[int, int], None]:
    """Each seeded post as old on the fake as in the database (its figures are a day's)."""

    def each(i: int, post_id: int) -> None:
        vk.published[-1]["time"] = (datetime.now(UTC) - PUBLISHED_AGO).timestamp()

    return each


def stored(db: Database) -> int:
    with db.read() as session:
        return int(session.connection().execute(select(func.count()).select_from(result_readings)).scalar() or 0)


async def run(config: Config, vk: FakeVk, timed: int, read: bool) -> tuple[list[float], list[float], int, int, int]:
    """Publish ``timed`` posts due now and ``timed`` announced ones (with the collection going on when ``read``);
    returns their lateness, the readings taken meanwhile, the readings stored in all, and the most VK requests in
    any 1-second window."""
    daemon, main = await start_daemon(config)
    writer = Database(config.database_url)
    if read:
        daemon.background.results.start()
        while len(vk.calls("wall.getById")) < 3:
            await asyncio.sleep(0.05)
    started = time.time()
    now_late, ahead_late = await timed_posts(config, writer, vk, timed, "during the collection" if read else "alone")
    ended = time.time()
    read_meanwhile = len([r for r in vk.calls("wall.getById") if started <= r.received_at <= ended])
    daemon.request_stop("bench")
    await main
    kept = stored(writer)
    writer.dispose()
    busiest = busiest_second(vk)
    if read:
        assert read_meanwhile > 0, "the collection ended before the posts: seed more posts"
    return now_late, ahead_late, read_meanwhile, kept, busiest


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    posts, timed = (100, 6) if args.quick else (500, 12)
    results: dict[bool, tuple[list[float], list[float], int, int, int]] = {}
    for read in (False, True):
        with FakeVk() as vk, tempfile.TemporaryDirectory() as folder:
            assert isinstance(vk, FakeVk)
            instrument(vk)
            config = configure(Path(folder), vk, "[comments]\nenabled = false")
            seed(config, vk, posts if read else 0, PUBLISHED_AGO, aged(vk))
            vk.inject("wall.getById", *[Fault.delay(SLOW)] * (posts + 10))
            vk.limits = True
            results[read] = asyncio.run(run(config, vk, timed, read))
    (alone_now, alone_ahead, *_, alone_busiest), (now, ahead, reads, kept, busiest) = results[False], results[True]
    during = f"the collection of {posts} posts' results from a VK answering in {SLOW:g} s"
    rows = [
        *lateness_rows((alone_now, alone_ahead), (now, ahead), during),
        Row(
            "results reads (wall.getById) while the posts went",
            str(reads),
            "> 0 (the collection was going on)",
            reads > 0,
        ),
        Row("readings stored by the collection in all (one per post at most)", str(kept), f"<= {posts}", kept <= posts),
        busiest_row(busiest, alone_busiest),
    ]
    notes = [
        f"{timed} posts of each kind per run, one every 0.7 s; the collection (its job) is started just before the "
        f"first; {posts} published deliveries are due their 24-hour reading; every wall.getById takes {SLOW:g} s.",
        "A read goes only when the token's buckets would let a publish go at once and no post of the token's "
        "channels is publishing or due within the read's pace plus its recent duration plus 2 s; it reserves its "
        "request like a publish, and goes through a vk_api client of its own (vk_api holds a client while a request "
        "is in flight), so a post due now that nothing announced waits at most for the token's pace after a read.",
    ]
    print("\n".join(f"{r.what}: {r.value}  [{r.verdict}]" for r in rows))
    if not args.no_results:
        report("Results collection", "a publish while many posts' results are read", rows, notes, quick=args.quick)


if __name__ == "__main__":
    main()
