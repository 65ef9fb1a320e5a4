"""``smm run``: the long-running service that publishes queued posts when they are due.

The database is the only source of truth. APScheduler (in-memory) only keeps time: a date job wakes the loop at
the next due time (moved whenever that changes) and an interval job ticks as a safety net; the CLI also wakes the
loop (a datagram on SQLite, NOTIFY on PostgreSQL). Each wake-up, the loop asks the database what is due and starts
one worker per channel with due posts; a worker paces its channel, claims one delivery at a time (committing the
attempt before the network is called) and records the outcome. This is the only module that reads the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from adapters import Adapter
from scheduler import cluster, store, watch
from scheduler import quota as quota_mod
from scheduler import repository as repo
from scheduler.batch import WriteBatcher
from scheduler.channels import AdapterFactory
from scheduler.config import ChannelConfig, Config, load_config
from scheduler.db import SCHEMA_HEAD, Database, schema_revision
from scheduler.errors import ConfigError, DatabaseError, SmmError
from scheduler.lock import DaemonLock
from scheduler.log import redact
from scheduler.media import MediaStore
from scheduler.publisher import Publisher, apply_late_policy
from scheduler.ratelimit import Limiter, pace
from scheduler.sdnotify import PROGRESS_INTERVAL, Notifier
from scheduler.store import Claim
from scheduler.store.executor import Executor
from scheduler.timefmt import format_local
from scheduler.views import plural, some_of

log = logging.getLogger("smm.daemon")
P = ParamSpec("P")
R = TypeVar("R")

MAX_CONCURRENT_PER_HOST = 10
NATIVE_INTERVAL = 30.0
"""Seconds between two looks for posts to hand to (or delete on) networks that schedule posts themselves."""
TAKEOVER_DELAY = 2.0
"""Seconds a daemon leaves a due lease group to its preferred owner before taking it itself."""
SUMMARY_INTERVAL = 86400.0
DB_RETRY_FIRST = 1.0
DB_RETRY_MAX = 30.0
"""Seconds before the first look at a database that failed, doubling up to this while it keeps failing (a full disk
answers at once: looking again at every wake-up would log and retry several times a second)."""
STOP_SLACK = 2.0
"""Seconds past ``shutdown_grace`` after which ``smm run`` exits whatever still runs (a network call in a thread that
a server keeps alive a byte at a time cannot be cancelled): what was in flight is reconciled at the next start."""


READ_AHEAD = timedelta(seconds=2)
"""How far ahead a cycle reads what falls due, so that the wake-ups within it need no look at the queue."""
# Writes after which what was read ahead still holds: they take deliveries out of the queue or change no delivery.
# Any other write of this daemon may give a delivery a time the read-ahead does not have, or one sooner than the
# planned wake-up: it wakes the loop to look at the queue again. (Quota deferrals, which move deliveries later, poke
# the loop themselves; a worker that stops before its channel is drained, a claim that took nothing among them, also
# drops the read-ahead.)
_KEEPS_READ_AHEAD = frozenset(
    {
        store.claim,
        store.record_published,
        store.extend_lease,
        repo.set_attention,
        repo.attention,  # a read
        # A cluster's membership (a lease group newly taken may have deliveries due: acquire is not here):
        cluster.register,
        cluster.heartbeat,
        cluster.live_instances,
        cluster.release,
        cluster.forget_dead,
    }
)


@dataclass
class _ReadAhead:
    """What a look read ahead: ``(due time, channel)`` in time order, complete up to ``until``; and when the first
    lease still running ends (a look is needed then)."""

    items: deque[tuple[datetime, str]]
    until: datetime
    lease_end: datetime | None


@dataclass(frozen=True)
class _Served:
    """A cycle served from the read-ahead: the channels due now, and the next wake-up."""

    due: list[str]
    next_wake: datetime


DAEMON_SQLITE_CACHE_KIB = 512
"""SQLite's page cache per connection of the daemon (writer and readers); the file stays in the OS page cache."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Daemon:
    """The publishing service; :meth:`main` runs it until a signal (or, with ``once``, until nothing is due)."""

    def __init__(
        self,
        config_path: str | None,
        *,
        once: bool = False,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_path = config_path
        self.once = once
        self.clock = clock
        self.monotonic = monotonic
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.notifier = Notifier(monotonic=monotonic)
        self.limiter = Limiter()
        self.factory = AdapterFactory()
        self.config: Config = load_config(config_path)
        # The daemon's recurring statements probe a few index pages; SQLite's default 2 MiB page cache per
        # connection held the pages of the daily summary for a day (resident memory for months).
        self.db = Database(self.config.database_url, cache_kib=DAEMON_SQLITE_CACHE_KIB)
        self.lock: DaemonLock | None = DaemonLock(self.db.path) if self.db.path else None
        self.adapters: dict[str, Adapter] = {}
        self.broken: dict[str, str] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.rerun: set[str] = set()
        self.left_for_next_run: set[str] = set()  # run --once: channels paused by their network
        self.reconciling: dict[int, asyncio.Task[None]] = {}
        self.inflight: set[int] = set()
        self.held: set[int] = set()  # expired leases the last look left out while they were in flight
        self.late_seen: set[int] = set()
        self.host_slots: dict[str, asyncio.Semaphore] = {}
        self.stopping = False
        self.stop_deadline: float | None = None  # monotonic; in-flight work is cancelled then
        #: Set by ``run_daemon``: a stop ends the process ``STOP_SLACK`` after its deadline, whatever still runs.
        self.hard_stop = False
        self.abandoned = 0  # in-flight work the stop cut short
        self.wake = asyncio.Event()
        self.stopped = asyncio.Event()
        # SQLite takes one writer at a time; reads (WAL) go on beside it, so a slow summary never delays a claim.
        self.executor = ThreadPoolExecutor(
            max_workers=1 if self.db.is_sqlite else 4, thread_name_prefix="smm-db", initializer=_worker_thread
        )
        self.read_executor = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="smm-db-read", initializer=_worker_thread
        )
        self.summary_task: asyncio.Task[None] | None = None
        self.alive_since = self.clock()
        self.late_cutoff: datetime | None = None
        self.last_cycle_wall = self.clock()
        self.last_cycle_mono = self.monotonic()
        self.scheduler: Any = None
        self.wake_when: datetime | None = None
        self.job_tasks: set[asyncio.Task[Any]] = set()
        self.store = Executor(self.db, self.executor, self.read_executor)
        self.writes = WriteBatcher(self.db, self.executor, combine=store.COMBINED)
        self.publisher = Publisher(
            self.config, self.db_call, self.limiter, self.clock, self.monotonic, db_batch=self.batch_call
        )
        #: What falls due in the coming seconds, read by the last look at the queue; None after anything (a poke,
        #: the tick, a write of this daemon's that may make something due sooner) that may have changed it.
        self.ahead: _ReadAhead | None = None
        self.ahead_epoch = 0  # counts invalidations: a look that one overtook must not be kept
        # Several daemons on one PostgreSQL share the work by lease group (see scheduler.cluster).
        self.clustered = not self.db.is_sqlite
        self.members = cluster.Membership(self.owner, TAKEOVER_DELAY)
        self.last_seen_id = 0
        self.native_task: asyncio.Task[None] | None = None
        self.native_last = -1e9
        self.db_down_since: float | None = None
        self.db_down_logged = 0.0
        self.db_failures = 0
        self.db_retry_at = 0.0  # monotonic: no cycle before it while the database is down
        self.db_backoff = DB_RETRY_FIRST
        self.write_failing = False  # the outage is one of writes: a read that succeeds does not end it
        self.progress_timer: asyncio.TimerHandle | None = None

    # -- plumbing -----------------------------------------------------------------------------------------------

    async def db_call(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in one write transaction on the database thread."""
        try:
            result = await self.store.write(fn, *args, **kwargs)
        except BaseException as exc:
            self._wrote(fn, exc)
            raise
        self._wrote(fn)
        return result

    async def batch_call(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in a write transaction shared with the calls queued beside it."""
        try:
            result = await self.writes.call(fn, *args, **kwargs)
        except BaseException as exc:
            self._wrote(fn, exc)
            raise
        self._wrote(fn)
        return result

    def _wrote(self, fn: Callable[..., Any], error: BaseException | None = None) -> None:
        # Once the write is done (or failed): a look that started before it may not have seen it. One that went
        # through may have set a time sooner than the planned wake-up (a retry, a check of an outcome in doubt, a
        # native post's check): only a look at the queue knows, so one comes now.
        if error is None:
            self._database_up()
        elif isinstance(error, DatabaseError):
            self.write_failing = True
        if fn not in _KEEPS_READ_AHEAD:
            if error is None:
                self.poke()
            else:
                self._forget_read_ahead()

    def _landed(self, delivery_id: int) -> None:
        """A delivery is out of this daemon's hands; if the last look found its lease run out, look again."""
        self.inflight.discard(delivery_id)
        if delivery_id in self.held:
            self.held.discard(delivery_id)
            self.poke()

    def _forget_read_ahead(self) -> None:
        self.ahead = None
        self.ahead_epoch += 1

    async def db_read(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in a read transaction on a reader thread."""
        return await self.store.read(fn, *args, **kwargs)

    def poke(self) -> None:
        """Wake the main loop to look at the queue (the CLI's datagram, a LISTEN notification, the tick, a finished
        reconciliation): something may have changed, so what was read ahead no longer counts."""
        self._forget_read_ahead()
        self.wake.set()

    async def _tracked(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run an APScheduler job that awaits the database, so that shutdown can let it finish first."""
        task = asyncio.current_task()
        if task is not None:
            self.job_tasks.add(task)
        try:
            await job()
        except asyncio.CancelledError:
            if not self.stopping:
                raise  # cut short by the stop's deadline: not an error of the job
        finally:
            self.job_tasks.discard(task)  # type: ignore[arg-type]

    async def _poke_job(self) -> None:
        """The APScheduler jobs' way to wake the loop: a coroutine runs on the loop itself, where a plain function
        would run in a thread of the default executor (an asyncio.Event is not thread-safe, and the thread's
        completion wakes the loop a second time)."""
        self.poke()

    async def _due_job(self) -> None:
        """The wake-up at the next due time: what was read ahead still holds (see :meth:`_from_read_ahead`)."""
        self.wake.set()

    # -- adapters -----------------------------------------------------------------------------------------------

    def build_adapters(self, config: Config) -> tuple[dict[str, Adapter], dict[str, str]]:
        adapters: dict[str, Adapter] = {}
        broken: dict[str, str] = {}
        for channel in config.channels:
            try:
                adapters[channel.name] = self.factory.build(channel)
            except ConfigError as exc:
                broken[channel.name] = str(exc)
                log.error("channel %s is disabled: %s", channel.name, exc, extra={"channel": channel.name})
        return adapters, broken

    async def reload(self) -> None:
        """SIGHUP: read the config again; keep the old one if the new one is invalid."""
        try:
            config = load_config(self.config_path)
            if config.database_url != self.config.database_url:
                raise ConfigError(f"{config.path}: database.url: changing the database needs a restart")
        except SmmError as exc:
            log.error("config reload failed, keeping the running config: %s", exc, extra={"action": "reload_failed"})
            return
        adapters, broken = self.build_adapters(config)
        old = self.adapters
        self.config, self.adapters, self.broken = config, adapters, broken
        self.publisher.config = config
        self.native_last = -1e9  # a channel may have turned native scheduling on
        for adapter in old.values():
            await _close_quietly(adapter)
        log.info(
            "config reloaded: %s (%s)",
            plural(len(config.channels), "channel", "channels"),
            some_of(list(config.channel_names)) or "none",
            extra={"action": "reloaded"},
        )
        self.poke()

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        if self.lock is not None:
            self.lock.acquire()
        before = after = await self.db_read(schema_revision)
        if before != SCHEMA_HEAD:
            from scheduler.migrate import upgrade

            before, after = await asyncio.get_running_loop().run_in_executor(self.executor, upgrade, self.db)
        if before != after:
            log.info("database schema upgraded from %s to %s", before or "none", after, extra={"action": "migrated"})
        for warning in self.config.warnings:
            log.warning("%s", warning)
        self.adapters, self.broken = self.build_adapters(self.config)
        now = self.clock()
        sweep = partial(MediaStore(self.config.media_dir).sweep, now, deep=True)
        if swept := await asyncio.get_running_loop().run_in_executor(self.executor, sweep):
            log.info("removed %s left by a killed process", plural(swept, "media copy", "media copies"))
        if self.clustered:
            await self.db_call(cluster.register, self.owner, socket.gethostname(), os.getpid(), now)
            self.members.refresh(set(), await self.db_read(cluster.live_instances, now, self._lease()))
        self.alive_since = now
        self.late_cutoff = now - self.config.daemon.late_grace
        self.last_seen_id = await self.db_read(store.newest_id)
        if self.db.is_sqlite:
            # One daemon per SQLite file: everything still publishing was left by a crash.
            await self.db_call(watch.expire_leases, await self.db_call(store.all_publishing), now)
        await self.db_call(watch.probe_write)
        stale = await self.db_read(store.expired_leases, now, set())
        if stale:
            log.warning(
                "%s published when a daemon stopped; checking each before anything is sent again",
                plural(len(stale), "delivery was being", "deliveries were being"),
                extra={"action": "recovery"},
            )
        await self.recover_expired(now, wait=True)

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        # VK's client is synchronous (run in threads) and asyncio resolves host names in the same default pool:
        # a few slow VK calls must not hold up every other network's connections.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="smm-io", initializer=_worker_thread)
        )
        self._install_signals(loop)
        delay = 1.0
        while True:
            try:
                await self.startup()
                break
            except DatabaseError as exc:
                # A SQLite file that is read-only, damaged or not a database will not heal by waiting; a server
                # that does not answer (or a file locked for a while) may.
                lasting = self.db.is_sqlite and "locked" not in str(exc)
                if self.once or lasting:
                    log.error("%s", exc, extra={"action": "startup_failed"})
                    self._release()
                    return 1
                if not self.stopping:
                    log.error(
                        "database unavailable at start: %s; retrying in %.0fs", exc, delay, extra={"action": "db_down"}
                    )
                    self.notifier.status(f"waiting for the database: {exc}")
                    await self._sleep(delay)
                    delay = min(30.0, delay * 2)
                if self.stopping:  # asked to stop while waiting: nothing was started, a clean stop
                    log.info("stopped before the database became available", extra={"action": "stopped"})
                    self._release()
                    return 0
            except SmmError as exc:
                log.error("%s", exc, extra={"action": "startup_failed"})
                self._release()
                return exc.exit_code if isinstance(exc, ConfigError) else 1
        wake_sock = self._listen_for_pokes(loop)
        listener = asyncio.create_task(self._listen_postgres()) if not self.db.is_sqlite else None
        self._start_scheduler()
        self.summary_task = asyncio.create_task(self.log_summary())
        if self.config.feeds:
            if self.once:
                await self.poll_feeds()
            else:
                self.scheduler.add_job(self._tracked, "date", args=[self.poll_feeds], run_date=self.clock(), id="feeds")
        status = f"ready: {plural(len(self.adapters), 'channel', 'channels')}"
        self.notifier.ready(status)
        log.info(
            "smm %s: publishing to %s",
            "run --once" if self.once else "daemon started",
            f"{plural(len(self.adapters), 'channel', 'channels')}: {some_of(list(self.adapters))}"
            if self.adapters
            else "no channels",
            extra={"action": "started"},
        )
        code = 0
        try:
            if self.once:
                await self._run_once()
            else:
                await self._loop()
            if self.once and self.db_failures:
                code = 1
        finally:
            self.notifier.stopping()
            if wake_sock is not None:  # the lock's, closed with it
                loop.remove_reader(wake_sock.fileno())
            await self._shutdown()
            if listener is not None:
                listener.cancel()
            self.notifier.close()
            # Closing the loop resets the handlers to their defaults while the interpreter still joins threads and
            # closes files: a second SIGTERM (an impatient operator, a supervisor) would turn a clean stop into a
            # death by signal. Stopped is stopped; from here on, they are ignored.
            _ignore_signals(loop)
            if self.hard_stop and self.abandoned:  # the interpreter would wait for a call's thread at exit
                _exit_now(code)
        return code

    def _release(self) -> None:
        self.executor.shutdown(wait=False)
        self.read_executor.shutdown(wait=False)
        self.db.dispose()
        if self.lock is not None:
            self.lock.release()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        # Keep HANDLED_SIGNALS in step with these.
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(self.log_summary()))

    def request_stop(self, why: str = "request") -> None:
        if self.stop_deadline is None:
            log.info("%s: stopping; letting in-flight posts finish", why, extra={"action": "stopping"})
            self.notifier.stopping("stopping: finishing in-flight posts")
            self.stop_deadline = self.monotonic() + self.config.daemon.shutdown_grace
            if self.hard_stop:
                last_resort = self.config.daemon.shutdown_grace + STOP_SLACK
                threading.Thread(target=_exit_late, args=(last_resort,), name="smm-stop", daemon=True).start()
        self.stopping = True
        self.stopped.set()
        self.poke()

    def _is_stopping(self) -> bool:
        return self.stopping

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)

    def _listen_for_pokes(self, loop: asyncio.AbstractEventLoop) -> socket.socket | None:
        sock = self.lock.socket if self.lock is not None else None
        if sock is None:
            return None

        def drain() -> None:
            try:
                while sock.recv(64):
                    pass
            except OSError:
                pass
            self.poke()

        loop.add_reader(sock.fileno(), drain)
        return sock

    async def _listen_postgres(self) -> None:
        import psycopg

        url = self.db.write_engine.url
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 1.0
        while not self.stopping:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute("LISTEN smm_wake")
                    delay = 1.0
                    self.poke()
                    async for _ in conn.notifies():
                        self.poke()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep trying, the tick still runs
                reason = " ".join(redact(str(exc)).split())
                log.warning("LISTEN connection lost (%s); reconnecting in %.0fs", reason, delay)
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)

    def _start_scheduler(self) -> None:
        tick = self.config.daemon.tick
        if self.notifier.watchdog_interval:
            tick = min(tick, self.notifier.watchdog_interval)
        self.scheduler = loop_scheduler()(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self.scheduler.add_job(self._poke_job, "interval", seconds=tick, id="tick")
        if self.clustered:  # with one daemon per SQLite file, leases only matter to the next start
            self.scheduler.add_job(
                self._tracked,
                "interval",
                args=[self._heartbeat],
                seconds=max(1.0, self.config.daemon.lease / 3),
                id="lease",
            )
        if not self.once:
            self.scheduler.add_job(
                self._tracked, "interval", args=[self.log_summary], seconds=SUMMARY_INTERVAL, id="summary"
            )
        self.scheduler.start()

    def _wake_at(self, when: datetime | None) -> None:
        # Only a change touches the scheduler: each change wakes the event loop once more (an idle daemon's
        # cycle plans "no wake-up" every time).
        if self.scheduler is None:
            return
        if when == self.wake_when and (when is None or self.scheduler.get_job("wake") is not None):
            return
        self.wake_when = when
        if when is None:
            if self.scheduler.get_job("wake"):
                self.scheduler.remove_job("wake")
            return
        self.scheduler.add_job(self._due_job, "date", run_date=when, id="wake", replace_existing=True)

    async def _loop(self) -> None:
        self.poke()
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            await self.turn()
            self.notifier.watchdog()

    async def turn(self) -> None:
        """One wake-up of the loop: a cycle, and the outage a failed one means."""
        try:
            await self.cycle()
        except DatabaseError as exc:
            self._database_down(exc)
            self._wake_for_database()
        else:
            if not self.write_failing:  # a cycle's reads went through; its writes may not
                self._database_up()

    def _database_down(self, exc: DatabaseError) -> None:
        """An outage: the next cycle waits (longer while the database keeps failing); logged once when it starts,
        then at most once a minute."""
        self.db_failures += 1
        now = self.monotonic()
        if self.db_down_since is None:
            self.db_down_since = self.db_down_logged = now
            self.db_backoff = DB_RETRY_FIRST
            log.error(
                "database unavailable: %s; trying again in %.0fs, then less and less often (every %.0fs at most)",
                exc,
                DB_RETRY_FIRST,
                DB_RETRY_MAX,
                extra={"action": "db_down"},
            )
            self.notifier.status(f"waiting for the database: {exc}")
        elif now >= self.db_retry_at:  # a try after the wait failed (not one more failure of the same try)
            self.db_backoff = min(DB_RETRY_MAX, self.db_backoff * 2)
            if now - self.db_down_logged >= 60:
                self.db_down_logged = now
                log.error(
                    "database still unavailable after %.0fs: %s",
                    now - self.db_down_since,
                    exc,
                    extra={"action": "db_down"},
                )
                self.notifier.status(f"waiting for the database: {exc}")
        else:
            return
        self.db_retry_at = now + self.db_backoff

    def _wake_for_database(self) -> None:
        self._wake_at(self.clock() + timedelta(seconds=max(0.0, self.db_retry_at - self.monotonic())))

    def _database_up(self) -> None:
        self.write_failing = False
        if self.db_down_since is not None:
            log.info(
                "database available again after %.0fs", self.monotonic() - self.db_down_since, extra={"action": "db_up"}
            )
            self.db_down_since = None

    async def _run_once(self) -> None:
        deadline = self.clock() + timedelta(seconds=self.config.daemon.reconcile_delay + 5)
        cutoff = self.clock()
        while not self.stopping:
            try:
                await self.cycle(until=cutoff)
            except DatabaseError as exc:
                self._database_down(exc)
                return
            tasks = [*self.workers.values(), *self.reconciling.values()]
            if self.native_task is not None and not self.native_task.done():
                tasks.append(self.native_task)
            if tasks:
                stop = asyncio.ensure_future(self.stopped.wait())
                ended = asyncio.ensure_future(asyncio.wait(tasks))
                await asyncio.wait([stop, ended], return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                ended.cancel()  # not the tasks: the shutdown lets them finish within the grace
                continue
            pending = await self.db_read(watch.owned_in_doubt, self.owner)
            if not pending or self.clock() > deadline:
                return
            wait = max(0.05, min(1.0, (min(pending) - self.clock()).total_seconds()))
            await self._sleep(wait)

    async def _finish(self, tasks: list[asyncio.Task[Any]]) -> int:
        """Let ``tasks`` run until the stop's deadline, then cancel those still running (a second to unwind: one in
        a thread is abandoned, its delivery left leased for reconciliation); returns how many were cancelled."""
        tasks = [task for task in tasks if not task.done()]
        if not tasks:
            return 0
        assert self.stop_deadline is not None
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, self.stop_deadline - self.monotonic()))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        return len(pending)

    async def _shutdown(self) -> None:
        self.stopping = True
        if self.stop_deadline is None:  # run --once, done by itself
            self.stop_deadline = self.monotonic() + self.config.daemon.shutdown_grace
        tasks = [*self.workers.values(), *self.reconciling.values()]
        if self.native_task is not None:
            tasks.append(self.native_task)
        if cut := await self._finish(tasks):
            self.abandoned += cut
            log.warning(
                "%s not finish within shutdown_grace; checked at the next start",
                plural(cut, "publish did", "publishes did"),
                extra={"action": "shutdown_timeout"},
            )
        if self.summary_task is not None:
            await self._finish([self.summary_task])
        if self.scheduler is not None:
            self.scheduler.pause()
            # Shutting APScheduler down cancels them mid-await, which it logs as a traceback.
            self.abandoned += await self._finish(list(self.job_tasks))
            self.scheduler.shutdown(wait=False)
        if self.clustered:
            try:
                await self.db_call(cluster.leave, self.owner)
            except DatabaseError as exc:
                log.warning("could not hand back lease groups (they free themselves when their lease ends): %s", exc)
        for adapter in self.adapters.values():
            await _close_quietly(adapter)
        await self.factory.aclose()
        self.executor.shutdown(wait=True)
        self.read_executor.shutdown(wait=True)
        self.db.dispose()
        if self.lock is not None:
            self.lock.release()
        published = plural(self.publisher.published_count, "post", "posts")
        log.info("stopped (%s published this run)", published, extra={"action": "stopped"})

    # -- the cycle ----------------------------------------------------------------------------------------------

    async def cycle(self, until: datetime | None = None) -> None:
        """Look at the queue once (or at what the last look read ahead): late deliveries, due channels, expired
        leases; then plan the next wake-up."""
        now = self.clock()
        if self.db_down_since is not None and self.monotonic() < self.db_retry_at:
            self._wake_for_database()
            return
        self._detect_gap(now)
        served = self._from_read_ahead(now) if until is None and self.late_cutoff is None else None
        next_wake: datetime | None
        if served is not None:
            due, expired, next_wake = served.due, [], served.next_wake
        else:
            if self.late_cutoff is not None:
                lines = await self.db_call(apply_late_policy, self.config, self.late_cutoff, now, self.late_seen)
                for line in lines:
                    log.warning("%s", line, extra={"action": "late"})
                if not lines:
                    self.late_cutoff = None
            # Everything the cycle needs to read, in one round trip (an idle daemon wakes as rarely as it can).
            exclude = self.inflight | set(self.reconciling)
            self._forget_read_ahead()
            epoch = self.ahead_epoch
            ahead = None if self.once else READ_AHEAD
            look = await self.db_read(
                watch.look, self.last_seen_id, min(now, until) if until else now, now, exclude, ahead
            )
            if look.ahead_until is not None and epoch == self.ahead_epoch:
                # Nothing that may change it happened while the look ran: it stands until something does.
                self.ahead = _ReadAhead(deque(look.upcoming), look.ahead_until, look.lease_end)
            self._log_new_posts(look.new, look.newest)
            due, expired, next_wake = look.due, look.expired, look.next_wake
            # Those that left this daemon's hands during the look are due a look already; the others get it then.
            self.held = {i for i in look.held if i in self.inflight or i in self.reconciling}
            if len(self.held) < len(look.held):
                self.poke()
        for name in due:
            if await self._may_publish(name):
                self._start_worker(name)
        self._reconcile_all(expired)
        self._native_maintenance(now)
        self._wake_at(next_wake if next_wake is None or next_wake > now else None)
        self._report_progress()

    def _from_read_ahead(self, now: datetime) -> _Served | None:
        """The channels that the last look read ahead as due by now, and the next wake-up; None when a look is
        needed (nothing read ahead holds, the database is down, a lease ends, or what was read ahead runs out
        before the next due time is known)."""
        ahead = self.ahead
        if ahead is None or now >= ahead.until or self.db_down_since is not None:
            return None
        if ahead.lease_end is not None and ahead.lease_end <= now:
            return None
        due: dict[str, None] = {}
        while ahead.items and ahead.items[0][0] <= now:
            due[ahead.items.popleft()[1]] = None
        if not ahead.items:
            return None  # the next due time lies beyond what was read: this cycle's look reads on
        upcoming = ahead.items[0][0]
        return _Served(list(due), upcoming if ahead.lease_end is None else min(upcoming, ahead.lease_end))

    def _log_new_posts(self, rows: list[Any], newest: int) -> None:
        """One line per delivery queued since the last look (the CLI writes them; the operator reads this log)."""
        for d in rows:
            if d.status != "queued":
                continue
            channel = self.config.channel(d.channel) if d.channel in self.config.channel_names else None
            zone = channel.timezone if channel else UTC
            when = format_local(d.next_attempt_at or d.due_at, zone)
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
        wall = (now - self.last_cycle_wall).total_seconds()
        mono = self.monotonic() - self.last_cycle_mono
        self.last_cycle_wall, self.last_cycle_mono = now, self.monotonic()
        if wall - mono > self.config.daemon.late_grace.total_seconds() / 2 or (
            wall > self.config.daemon.tick * 3 + self.config.daemon.late_grace.total_seconds()
        ):
            log.warning(
                "the clock moved %.0fs while this process saw %.0fs pass (suspend or clock change); "
                "checking for missed posts",
                wall,
                mono,
                extra={"action": "gap"},
            )
            self.alive_since = now
            self.late_cutoff = now - self.config.daemon.late_grace

    def _report_progress(self) -> None:
        """The status line for systemd; one held back (another went out less than a second ago) goes out later.
        Once stopping, the stopping line stays."""
        if self.stopping:
            return
        if self.notifier.progress(self._status_line()) and self.progress_timer is None:
            self.progress_timer = asyncio.get_running_loop().call_later(PROGRESS_INTERVAL, self._progress_due)

    def _progress_due(self) -> None:
        self.progress_timer = None
        self._report_progress()

    def _status_line(self) -> str:
        busy = len(self.inflight)
        active = plural(len(self.workers), "channel", "channels")
        return f"{self.publisher.published_count} published, {busy} publishing, {active} active"

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.config.daemon.lease)

    def group_of(self, name: str) -> str | None:
        adapter = self.adapters.get(name)
        return adapter.lease_group if adapter is not None else None

    def owns(self, name: str) -> bool:
        """Whether this daemon may publish on channel ``name`` now (always, with one daemon on SQLite)."""
        return not self.clustered or self.members.holds(self.group_of(name))

    async def _may_publish(self, name: str) -> bool:
        """Own the channel's lease group, taking it when this daemon is its preferred owner or nobody took it."""
        if not self.clustered:
            return True
        group = self.group_of(name)
        if group is None or self.members.holds(group):
            return True
        if not self.members.should_take(group, self.monotonic()):
            self._wake_later(TAKEOVER_DELAY)
            return False
        if await self.db_call(cluster.acquire, group, self.owner, self.clock(), self._lease()):
            self.members.took(group)
            log.info("now publishing lease group %s", group, extra={"action": "acquired", "group": group})
            return True
        return False

    def _wake_later(self, seconds: float, job: str = "retake", *, keep: bool = False) -> None:
        """A wake-up (a look at the queue) in ``seconds``, as the date job ``job``; with ``keep``, not when that job
        is planned already."""
        if self.scheduler is None or (keep and self.scheduler.get_job(job) is not None):
            return
        self.scheduler.add_job(
            self._poke_job, "date", run_date=self.clock() + timedelta(seconds=seconds), id=job, replace_existing=True
        )

    def _start_worker(self, name: str) -> None:
        if self.stopping or name in self.left_for_next_run:
            return
        if name in self.workers:
            self.rerun.add(name)
            return
        if name not in self.adapters:
            if name not in self.config.channel_names:
                _warn_once(
                    self,
                    f"unconfigured:{name}",
                    f"deliveries are due on channel {name!r}, which is not in "
                    f"{self.config.path.name}; they wait until it is configured again (or are cancelled)",
                )
            else:
                _warn_once(
                    self,
                    f"broken:{name}",
                    f"deliveries are due on channel {name!r} but it is disabled: {self.broken.get(name, 'no adapter')}",
                )
            return
        self.workers[name] = asyncio.create_task(self._worker(name), name=f"channel:{name}")

    async def _worker(self, name: str) -> None:
        """Publish the channel's due deliveries one at a time, paced; it was started because one was due, and each
        claim says whether another one is (no extra query). A worker that stops before that (a claim that took
        nothing, an error, the channel gone or owned elsewhere) leaves what it was started for to the next look.

        A post's outcome is recorded while the next one is claimed: both writes share a transaction of the group
        commit, where they used to follow each other (a channel's posts went at one per two transactions)."""
        more = True
        drained = False
        recording: asyncio.Task[bool] | None = None
        try:
            while more and not self.stopping:
                adapter = self.adapters.get(name)
                if adapter is None or name not in self.config.channel_names:
                    return
                channel = self.config.channel(name)
                if adapter.quotas():
                    await self._plan_quotas(name, adapter)
                paused = self.limiter.paused_until(adapter.rate_limits()) - self.monotonic()
                if self.once and paused > self.config.retry.in_call_max_wait:
                    self.left_for_next_run.add(name)
                    log.info(
                        "channel %s: the network asked for a %.0fs pause; its due posts wait for the next run",
                        name,
                        paused,
                        extra={"channel": name, "action": "paused"},
                    )
                    return
                if not await pace(self.limiter, adapter.rate_limits(), self.monotonic, self._sleep, self._is_stopping):
                    return
                if not self.owns(name):
                    return
                claim = await self.batch_call(store.claim, name, self.clock(), self.owner, self._lease())
                last, recording = recording, None
                if last is not None:
                    await self._recorded(last, claim)
                if claim is None:
                    return
                more = claim.more_due
                recording = await self._publish(claim, adapter, channel)
            drained = not more
        except asyncio.CancelledError:
            if recording is not None:
                recording.cancel()
                recording = None
            raise
        except Exception as exc:
            self._worker_failed(name, exc)
        finally:
            if recording is not None:  # the last post's outcome, still being recorded
                try:
                    await recording
                except Exception as exc:
                    self._worker_failed(name, exc)
            if not drained:
                self._forget_read_ahead()
            self.workers.pop(name, None)
            if name in self.rerun:
                # Something came due on the channel while this worker was busy: look again at once.
                self.rerun.discard(name)
                self._start_worker(name)

    def _worker_failed(self, name: str, exc: Exception) -> None:
        if isinstance(exc, DatabaseError):
            self._database_down(exc)
        else:  # a bug must not silently stop a channel; the next cycle starts a new worker
            log.exception("channel %s: unexpected error in its worker", name, extra={"channel": name}, exc_info=exc)

    async def _recorded(self, recording: asyncio.Task[bool], claim: Claim | None) -> None:
        """Wait for the last post's outcome to be written, which shared a transaction with ``claim`` (or came
        before it); if it cannot be, the claimed post is handed back unsent (best effort: the database may be down)
        and the error raised: a claim left open would be "unknown" after a restart where it cannot be read back."""
        try:
            await recording
        except Exception:
            if claim is not None:
                with contextlib.suppress(DatabaseError):
                    await self.db_call(store.release, claim, self.clock(), "claimed but never sent")
            raise

    async def _publish(self, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> asyncio.Task[bool] | None:
        """Publish a claimed delivery; return once the network has answered, with the task recording its outcome
        when that is still running (None when it is done, or raise its error)."""
        slot = self.host_slots.setdefault(channel.api_root or channel.name, asyncio.Semaphore(MAX_CONCURRENT_PER_HOST))
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: object = None) -> None:
            if not answered.done():
                answered.set_result(None)

        self.inflight.add(claim.delivery_id)
        task = asyncio.create_task(self.publisher.publish(claim, adapter, channel, slot, on_sent=wake))
        task.add_done_callback(wake)
        task.add_done_callback(lambda _: self._landed(claim.delivery_id))
        try:
            await answered
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            task.result()
            return None
        return task

    def _native_maintenance(self, now: datetime) -> None:
        """Every so often: hand upcoming posts of native-scheduling channels to their networks, and delete there
        the ones since cancelled or moved (in the background; never more than one run at a time)."""
        if self.stopping or (self.native_task is not None and not self.native_task.done()):
            return
        channels = [c for c in self.config.channels if c.native_schedule and c.name in self.adapters]
        if not channels:
            return
        # Each run is a wake-up of its own (nothing else may wake an idle daemon for minutes): planned when one
        # starts, and again by a cycle that comes too early for it (a run that outlasted the interval, a timer early).
        wait = NATIVE_INTERVAL - (self.monotonic() - self.native_last)
        if wait > 0:
            self._wake_later(wait, "native", keep=True)
            return
        self.native_last = self.monotonic()
        self.native_task = asyncio.create_task(self._native_run(channels, now))
        self.native_task.add_done_callback(lambda _: self.poke())
        self._wake_later(NATIVE_INTERVAL, "native")

    async def _native_run(self, channels: list[ChannelConfig], now: datetime) -> None:
        from scheduler import native

        try:
            await native.delete_stale(self.publisher, self.adapters)
            for channel in channels:
                adapter = self.adapters.get(channel.name)
                if adapter is None or not self.owns(channel.name):
                    continue
                least, most = adapter.native_lead
                earliest = now + timedelta(seconds=least) + store.ARM_MARGIN
                latest = now + timedelta(seconds=most) - timedelta(hours=1)
                for delivery_id in await self.db_read(store.arm_candidates, [channel.name], earliest, latest, 20):
                    if self.stopping:
                        return
                    if not await pace(
                        self.limiter, adapter.rate_limits(), self.monotonic, self._sleep, self._is_stopping
                    ):
                        return
                    lease = self._lease()
                    claim = await self.db_call(store.claim_for_arming, delivery_id, self.clock(), self.owner, lease)
                    if claim is None:
                        continue
                    self.inflight.add(claim.delivery_id)
                    try:
                        await native.arm(self.publisher, claim, adapter, channel)
                    finally:
                        self._landed(claim.delivery_id)
        except DatabaseError as exc:
            self._database_down(exc)
        except Exception:  # never let a bug here stop publishing
            log.exception("native scheduling failed; trying again later")

    async def poll_feeds(self) -> None:
        """Read the ``[[feeds]]`` whose interval has passed, queue their new entries, plan the next read."""
        if self.stopping or not self.config.feeds:
            return
        from scheduler.feeds import next_poll, poll_feeds

        try:
            lines = await asyncio.to_thread(poll_feeds, self.config, self.db, self.clock())
            upcoming = await asyncio.to_thread(next_poll, self.config, self.db, self.clock())
        except Exception as exc:  # planned again whatever went wrong: a failed poll must not end the polling
            bug = not isinstance(exc, SmmError)
            log.error("reading the feeds failed: %s", exc, extra={"action": "feed"}, exc_info=bug)
            upcoming = self.clock() + timedelta(minutes=5)
            lines = []
        for line in lines:
            level = logging.WARNING if ("rejected" in line or "waiting" in line or "cannot" in line) else logging.INFO
            log.log(level, "%s", line, extra={"action": "feed"})
        if upcoming is not None and self.scheduler is not None and not self.once:
            self.scheduler.add_job(
                self._tracked, "date", args=[self.poll_feeds], run_date=upcoming, id="feeds", replace_existing=True
            )
        self.poke()

    async def _plan_quotas(self, name: str, adapter: Adapter) -> None:
        """Defer what would exceed the channel's quotas, before the network has to refuse it."""
        for quota in adapter.quotas():
            # Through the group commit: it runs before each claim on the channel, and alone it cost a commit a post.
            lines = await self.writes.call(
                quota_mod.defer_over_quota, name, quota, self.clock(), f"{name} ({quota.scope})"
            )
            for line in lines:
                log.warning("%s", line, extra={"channel": name, "action": "deferred"})
            if lines:  # deferred posts have new times, maybe within what was read ahead: look again
                self.poke()

    async def recover_expired(self, now: datetime, *, wait: bool = False) -> None:
        """Reconcile deliveries whose lease ran out (crash leftovers, ambiguous outcomes)."""
        exclude = self.inflight | set(self.reconciling)
        self._reconcile_all(await self.db_read(store.expired_leases, now, exclude))
        if wait and self.reconciling:
            await asyncio.wait(list(self.reconciling.values()))

    def _reconcile_all(self, delivery_ids: list[int]) -> None:
        for delivery_id in delivery_ids:
            if delivery_id not in self.reconciling:
                self.reconciling[delivery_id] = asyncio.create_task(self._reconcile(delivery_id))

    async def _reconcile(self, delivery_id: int) -> None:
        try:
            lease = timedelta(seconds=self.config.daemon.lease)
            claim = await self.db_call(store.take_over, delivery_id, self.clock(), self.owner, lease)
            if claim is None:
                return
            adapter = self.adapters.get(claim.channel)
            if adapter is None:
                _warn_once(
                    self,
                    f"reconcile:{claim.channel}",
                    f"cannot check deliveries in doubt on channel "
                    f"{claim.channel!r}: it is not configured or disabled; they wait",
                )
                await self.db_call(
                    store.record_in_doubt,
                    claim,
                    self.clock(),
                    "waiting for the channel to be configured",
                    self.clock() + timedelta(seconds=self.config.daemon.tick * 5),
                )
                return
            self.inflight.add(delivery_id)
            await self.publisher.reconcile(claim, adapter, self.config.channel(claim.channel))
        except DatabaseError as exc:
            log.error("database unavailable while checking delivery %d: %s", delivery_id, exc)
        finally:
            self.reconciling.pop(delivery_id, None)
            self._landed(delivery_id)
            self.poke()

    async def _heartbeat(self) -> None:
        """Keep in-flight deliveries leased; in a cluster, stay alive, keep the groups, hand back idle strays."""
        now = self.clock()
        try:
            if self.inflight:
                await self.db_call(store.extend_lease, sorted(self.inflight), self.owner, now + self._lease())
            if self.clustered:
                await self._cluster_heartbeat(now)
        except DatabaseError as exc:
            log.warning("could not renew leases: %s", exc)

    async def _cluster_heartbeat(self, now: datetime) -> None:
        kept = await self.db_call(cluster.heartbeat, self.owner, sorted(self.members.owned), now, self._lease())
        live = await self.db_read(cluster.live_instances, now, self._lease())
        for group in self.members.refresh(kept, live):
            log.warning("lost lease group %s to another daemon", group, extra={"action": "lost", "group": group})
        strays = self.members.strays({self.group_of(name) for name in self.workers})
        if strays:
            await self.db_call(cluster.release, sorted(strays), self.owner)
            self.members.owned -= strays
        await self.db_call(cluster.forget_dead, now, timedelta(days=1))

    async def log_summary(self) -> None:
        """At start, daily and on SIGUSR1: what each channel publishes next, and queues about to run dry."""
        try:
            for name, adapter in list(self.adapters.items()):
                await self._plan_quotas(name, adapter)
            lines = await self.db_read(partial(watch.summary, self.config, self.clock()))
        except DatabaseError as exc:
            log.error("cannot read the queue summary: %s", exc)
            return
        for level, line in lines:
            log.log(level, "%s", line, extra={"action": "summary"})
        _return_free_memory()


