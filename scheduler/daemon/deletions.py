"""The deletion job: takes down the published posts whose deletion is due (``smm delete``, ``--expire-at``), and
cancels the queued deliveries of posts that expired before they went out.

A job of the timer every :data:`DELETE_INTERVAL` seconds from the start (so an expiry that passed while the
daemon was down is done at start, and logged), and a date job at the next expiry. Each run goes in the background,
never two at a time, paced with the publishing limits of each channel; a channel's deletions are made by the
daemon that publishes on it (its lease group).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from adapters.base import RateLimit
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.deleting import Deleter
from scheduler.errors import DatabaseError
from scheduler.ratelimit import Limiter, pace
from scheduler.store import deletions
from scheduler.timefmt import format_local

log = logging.getLogger("smm.delete")

DELETE_INTERVAL = 15.0
"""Seconds between two looks for deletions due (``smm delete`` waits at most this long; at most the daemon's tick)."""
DELETIONS = "deletions"
NEXT_EXPIRY = "next-expiry"
IDLE_POLL = 0.5
"""Seconds between two looks at whether the daemon publishes nothing now (a deletion waits for that)."""
LATE = timedelta(minutes=1)
"""A deletion found due for longer than this was missed while no daemon ran: it is logged as such."""


class DeletionRuns:
    """Run the deletions due, one run at a time, in the background."""

    def __init__(
        self,
        rt: Runtime,
        timer: Timer,
        deleter: Deleter,
        limiter: Limiter,
        membership: Membership,
        idle: Callable[[float], bool],
    ) -> None:
        self.rt = rt
        self.idle = idle
        self.timer = timer
        self.deleter = deleter
        self.limiter = limiter
        self.membership = membership
        self.task: asyncio.Task[None] | None = None

    def plan(self) -> None:
        """The job, from now on (the first run at once)."""
        interval = min(DELETE_INTERVAL, self.rt.config.daemon.tick)
        self.timer.every(DELETIONS, interval, self.job, first=self.rt.clock())

    async def job(self) -> None:
        self.start(self.rt.clock())

    def start(self, now: datetime) -> None:
        """Start a run, unless one still runs or the daemon stops."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.create_task(self._run(now))

    async def _run(self, now: datetime) -> None:
        rt = self.rt
        try:
            expired = await rt.db_read(deletions.expired_queued, now)
            for post_id, channel in await rt.db_call(deletions.expire_queued, expired, now) if expired else []:
                log.info(
                    "post %d on %s expired before it went out: cancelled",
                    post_id,
                    channel,
                    extra={"post_id": post_id, "channel": channel, "action": "expired_unpublished"},
                )
            for delivery_id, channel, due in await rt.db_read(deletions.deletions_due, now, sorted(rt.adapters)):
                if rt.stopping:
                    return
                await self._one(delivery_id, channel, due)
            upcoming = await rt.db_read(deletions.next_deletion, now)
            if upcoming is not None and not rt.once:
                self.timer.at(NEXT_EXPIRY, upcoming, self.job)
        except DatabaseError as exc:
            rt.health.down(exc)
        except Exception:  # never let a bug here stop publishing
            log.exception("deleting posts failed; trying again later")

    async def _one(self, delivery_id: int, channel: str, due: datetime) -> None:
        rt = self.rt
        adapter = rt.adapters.get(channel)
        if adapter is None or not await self.membership.may_publish(channel):
            return
        if not await self._turn(adapter.rate_limits()):
            return
        deletion = await rt.db_call(deletions.claim_deletion, delivery_id, rt.clock(), rt.owner, rt.lease())
        if deletion is None:
            return  # another daemon took it, or it is no longer due
        if rt.clock() - due > LATE and deletion.attempt_number == 1 and deletion.open_since is None:
            log.warning(
                "post %d on %s was due for deletion at %s, while no daemon ran: deleting it now",
                deletion.post_id,
                channel,
                format_local(due, rt.config.zone_of(channel)),
                extra={"post_id": deletion.post_id, "channel": channel, "action": "late_deletion"},
            )
        rt.inflight.add(delivery_id)
        try:
            await self.deleter.delete(deletion, adapter)
        finally:
            rt.landed(delivery_id)

    async def _turn(self, limits: tuple[RateLimit, ...]) -> bool:
        """Wait until nothing is being published and nothing falls due within the channel's pace (due posts go
        first; ``run --once`` publishes its due posts before it looks for deletions), then take a place in the
        channel's rate limits; False when the daemon stops meanwhile."""
        rt = self.rt
        horizon = max((limit.per / limit.rate for limit in limits), default=0.0) + 1.0
        while not rt.once and not self.idle(horizon):
            await rt.sleep(IDLE_POLL)
            if rt.stopping:
                return False
        return await pace(self.limiter, limits, rt.monotonic, rt.sleep, rt.is_stopping)
