"""The look at the queue: what is due, what ran out of its lease, when to wake next; and what it reads ahead.

A look that finds something due within ``READ_AHEAD`` also reads what falls due until then; the wake-ups within it
start their channels' workers without a look, until something may have changed the queue (a poke, the tick, a write
that may make something due sooner, a lease running out, the end of what was read).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler import store, watch
from scheduler.config import Config
from scheduler.publisher import apply_late_policy
from scheduler.timefmt import format_local
from scheduler.views import plural

log = logging.getLogger("smm.daemon")

READ_AHEAD = timedelta(seconds=2)
"""How far ahead a cycle reads what falls due, so that the wake-ups within it need no look at the queue."""


@dataclass(frozen=True)
class Found:
    """What a cycle found: the channels due now, the deliveries whose lease ran out, and the next wake-up."""

    due: list[str]
    expired: list[int]
    next_wake: datetime | None


class ReadAhead:
    """What the last look read ahead: ``(due time, channel)`` in time order, complete up to ``until``; and when the
    first lease still running ends (a look is needed then). :meth:`forget` drops it; a look that one overtook (it
    started before) is not kept."""

    def __init__(self) -> None:
        self.items: deque[tuple[datetime, str]] = deque()
        self.until: datetime | None = None
        self.lease_end: datetime | None = None
        self.epoch = 0  # counts the times it was forgotten

    def forget(self) -> None:
        self.until = None
        self.epoch += 1

    def keep(
        self, epoch: int, items: Iterable[tuple[datetime, str]], until: datetime, lease_end: datetime | None
    ) -> None:
        """Keep what a look that started at ``epoch`` read ahead, unless something made it stale since."""
        if epoch == self.epoch:
            self.items, self.until, self.lease_end = deque(items), until, lease_end

    def serve(self, now: datetime) -> Found | None:
        """The channels read ahead as due by ``now``, and the next wake-up; None when a look is needed (nothing read
        ahead holds, a lease ends, or what was read runs out before the next due time is known)."""
        if self.until is None or now >= self.until:
            return None
        if self.lease_end is not None and self.lease_end <= now:
            return None
        due: dict[str, None] = {}
        while self.items and self.items[0][0] <= now:
            due[self.items.popleft()[1]] = None
        if not self.items:
            return None  # the next due time lies beyond what was read: this cycle's look reads on
        upcoming = self.items[0][0]
        return Found(list(due), [], upcoming if self.lease_end is None else min(upcoming, self.lease_end))


Reader = Callable[..., Awaitable[Any]]


class Look:
    """The cycle's look at the queue, with what goes with it: late posts after a gap in the clock (their late
    policy), and one log line per post queued since the last look."""

    def __init__(
        self,
        config: Callable[[], Config],
        ahead: ReadAhead,
        db_call: Reader,
        db_read: Reader,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        *,
        once: bool,
    ) -> None:
        self.config = config
        self.ahead = ahead
        self.db_call = db_call
        self.db_read = db_read
        self.monotonic = monotonic
        self.once = once
        self.last_seen_id = 0
        self.late_cutoff: datetime | None = None
        self.late_seen: set[int] = set()
        self.last_wall = clock()
        self.last_mono = monotonic()

    async def start(self, now: datetime) -> None:
        """At start: posts due since ``late_grace`` before now are late; the ones queued so far are not news."""
        self.late_cutoff = now - self.config().daemon.late_grace
        self.last_seen_id = await self.db_read(store.newest_id)

    async def __call__(
        self, now: datetime, until: datetime | None, exclude: set[int], *, recovering: bool = False
    ) -> tuple[Found, list[int] | None]:
        """What is due at ``now`` (at ``until`` for ``run --once``), served from what was read ahead when that
        holds (not while ``recovering`` from a database outage); and the expired leases the look left out because
        they are in ``exclude`` (None when no look was needed)."""
        self._detect_gap(now)
        served = None if until or recovering or self.late_cutoff is not None else self.ahead.serve(now)
        if served is not None:
            return served, None
        config = self.config()
        if self.late_cutoff is not None:
            lines = await self.db_call(apply_late_policy, config, self.late_cutoff, now, self.late_seen)
            for line in lines:
                log.warning("%s", line, extra={"action": "late"})
            if not lines:
                self.late_cutoff = None
        # Everything the cycle needs to read, in one round trip (an idle daemon wakes as rarely as it can).
        self.ahead.forget()
        epoch = self.ahead.epoch
        ahead = None if self.once else READ_AHEAD
        look = await self.db_read(watch.look, self.last_seen_id, min(now, until) if until else now, now, exclude, ahead)
        if look.ahead_until is not None:
            # Nothing that may change it happened while the look ran: it stands until something does.
            self.ahead.keep(epoch, look.upcoming, look.ahead_until, look.lease_end)
        self._log_new_posts(config, look.new, look.newest)
        return Found(look.due, look.expired, look.next_wake), look.held

    def _log_new_posts(self, config: Config, rows: list[Any], newest: int) -> None:
        """One line per delivery queued since the last look (the CLI writes them; the operator reads this log)."""
        for d in rows:
            if d.status != "queued":
                continue
            when = format_local(d.next_attempt_at or d.due_at, config.zone_of(d.channel))
            log.info(
                "queued post %d on %s for %s",
                d.post_id,
                d.channel,
                when,
                extra={"post_id": d.post_id, "channel": d.channel, "action": "queued"},
            )
        skipped = newest - (rows[-1].id if rows else newest)
        if skipped > 0:
            log.info(
                "... and %s queued", plural(skipped, "more delivery", "more deliveries"), extra={"action": "queued"}
            )
        self.last_seen_id = newest

    def _detect_gap(self, now: datetime) -> None:
        """A suspend or a clock change: posts due during it are late (their policy applies at this look)."""
        daemon = self.config().daemon
        wall = (now - self.last_wall).total_seconds()
        mono = self.monotonic() - self.last_mono
        self.last_wall, self.last_mono = now, self.monotonic()
        grace = daemon.late_grace.total_seconds()
        if wall - mono > grace / 2 or wall > daemon.tick * 3 + grace:
            log.warning(
                "the clock moved %.0fs while this process saw %.0fs pass (suspend or clock change); "
                "checking for missed posts",
                wall,
                mono,
                extra={"action": "gap"},
            )
            self.late_cutoff = now - daemon.late_grace
