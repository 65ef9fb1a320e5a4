"""The comment watch never delays a post (issue 20): posts published on one VK token while the daemon reads the
comments of many earlier posts on it, against the same posts with no read going on.

Run: ``.venv/bin/python -m bench.comments_yield`` (``--quick``: 60 posts with comments instead of 300, 6 posts
timed instead of 12; ``--no-results``: print only). The daemon runs in this process (its real loop, timer,
limiter and VK adapter through vk_api) against the VK fake with its real limit (3 requests a second per token,
error 6 above it). Two kinds of posts are timed, from their due time to the start of their ``wall.post`` at the
fake: posts queued to go at once (``smm add --now``: nothing announced them) and posts queued 5 s ahead (the
daemon knows their time, and the comment read steps aside before it).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.common import Row, instrument, parser, report
from bench.yielding import busiest_row, busiest_second, configure, lateness_rows, seed, start_daemon, timed_posts
from scheduler.config import Config
from scheduler.db import Database
from tests.fakes.vk import GROUP_ID, FakeVk


def add_comments(vk: FakeVk) -> Callable[[int, int], None]:
    """Two comments on each seeded post."""

    def each(i: int, post_id: int) -> None:
        for n in range(2):
            vk.add_comment(-GROUP_ID, post_id, 500 + n, f"comment {n} on post {i}")

    return each


async def run(config: Config, vk: FakeVk, timed: int, read: bool) -> tuple[list[float], list[float], int, int]:
    """Publish ``timed`` posts due now and ``timed`` announced ones (with the comment read going on when ``read``);
    returns their lateness, the comments read meanwhile and the most VK requests in any 1-second window."""
    daemon, main = await start_daemon(config)
    writer = Database(config.database_url)
    reads_before = len(vk.calls("wall.getComments"))
    if read:
        await daemon.background.comments.job()
        while len(vk.calls("wall.getComments")) < reads_before + 3:
            await asyncio.sleep(0.05)
    started = time.time()
    label = "during a read" if read else "alone"
    now_late, ahead_late = await timed_posts(config, writer, vk, timed, label)
    ended = time.time()
    read_meanwhile = len([r for r in vk.calls("wall.getComments") if started <= r.received_at <= ended])
    daemon.request_stop("bench")
    await main
    writer.dispose()
    busiest = busiest_second(vk)
    if read:
        assert read_meanwhile > 0, "the comment read ended before the posts: seed more posts"
    return now_late, ahead_late, read_meanwhile, busiest


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    posts, timed = (60, 6) if args.quick else (300, 12)
    results: dict[bool, tuple[list[float], list[float], int, int]] = {}
    for read in (False, True):
        with FakeVk() as vk, tempfile.TemporaryDirectory() as folder:
            assert isinstance(vk, FakeVk)
            instrument(vk)
            config = configure(Path(folder), vk, '[comments]\ninterval = "1h"')
            # Published two days ago: out of VK's daily quota.
            seed(config, vk, posts if read else 0, timedelta(days=2), add_comments(vk))
            vk.limits = True  # the seeded posts are not today's
            results[read] = asyncio.run(run(config, vk, timed, read))
    (alone_now, alone_ahead, _, alone_busiest), (now, ahead, reads, busiest) = results[False], results[True]
    rows = [
        *lateness_rows((alone_now, alone_ahead), (now, ahead), f"a read of {posts} posts' comments"),
        Row(
            "comment reads (wall.getComments) while the posts went",
            str(reads),
            "> 0 (the read was going on)",
            reads > 0,
        ),
        busiest_row(busiest, alone_busiest),
    ]
    notes = [
        f"{timed} posts of each kind per run, one every 0.7 s; the read is started (its job) just before the first; "
        "lateness is the start of the post's wall.post at the fake minus its due time.",
        "Reads are paced at half the token's rate in buckets of their own and count in its sliding window with "
        "the posts; a post due now that nothing announced waits at most for vk_api's own spacing of the session's "
        "requests (0.34 s) after a read just sent. A post the daemon knows is coming is never waited for: reads "
        "step aside a request slot plus 1 s before its time.",
    ]
    print("\n".join(f"{r.what}: {r.value}  [{r.verdict}]" for r in rows))
    if not args.no_results:
        report("Comment watch", "a publish while the comments of many posts are read", rows, notes, quick=args.quick)


if __name__ == "__main__":
    main()
