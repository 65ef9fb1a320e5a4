"""The daemon's start, which waits for a database that does not answer yet, and ``run --once``'s run, which ends
once nothing is due and nothing is in flight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from scheduler import store
from scheduler.alerts import Alert
from scheduler.daemon.runtime import Runtime
from scheduler.db import SCHEMA_HEAD, schema_revision
from scheduler.errors import ConfigError, DatabaseError, SmmError
from scheduler.media import MediaStore
from scheduler.sdnotify import Notifier
from scheduler.views import plural, some_of

log = logging.getLogger("smm.daemon")


async def upgrade_schema(rt: Runtime) -> None:
    """Bring the database's schema to this version's (on the writer's thread), and say so when it changed."""
    before = after = await rt.db_read(schema_revision)
    if before != SCHEMA_HEAD:
        from scheduler.migrate import upgrade

        before, after = await asyncio.get_running_loop().run_in_executor(rt.executor, upgrade, rt.db)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "none", after, extra={"action": "migrated"})


async def sweep_media(rt: Runtime, now: datetime) -> None:
    """Remove the media copies a killed process left half written."""
    sweep = partial(MediaStore(rt.config.media_dir).sweep, now, deep=True)
    if swept := await asyncio.get_running_loop().run_in_executor(rt.executor, sweep):
        log.info("removed %s left by a killed process", plural(swept, "media copy", "media copies"))


IN_FLIGHT_NAMED = 5
"""An ``unclean_start`` alert names this many of the deliveries left in flight, then counts the rest."""
LOOK_BATCH = 100
"""Deliveries left in flight read at once to name them; past that, they are counted."""


async def left_in_flight(rt: Runtime, now: datetime) -> Alert | None:
    """What a stopped daemon left being published (to be checked before anything is sent again), logged, as the
    ``unclean_start`` alert that names its posts and channels; None when it left nothing. The database must take a
    write before the daemon starts."""
    if rt.db.is_sqlite:
        # One daemon per SQLite file: everything still publishing was left by a crash.
        await rt.db_call(store.expire_leases, await rt.db_call(store.all_publishing), now)
    await rt.db_call(store.probe_write)
    stale = await rt.db_read(store.expired_leases, now, set(), LOOK_BATCH)
    if not stale:
        return None
    count = len(stale) if len(stale) < LOOK_BATCH else await rt.db_read(store.count_expired_leases, now)
    left = f"{plural(count, 'delivery was being', 'deliveries were being')} published when a daemon stopped"
    checking = "checking each before anything is sent again"
    log.warning("%s; %s", left, checking, extra={"action": "recovery"})
    named = [f"post {post_id} on {channel}" for post_id, channel in await rt.db_read(store.posts_and_channels, stale)]
    return Alert("unclean_start", f"{left} ({some_of(named, IN_FLIGHT_NAMED, count)}); {checking}")


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
        pending = await rt.db_read(store.owned_in_doubt, rt.owner)
        if not pending or rt.clock() > deadline:
            return
        wait = max(0.05, min(1.0, (min(pending) - rt.clock()).total_seconds()))
        await rt.sleep(wait)
