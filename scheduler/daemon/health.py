"""The daemon's health as it reports it: database outages (and how long to wait before the next look), the status
line for systemd, and the queue summary in the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from scheduler.alerts import Alert, ignore_alert
from scheduler.daemon.process import return_free_memory
from scheduler.errors import DatabaseError
from scheduler.sdnotify import PROGRESS_INTERVAL, Notifier
from scheduler.views import plural, some_of
from scheduler.watch import SummaryLine

log = logging.getLogger("smm.daemon")

DB_RETRY_FIRST = 1.0
DB_RETRY_MAX = 30.0
"""Seconds before the first look at a database that failed, doubling up to this while it keeps failing (a full disk
answers at once: looking again at every wake-up would log and retry several times a second)."""


class DatabaseHealth:
    """Whether the database answers. An outage is logged once when it starts, then at most once a minute; while it
    lasts, the next look waits (longer while the database keeps failing)."""

    def __init__(self, notifier: Notifier, monotonic: Callable[[], float]) -> None:
        self.notifier = notifier
        self.monotonic = monotonic
        self.down_since: float | None = None
        self.logged_at = 0.0
        self.failures = 0
        self.retry_at = 0.0  # monotonic: no cycle before it while the database is down
        self.backoff = DB_RETRY_FIRST
        self.write_failing = False  # the outage is one of writes: a read that succeeds does not end it

    def down(self, exc: DatabaseError) -> None:
        """A database call failed."""
        self.failures += 1
        now = self.monotonic()
        if self.down_since is None:
            self.down_since = self.logged_at = now
            self.backoff = DB_RETRY_FIRST
            log.error(
                "database unavailable: %s; trying again in %.0fs, then less and less often (every %.0fs at most)",
                exc,
                DB_RETRY_FIRST,
                DB_RETRY_MAX,
                extra={"action": "db_down"},
            )
            self.notifier.status(f"waiting for the database: {exc}")
        elif now >= self.retry_at:  # a try after the wait failed (not one more failure of the same try)
            self.backoff = min(DB_RETRY_MAX, self.backoff * 2)
            if now - self.logged_at >= 60:
                self.logged_at = now
                log.error(
                    "database still unavailable after %.0fs: %s",
                    now - self.down_since,
                    exc,
                    extra={"action": "db_down"},
                )
                self.notifier.status(f"waiting for the database: {exc}")
        else:
            return
        self.retry_at = now + self.backoff

    def up(self) -> None:
        """A database call went through."""
        self.write_failing = False
        if self.down_since is not None:
            log.info(
                "database available again after %.0fs", self.monotonic() - self.down_since, extra={"action": "db_up"}
            )
            self.down_since = None

    def waiting(self) -> float | None:
        """Seconds left before the next look at a database that is down; None when it is up or the wait is over."""
        if self.down_since is None:
            return None
        left = self.retry_at - self.monotonic()
        return left if left > 0 else None


class Progress:
    """The status line for systemd; one held back (another went out less than a second ago) goes out later. Once
    stopping, the stopping line stays."""

    def __init__(self, notifier: Notifier, line: Callable[[], str], is_stopping: Callable[[], bool]) -> None:
        self.notifier = notifier
        self.line = line
        self.is_stopping = is_stopping
        self.timer: asyncio.TimerHandle | None = None

    def report(self) -> None:
        if self.is_stopping():
            return
        if self.notifier.progress(self.line()) and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(PROGRESS_INTERVAL, self._due)

    def _due(self) -> None:
        self.timer = None
        self.report()


class WarnOnce:
    """Warnings about a lasting state (deliveries that wait for a channel), at most once an hour for each."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self.seen: dict[str, float] = {}

    def __call__(self, key: str, message: str) -> None:
        now = self.monotonic()
        if now - self.seen.get(key, -1e9) >= 3600:
            self.seen[key] = now
            log.warning("%s", message, extra={"action": "waiting"})


def announce_start(notifier: Notifier, channels: list[str], *, once: bool) -> None:
    """Tell systemd the daemon is ready, and the log which channels it publishes to."""
    notifier.ready(f"ready: {plural(len(channels), 'channel', 'channels')}")
    log.info(
        "smm %s: publishing to %s",
        "run --once" if once else "daemon started",
        f"{plural(len(channels), 'channel', 'channels')}: {some_of(channels)}" if channels else "no channels",
        extra={"action": "started"},
    )


async def log_summary(
    read: Callable[[], Awaitable[list[SummaryLine]]],
    before: Callable[[], Awaitable[None]],
    alert: Callable[[Alert], None] = ignore_alert,
) -> None:
    """What each channel publishes next, and queues about to run dry (each an alert of its own, naming its
    channel): ``before`` (quota deferrals) then ``read``."""
    try:
        await before()
        lines = await read()
    except DatabaseError as exc:
        log.error("cannot read the queue summary: %s", exc)
        return
    for line in lines:
        log.log(line.level, "%s", line.text, extra={"action": "summary"})
        if line.dry:
            alert(Alert("queue_dry", line.about, channel=line.channel))
    return_free_memory()
