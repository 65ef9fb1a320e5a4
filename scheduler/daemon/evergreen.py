"""The evergreen pool's job: every hour (and once after the start), fill the empty slots within ``fill_ahead`` of
each channel this daemon publishes with posts of the channel's pool (:func:`scheduler.evergreen.fill_slots`).

A fill is one short write on the database (no network call): the delivery it makes is published later, at its
slot, like any other. Each channel's fill waits (a minute at most) until nothing is being published and nothing
falls due within a second (``idle``, given by the daemon), so that it never holds up a post's writes. In a
cluster only the daemon that holds a channel's lease group (or is its preferred owner and takes it) fills it; the
fill locks the channel besides, so a slot is never filled twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from scheduler import evergreen
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.errors import DatabaseError
from scheduler.placement import local
from scheduler.store import pool as pool_rows

log = logging.getLogger("smm.daemon")

EVERGREEN = "evergreen"
EVERGREEN_INTERVAL = 3600.0
"""Seconds between two fills from the evergreen pool (``fill_ahead`` is days: an hour is early enough)."""
IDLE_WITHIN = 1.0
IDLE_POLL = 0.5
IDLE_WAIT = 60.0
"""A fill waits for a moment when nothing falls due within ``IDLE_WITHIN`` seconds, looking every ``IDLE_POLL``,
for ``IDLE_WAIT`` seconds at most (a daemon that is never idle still fills: a fill is a few milliseconds)."""


class PoolFills:
    """The timer's fills from the evergreen pool; the empty slots no post may take are logged once each.
    ``idle(seconds)`` says whether nothing is being published and nothing falls due within ``seconds``."""

    def __init__(self, rt: Runtime, timer: Timer, membership: Membership, idle: Callable[[float], bool]) -> None:
        self.rt = rt
        self.timer = timer
        self.membership = membership
        self.idle = idle
        self.task: asyncio.Task[int] | None = None
        self.told: set[tuple[str, datetime]] = set()

    def plan(self) -> None:
        """The job, from now on (``run --once`` calls :meth:`fill` once instead, before it publishes)."""
        self.timer.every(EVERGREEN, EVERGREEN_INTERVAL, self.job, first=self.rt.clock())

    async def job(self) -> None:
        """Start a fill, unless one still runs."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.create_task(self.fill(), name="smm-evergreen")

    async def fill(self) -> int:
        """Fill the empty slots of the channels this daemon publishes; returns how many were filled."""
        rt = self.rt
        if rt.health.down_since is not None:
            return 0
        filled = 0
        try:
            names = await rt.db_read(pool_rows.pool_channels)
            for name in sorted(names):
                if rt.stopping:
                    break
                if name not in rt.adapters or not await self.membership.may_read(name):
                    continue  # not configured, disabled, or another daemon's
                await self._quiet()
                channel = rt.config.channel(name)
                now = rt.clock()
                result = await rt.db_call(evergreen.fill_slots, channel, now)
                for fill in result.fills:
                    extra = {"action": "evergreen", "channel": name, "post_id": fill.post_id}
                    log.info("%s", fill.describe(channel, now), extra=extra)
                for slot in result.unfilled:
                    if (name, slot) not in self.told:
                        self.told.add((name, slot))
                        log.warning(
                            "slot %s on %s stays empty: no post of its evergreen pool may take it (each was used "
                            "within the cooldown, or is the post next to it, or would break the content mix)",
                            local(slot, channel),
                            name,
                            extra={"action": "evergreen", "channel": name},
                        )
                filled += len(result.fills)
        except DatabaseError as exc:
            rt.health.down(exc)
        except Exception:  # a bug here must never stop publishing
            log.exception("filling slots from the evergreen pool failed; trying again in an hour")
        return filled

    async def _quiet(self) -> None:
        """Wait until the daemon is idle for a moment, ``IDLE_WAIT`` seconds at most (or until it stops)."""
        rt = self.rt
        until = rt.monotonic() + IDLE_WAIT
        while not rt.stopping and not self.idle(IDLE_WITHIN) and rt.monotonic() < until:
            await rt.sleep(IDLE_POLL)
