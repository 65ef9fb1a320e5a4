"""The report's figures kept up to date by the daemon (:func:`scheduler.store.figures.catch_up`): the deliveries
published since the last catch-up added, a channel filled whole the first time (and after its time zone changed),
in short transactions that wait for the posts.

With ``[results]`` on, each results run ends with a catch-up (:class:`~scheduler.daemon.results.ResultsCollection`
calls :meth:`FigureUpkeep.catch_up`). With it off, the catch-up is the ``figures`` job of the timer, every
``[results] interval``, so that ``smm report`` finds the figures kept and has little to add before it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta, tzinfo

from scheduler.daemon.membership import Membership
from scheduler.daemon.results import FIRST_RUN, NEAR
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.daemon.workers import Workers
from scheduler.errors import DatabaseError
from scheduler.store import figures

log = logging.getLogger("smm.results")

FIGURES = "figures"

FILL_BATCH = 2_000
"""Deliveries per transaction when a channel's report figures are filled whole (after the upgrade to them, or a new
time zone): a transaction short enough that a post never waits long behind it (bench/RESULTS.md, "Report figures'
first fill", times them)."""

FILL_PAUSE = 0.15
"""Seconds between two of those transactions: longer than SQLite's longest wait between two tries of a busy lock
(0.1 s), so that another process waiting to write (``smm add``) gets its turn."""


class FigureUpkeep:
    """The catch-up of the report's figures: the ``figures`` job (while ``[results]`` is off), and the step that
    ends each results run."""

    def __init__(self, rt: Runtime, timer: Timer, membership: Membership, workers: Workers) -> None:
        self.rt = rt
        self.timer = timer
        self.membership = membership
        self.workers = workers
        self.task: asyncio.Task[None] | None = None

    def plan(self) -> None:
        """The job, from :data:`~scheduler.daemon.results.FIRST_RUN` on, while ``[results]`` is off (after start
        and each reload); with it on, the results runs catch up."""
        rt = self.rt
        if rt.once or rt.config.results.enabled:
            self.timer.remove(FIGURES)
            return
        first = rt.clock() + timedelta(seconds=FIRST_RUN)
        self.timer.every(FIGURES, rt.config.results.interval, self.job, first=first)

    async def job(self) -> None:
        """Start a run, unless one still runs or the daemon stops."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.create_task(self.run(), name=FIGURES)

    async def run(self) -> None:
        """Bring the figures of the channels this daemon collects up to date; never raises."""
        rt = self.rt
        try:
            owned = [c for c in rt.config.channels if c.name in rt.adapters]
            zones = {c.name: c.timezone for c in owned if await self.membership.may_read(c.name)}
            await self.catch_up(zones)
        except Exception as exc:
            if isinstance(exc, DatabaseError):
                log.warning("keeping the report's figures: the database failed (%s); trying again at the next run", exc)
            else:  # never let a bug here touch publishing
                log.error("keeping the report's figures failed; trying again at the next run", exc_info=exc)

    async def catch_up(self, zones: Mapping[str, tzinfo]) -> None:
        """The report's figures of ``zones``' channels brought up to date (:func:`figures.catch_up`). A channel's
        first fill goes in transactions of ``FILL_BATCH`` deliveries ``FILL_PAUSE`` apart, each once no post is
        publishing or due within ``NEAR`` seconds: the database is the posts' first."""
        rt = self.rt
        while not rt.stopping:
            if self.workers.tasks or self.timer.due_within(NEAR):
                await rt.sleep(FILL_PAUSE)
            elif await rt.db_call(figures.catch_up, zones, rt.clock(), batch=FILL_BATCH):
                return
            else:
                await rt.sleep(FILL_PAUSE)