@cache
def loop_scheduler() -> type[Any]:
    """APScheduler's ``AsyncIOScheduler``, but one that, woken on its own event loop (a job added, its timer due),
    schedules its look at the jobs there directly. The original always goes through ``call_soon_threadsafe``, a
    write to the loop's self-pipe and one more turn of the loop for each, at every due time. Imported when the
    daemon starts, not by the CLI."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    class LoopScheduler(AsyncIOScheduler):  # type: ignore[misc]
        def wakeup(self) -> None:
            loop = self._eventloop
            try:
                here = asyncio.get_running_loop() is loop
            except RuntimeError:
                here = False
            (loop.call_soon if here else loop.call_soon_threadsafe)(self._look_at_jobs)

        def _look_at_jobs(self) -> None:
            self._stop_timer()
            self._start_timer(self._process_jobs())

    return LoopScheduler


def _libc(name: str) -> Callable[..., int] | None:
    """A function of the C library (glibc, Linux), or None where there is none of that name."""
    try:
        import ctypes

        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (ImportError, OSError, AttributeError):
        return None
    return function


def _return_free_memory() -> None:
    """Hand the C heap's free pages back to the system. glibc keeps what start-up's imports and queries freed (part
    of a daemon's resident memory, for months); the summary runs after start-up and once a day."""
    if (trim := _libc("malloc_trim")) is not None:
        trim(0)


def _warn_once(daemon: Daemon, key: str, message: str) -> None:
    seen: dict[str, float] = daemon.__dict__.setdefault("_warned", {})
    now = daemon.monotonic()
    if now - seen.get(key, -1e9) >= 3600:
        seen[key] = now
        log.warning("%s", message, extra={"action": "waiting"})


def _exit_now(code: int) -> None:
    """End the process at once, threads and all (the log flushed first)."""
    logging.shutdown()
    os._exit(code)


def _exit_late(after: float) -> None:
    """A stop's last resort, in a thread of its own: exit ``after`` seconds from now, should the stop be stuck."""
    _worker_thread()
    time.sleep(after)
    log.warning(
        "still running %gs past shutdown_grace (a call that does not return); exiting now; "
        "what was in flight is checked at the next start",
        STOP_SLACK,
        extra={"action": "stopped"},
    )
    _exit_now(0)


async def _close_quietly(adapter: Adapter) -> None:
    try:
        await adapter.aclose()
    except Exception as exc:  # closing must never stop a reload or a shutdown
        log.debug("closing %s adapter: %s", adapter.network, exc)


PR_SET_NAME = 15
"""prctl(2)'s option that names the calling thread (15 bytes at most)."""
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def _block_signals() -> None:
    """Block the daemon's signals in the calling thread.

    Worker threads block them from the start, so that the kernel delivers them to the main thread, the one running
    the event loop.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)


def _ignore_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Take the daemon's signals from the loop and ignore them in this process, up to its very end (the interpreter
    resets the handlers it set before it exits; it keeps ``SIG_IGN``). Not blocked: a process started later (after
    ``smm run`` called in-process) would inherit the mask, where a handler it installs does not unblock them; but
    blocked during the swap, so that none meets a default handler."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        for signum in HANDLED_SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _worker_thread() -> None:
    """A pool thread's start: block the daemon's signals, and give the thread its pool's name in the system as well
    (``top -H``, ``ps -T`` and ``/proc/PID/task/*/comm`` then tell the database writer from the readers and the
    network threads)."""
    _block_signals()
    if (prctl := _libc("prctl")) is not None:
        prctl(PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def run_daemon(config_path: str | None, *, once: bool = False) -> int:
    """Run the daemon; returns the process exit code."""
    try:
        daemon = Daemon(config_path, once=once)
    except SmmError as exc:
        log.error("%s", exc)
        return exc.exit_code
    daemon.hard_stop = True
    return asyncio.run(daemon.main())
