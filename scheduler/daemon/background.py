"""The daemon's work besides publishing, in one place: the runs for networks that schedule posts themselves, the
feed polls, the comment watch, the evergreen pool's fills, the deletions, the results collection and the report
figures' catch-up.

Each is a part of its own module with jobs on the timer; :class:`Background` builds them, plans their jobs (at
start and after each reload), starts what ``smm run --once`` does once, and lists what is still running when the
daemon stops. New periodic work is a part added here, never a branch of the main loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from scheduler.daemon.comments import CommentWatch
from scheduler.daemon.deletions import DeletionRuns
from scheduler.daemon.evergreen import PoolFills
from scheduler.daemon.figures import FigureUpkeep
from scheduler.daemon.membership import Membership
from scheduler.daemon.periodic import FeedPolls, NativeRuns
from scheduler.daemon.results import ResultsCollection
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.daemon.workers import Workers
from scheduler.deleting import Deleter
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter


class Background:
    """The parts that work off the publishing path; ``idle(seconds)`` tells them whether nothing is being published
    and nothing falls due within ``seconds`` (they wait for that, or pace themselves behind the posts)."""

    def __init__(
        self,
        rt: Runtime,
        timer: Timer,
        publisher: Publisher,
        limiter: Limiter,
        membership: Membership,
        workers: Workers,
        idle: Callable[[float], bool],
    ) -> None:
        self.rt = rt
        self.native = NativeRuns(rt, timer, publisher, limiter, membership)
        self.feeds = FeedPolls(rt, timer)
        self.comments = CommentWatch(rt, timer, limiter, membership, idle)
        self.pool = PoolFills(rt, timer, membership, idle)
        self.deletions = DeletionRuns(rt, timer, Deleter(publisher, rt.owner), limiter, membership, idle)
        self.figures = FigureUpkeep(rt, timer, membership, workers)
        self.results = ResultsCollection(rt, timer, limiter, membership, workers, self.figures.catch_up)

    def plan(self) -> None:
        """The periodic jobs, from the config as it is now: at start (not with ``run --once``) and after a reload."""
        self.native.plan()
        self.comments.plan()
        self.deletions.plan()
        self.results.plan()
        self.figures.plan()
        self.pool.plan()

    async def start(self) -> None:
        """At start: the feed polls (``run --once`` polls now), and with ``run --once`` the fills of empty slots
        (before it publishes: they may be due now), a native run and a deletion run."""
        rt = self.rt
        if rt.config.feeds:
            if rt.once:
                await self.feeds.poll()
            else:
                self.feeds.plan(rt.clock())
        if rt.once:
            await self.pool.fill()
            self.native.start(rt.clock())
            self.deletions.start(rt.clock())

    def running(self) -> list[asyncio.Task[None]]:
        """The runs still going on."""
        tasks: list[asyncio.Task[None]] = []
        parts = (self.native, self.comments, self.deletions, self.results, self.figures, self.pool)
        for task in (part.task for part in parts):
            if task is not None and not task.done():
                tasks.append(task)  # type: ignore[arg-type]
        return tasks
