"""``smm run``: the long-running service that publishes queued posts when they are due.

The database is the only source of truth. The daemon is made of parts, each in its module:

- :mod:`~scheduler.daemon.core`: :class:`Daemon`, which assembles the parts; its start, main loop and stop.
- :mod:`~scheduler.daemon.lifecycle`: the start that waits for the database, and ``run --once``.
- :mod:`~scheduler.daemon.runtime`: what the parts share (config, adapters, clocks, the database calls).
- :mod:`~scheduler.daemon.timer`: APScheduler's jobs (the wake-up at the next due time, the safety tick, the lease
  heartbeat, the daily summary, feed polls, native runs).
- :mod:`~scheduler.daemon.look`: the look at the queue, and what it reads ahead.
- :mod:`~scheduler.daemon.workers`: one worker per channel with due posts (claim, publish, record).
- :mod:`~scheduler.daemon.reconcile`: deliveries whose lease ran out, checked before anything is sent again.
- :mod:`~scheduler.daemon.membership`: lease groups in a cluster on PostgreSQL.
- :mod:`~scheduler.daemon.periodic`: native scheduling runs and feed polls.
- :mod:`~scheduler.daemon.health`: database outages, systemd's status line, the queue summary.
- :mod:`~scheduler.daemon.process`: signals, threads, the CLI's wake-ups, the stop's last resort.

The CLI also wakes the loop (a datagram on SQLite, NOTIFY on PostgreSQL). This is the only package that reads the
clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from scheduler.channels import AdapterFactory
from scheduler.config import load_config
from scheduler.daemon.core import Daemon, utcnow
from scheduler.daemon.look import READ_AHEAD
from scheduler.daemon.periodic import NATIVE_INTERVAL
from scheduler.daemon.process import HANDLED_SIGNALS, STOP_SLACK
from scheduler.db import Database
from scheduler.errors import SmmError

__all__ = [
    "DAEMON_SQLITE_CACHE_KIB",
    "HANDLED_SIGNALS",
    "NATIVE_INTERVAL",
    "READ_AHEAD",
    "STOP_SLACK",
    "Daemon",
    "open_daemon",
    "run_daemon",
]

log = logging.getLogger("smm.daemon")

DAEMON_SQLITE_CACHE_KIB = 512
"""SQLite's page cache per connection of the daemon (writer and readers); the file stays in the OS page cache."""


def open_daemon(
    config_path: str | None,
    *,
    once: bool = False,
    clock: Callable[[], datetime] = utcnow,
    monotonic: Callable[[], float] = time.monotonic,
) -> Daemon:
    """The daemon for the config at ``config_path``, with its database and adapter factory."""
    config = load_config(config_path)
    # The daemon's recurring statements probe a few index pages; SQLite's default 2 MiB page cache per
    # connection held the pages of the daily summary for a day (resident memory for months).
    db = Database(config.database_url, cache_kib=DAEMON_SQLITE_CACHE_KIB)
    load = partial(load_config, config_path)
    return Daemon(config, db, AdapterFactory(), once=once, clock=clock, monotonic=monotonic, load=load)


def run_daemon(config_path: str | None, *, once: bool = False) -> int:
    """Run the daemon; returns the process exit code."""
    try:
        daemon = open_daemon(config_path, once=once)
    except SmmError as exc:
        log.error("%s", exc)
        return exc.exit_code
    daemon.hard_stop = True
    return asyncio.run(daemon.main())
