"""Periodic work besides publishing, each run by a job of the timer: the runs for networks that schedule posts
themselves, and the polls of the ``[[feeds]]``."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from scheduler import store
from scheduler.config import ChannelConfig
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.errors import DatabaseError, SmmError
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter, pace

log = logging.getLogger("smm.daemon")

NATIVE_INTERVAL = 30.0
"""Seconds between two looks for posts to hand to (or delete on) networks that schedule posts themselves."""
NATIVE = "native"
FEEDS = "feeds"


class NativeRuns:
    """Hand upcoming posts of native-scheduling channels to their networks, and delete there the ones since
    cancelled or moved: a job every ``NATIVE_INTERVAL`` while a channel schedules natively, each run in the
    background, never two at a time."""

    def __init__(
        self, rt: Runtime, timer: Timer, publisher: Publisher, limiter: Limiter, membership: Membership
    ) -> None:
        self.rt = rt
        self.timer = timer
        self.publisher = publisher
        self.limiter = limiter
        self.membership = membership
        self.task: asyncio.Task[None] | None = None

    def channels(self) -> list[ChannelConfig]:
        return [c for c in self.rt.config.channels if c.native_schedule and c.name in self.rt.adapters]

    def plan(self) -> None:
        """The job, from now on, while the config has a channel for it (after start and each reload)."""
        if self.channels():
            self.timer.every(NATIVE, NATIVE_INTERVAL, self.job, first=self.rt.clock())
        else:
            self.timer.remove(NATIVE)

    async def job(self) -> None:
        self.start(self.rt.clock())

    def start(self, now: datetime) -> None:
        """Start a run, unless one still runs (or the daemon stops, or no channel schedules natively)."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        if channels := self.channels():
            self.task = asyncio.create_task(self._run(channels, now))
            self.task.add_done_callback(lambda _: self.rt.poke())

    async def _run(self, channels: list[ChannelConfig], now: datetime) -> None:
        from scheduler import native

        rt = self.rt
        try:
            await native.delete_stale(self.publisher, rt.adapters)
            for channel in channels:
                adapter = rt.adapters.get(channel.name)
                if adapter is None or not self.membership.owns(channel.name):
                    continue
                least, most = adapter.native_lead
                earliest = now + timedelta(seconds=least) + store.ARM_MARGIN
                latest = now + timedelta(seconds=most) - timedelta(hours=1)
                for delivery_id in await rt.db_read(store.arm_candidates, [channel.name], earliest, latest, 20):
                    if rt.stopping:
                        return
                    if not await pace(self.limiter, adapter.rate_limits(), rt.monotonic, rt.sleep, rt.is_stopping):
                        return
                    claim = await rt.db_call(store.claim_for_arming, delivery_id, rt.clock(), rt.owner, rt.lease())
                    if claim is None:
                        continue
                    rt.inflight.add(claim.delivery_id)
                    try:
                        await native.arm(self.publisher, claim, adapter, channel)
                    finally:
                        rt.landed(claim.delivery_id)
        except DatabaseError as exc:
            rt.health.down(exc)
        except Exception:  # never let a bug here stop publishing
            log.exception("native scheduling failed; trying again later")


class FeedPolls:
    """Read the ``[[feeds]]`` whose interval has passed and queue their new entries; each poll plans the next one
    as a date job of the timer (none with ``run --once``, which polls once)."""

    def __init__(self, rt: Runtime, timer: Timer) -> None:
        self.rt = rt
        self.timer = timer

    def plan(self, when: datetime) -> None:
        self.timer.at(FEEDS, when, self.poll)

    async def poll(self) -> None:
        rt = self.rt
        if rt.stopping or not rt.config.feeds:
            return
        from scheduler.feeds import next_poll, poll_feeds

        try:
            lines = await asyncio.to_thread(poll_feeds, rt.config, rt.db, rt.clock())
            upcoming = await asyncio.to_thread(next_poll, rt.config, rt.db, rt.clock())
        except Exception as exc:  # planned again whatever went wrong: a failed poll must not end the polling
            bug = not isinstance(exc, SmmError)
            log.error("reading the feeds failed: %s", exc, extra={"action": "feed"}, exc_info=bug)
            upcoming = rt.clock() + timedelta(minutes=5)
            lines = []
        for line in lines:
            level = logging.WARNING if ("rejected" in line or "waiting" in line or "cannot" in line) else logging.INFO
            log.log(level, "%s", line, extra={"action": "feed"})
        if upcoming is not None and not rt.once:
            self.plan(upcoming)
        rt.poke()
