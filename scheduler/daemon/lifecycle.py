"""The daemon's start, which waits for a database that does not answer yet, and ``run --once``'s run, which ends
once nothing is due and nothing is in flight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from scheduler import watch
from scheduler.daemon.runtime import Runtime
from scheduler.errors import ConfigError, DatabaseError, SmmError
from scheduler.sdnotify import Notifier

log = logging.getLogger("smm.daemon")


async def start(rt: Runtime, startup: Callable[[], Awaitable[None]], notifier: Notifier) -> int | None:
    """Run ``startup``, again and again while the database does not answer; an exit code when the daemon cannot
    start (or was stopped while it waited), None once it has started."""
    delay = 1.0
    while True:
        try:
            await startup()
            return None
        except DatabaseError as exc:
            # A SQLite file that is read-only, damaged or not a database will not heal by waiting; a server that
            # does not answer (or a file locked for a while) may.
            if rt.once or (rt.db.is_sqlite and "locked" not in str(exc)):
                log.error("%s", exc, extra={"action": "startup_failed"})
                return 1
            if not rt.stopping:
                log.error(
                    "database unavailable at start: %s; retrying in %.0fs", exc, delay, extra={"action": "db_down"}
                )
                notifier.status(f"waiting for the database: {exc}")
                await rt.sleep(delay)
                delay = min(30.0, delay * 2)
            if rt.stopping:  # asked to stop while waiting: nothing was started, a clean stop
                log.info("stopped before the database became available", extra={"action": "stopped"})
                return 0
        except SmmError as exc:
            log.error("%s", exc, extra={"action": "startup_failed"})
            return exc.exit_code if isinstance(exc, ConfigError) else 1


async def run_once(
    rt: Runtime,
    cycle: Callable[..., Awaitable[None]],
    in_flight: Callable[[], list[asyncio.Task[Any]]],
) -> None:
    """``smm run --once``: publish what is due now, wait for what is in flight, and for the outcomes in doubt this
    daemon holds (a little past ``reconcile_delay``)."""
    deadline = rt.clock() + timedelta(seconds=rt.config.daemon.reconcile_delay + 5)
    cutoff: datetime = rt.clock()
    while not rt.stopping:
        try:
            await cycle(until=cutoff)
        except DatabaseError as exc:
            rt.health.down(exc)
            return
        if tasks := in_flight():
            stop = asyncio.ensure_future(rt.stopped.wait())
            ended = asyncio.ensure_future(asyncio.wait(tasks))
            await asyncio.wait([stop, ended], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            ended.cancel()  # not the tasks: the shutdown lets them finish within the grace
            continue
        pending = await rt.db_read(watch.owned_in_doubt, rt.owner)
        if not pending or rt.clock() > deadline:
            return
        wait = max(0.05, min(1.0, (min(pending) - rt.clock()).total_seconds()))
        await rt.sleep(wait)
