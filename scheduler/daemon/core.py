"""The daemon assembled from its parts, its start, its main loop and its stop."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from adapters import Adapter
from scheduler import watch
from scheduler.alerts import Alert, AlertSender
from scheduler.channels import AdapterFactory
from scheduler.config import Config, load_config
from scheduler.daemon.background import Background
from scheduler.daemon.cycle import Cycle
from scheduler.daemon.health import Progress, announce_start, log_summary
from scheduler.daemon.lifecycle import left_in_flight, run_once, start, sweep_media, upgrade_schema
from scheduler.daemon.look import Look
from scheduler.daemon.membership import Membership
from scheduler.daemon.process import (
    STOP_SLACK,
    exit_late,
    exit_now,
    finish,
    ignore_signals,
    install_signals,
    listen_for_pokes,
    listen_postgres,
    use_io_threads,
)
from scheduler.daemon.reconcile import Reconciler
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.daemon.workers import Workers
from scheduler.db import Database
from scheduler.errors import ConfigError, SmmError
from scheduler.lock import DaemonLock
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter
from scheduler.sdnotify import Notifier
from scheduler.views import plural, some_of

log = logging.getLogger("smm.daemon")

SUMMARY_INTERVAL = 86400.0


def utcnow() -> datetime:
    """The wall clock the daemon reads unless it is given another."""
    return datetime.now(UTC)


class Daemon:
    """The publishing service; :meth:`main` runs it until a signal (or, with ``once``, until nothing is due).

    It takes what it works with: the config, the database, the factory that builds the channels' adapters, the
    clocks. The database is the only source of truth; the timer only keeps time, and each wake-up looks at the
    queue (or at what the last look read ahead) and starts one worker per channel with due posts (:class:`Cycle`)."""

    def __init__(
        self,
        config: Config,
        db: Database,
        factory: AdapterFactory,
        *,
        once: bool = False,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        load: Callable[[], Config] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.factory = factory
        self.load = load or partial(load_config, config.path)  # SIGHUP reads the config again with it
        self.notifier = notifier or Notifier(monotonic=monotonic)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rt = rt = Runtime(
            config, db, owner=owner, once=once, clock=clock, monotonic=monotonic, notifier=self.notifier
        )
        self.lock: DaemonLock | None = DaemonLock(db.path) if db.path else None
        self.limiter = Limiter()
        self.alerts = AlertSender.from_config(config.alerts, monotonic=monotonic)
        rt.alert = self._alert
        rt.alert_wanted = self._alert_wanted
        self.publisher = Publisher(
            config, rt.db_call, self.limiter, clock, monotonic, db_batch=rt.batch_call, alert=self._alert
        )
        self.timer = Timer(clock, rt.is_stopping)
        # Several daemons on one PostgreSQL share the work by lease group.
        self.membership = Membership(rt, not db.is_sqlite, partial(self.timer.later, job_id="retake", job=self._poke))
        self.workers = Workers(rt, self.publisher, self.limiter, self.membership)
        self.reconciler = Reconciler(rt, self.publisher)
        self.background = Background(
            rt, self.timer, self.publisher, self.limiter, self.membership, self.workers, self._idle
        )
        self.look = Look(lambda: rt.config, rt.ahead, rt.db_call, rt.db_read, clock, monotonic, once=once)
        self.progress = Progress(self.notifier, self._status_line, rt.is_stopping)
        self.cycle = Cycle(rt, self.look, self.timer, self.membership, self.workers, self.reconciler, self.progress)
        self.summary_task: asyncio.Task[None] | None = None
        #: Set by ``run_daemon``: a stop ends the process ``STOP_SLACK`` after its deadline, whatever still runs.
        self.hard_stop = False
        self.abandoned = 0  # in-flight work the stop cut short

    @property
    def config(self) -> Config:
        return self.rt.config

    def _alert(self, alert: Alert) -> None:
        """Queue ``alert`` for the operator (never waits: the sender's own task sends it)."""
        self.alerts.notify(alert)

    def _alert_wanted(self, event: str) -> bool:
        """Whether the sender running now (a reload swaps it) would send an alert of ``event`` anywhere."""
        return self.alerts.wants(event)

    async def reload(self) -> None:
        """SIGHUP: read the config again; keep the old one if the new one is invalid."""
        rt = self.rt
        try:
            config = self.load()
            if config.database_url != rt.config.database_url:
                raise ConfigError(f"{config.path}: database.url: changing the database needs a restart")
        except SmmError as exc:
            log.error("config reload failed, keeping the running config: %s", exc, extra={"action": "reload_failed"})
            return
        adapters, broken = build_adapters(self.factory, config)
        old, old_alerts = rt.adapters, rt.config.alerts
        rt.config, rt.adapters, rt.broken = config, adapters, broken
        self.publisher.config = config
        self.background.plan()  # a channel may have turned native scheduling on, a section changed
        if config.alerts != old_alerts:
            previous, self.alerts = self.alerts, AlertSender.from_config(config.alerts, monotonic=rt.monotonic)
            self.alerts.start()
            await previous.stop()
        for adapter in old.values():
            await _close_quietly(adapter)
        log.info(
            "config reloaded: %s (%s)",
            plural(len(config.channels), "channel", "channels"),
            some_of(list(config.channel_names)) or "none",
            extra={"action": "reloaded"},
        )
        rt.poke()

    async def startup(self) -> None:
        rt = self.rt
        if self.lock is not None:
            self.lock.acquire()
        await upgrade_schema(rt)
        for warning in rt.config.warnings:
            log.warning("%s", warning)
        rt.adapters, rt.broken = build_adapters(self.factory, rt.config)
        now = rt.clock()
        await sweep_media(rt, now)
        await self.membership.join(now)
        await self.look.start(now)
        if alert := await left_in_flight(rt, now):
            self._alert(alert)
        await self.reconciler.recover_expired(now, wait=True)

    async def main(self) -> int:
        """Start (waiting for the database), run until a stop (or, ``once``, until nothing is due), stop."""
        rt = self.rt
        loop = asyncio.get_running_loop()
        use_io_threads(loop)
        install_signals(
            loop,
            self.request_stop,
            lambda: asyncio.ensure_future(self.reload()),
            lambda: asyncio.ensure_future(self.log_summary()),
        )
        self.alerts.start()
        if (code := await start(rt, self.startup, self.notifier)) is not None:
            await self.alerts.stop()
            self.release()
            return code
        sock = self.lock.socket if self.lock is not None else None
        listen_for_pokes(loop, sock, rt.poke)
        listener = None if rt.db.is_sqlite else asyncio.create_task(listen_postgres(rt.db, rt.poke, rt.is_stopping))
        self.start_timer()
        self.summary_task = asyncio.create_task(self.log_summary())
        await self.background.start()
        announce_start(self.notifier, list(rt.adapters), once=rt.once)
        code = 0
        try:
            if rt.once:
                await run_once(rt, self.cycle, self._in_flight)
            else:
                await self._loop()
            if rt.once and rt.health.failures:
                code = 1
        finally:
            self.notifier.stopping()
            if sock is not None:  # the lock's, closed with it
                loop.remove_reader(sock.fileno())
            await self._shutdown()
            if listener is not None:
                listener.cancel()
            self.notifier.close()
            # Closing the loop resets the handlers to their defaults while the interpreter still joins threads and
            # closes files: a second SIGTERM (an impatient operator, a supervisor) would turn a clean stop into a
            # death by signal. Stopped is stopped; from here on, they are ignored.
            ignore_signals(loop)
            if self.hard_stop and self.abandoned:  # the interpreter would wait for a call's thread at exit
                exit_now(code)
        return code

    async def _loop(self) -> None:
        rt = self.rt
        rt.poke()
        while True:
            await rt.wake.wait()
            rt.wake.clear()
            if rt.stopping:
                return
            await self.cycle.turn()
            self.notifier.watchdog()

    def _in_flight(self) -> list[asyncio.Task[None]]:
        """The workers, the reconciliations and the background runs still running."""
        return [*self.workers.tasks.values(), *self.reconciler.tasks.values(), *self.background.running()]

    async def _shutdown(self) -> None:
        rt = self.rt
        rt.stopping = True
        if rt.stop_deadline is None:  # run --once, done by itself
            rt.stop_deadline = rt.monotonic() + rt.config.daemon.shutdown_grace
        done = partial(finish, deadline=rt.stop_deadline, monotonic=rt.monotonic)
        if cut := await done(self._in_flight()):
            self.abandoned += cut
            log.warning(
                "%s not finish within shutdown_grace; checked at the next start",
                plural(cut, "publish did", "publishes did"),
                extra={"action": "shutdown_timeout"},
            )
        if self.summary_task is not None:
            await done([self.summary_task])
        self.abandoned += await self.timer.stop(done)
        # What is still queued gets one last try, within the alerts' timeout and what is left of the stop's.
        await self.alerts.stop(within=rt.stop_deadline - rt.monotonic())
        await self.membership.leave()
        for adapter in rt.adapters.values():
            await _close_quietly(adapter)
        await self.factory.aclose()
        rt.executor.shutdown(wait=True)
        rt.read_executor.shutdown(wait=True)
        rt.db.dispose()
        if self.lock is not None:
            self.lock.release()
        published = plural(self.publisher.published_count, "post", "posts")
        log.info("stopped (%s published this run)", published, extra={"action": "stopped"})

    def start_timer(self) -> None:
        """The timer's jobs: the safety tick, the lease heartbeat (a cluster's), the daily summary, the background
        work's (and the feed polls and the wake-ups at due times, planned as they come)."""
        rt = self.rt
        tick = rt.config.daemon.tick
        if self.notifier.watchdog_interval:
            tick = min(tick, self.notifier.watchdog_interval)
        self.timer.start()
        self.timer.every("tick", tick, self._poke)
        if self.membership.clustered:  # with one daemon per SQLite file, leases only matter to the next start
            self.timer.every("lease", max(1.0, rt.config.daemon.lease / 3), self._heartbeat)
        if not rt.once:
            self.timer.every("summary", SUMMARY_INTERVAL, self.log_summary)
            self.background.plan()

    async def _poke(self) -> None:
        """The timer's way to wake the loop: a coroutine runs on the loop itself, where a plain function would run
        in a thread of the default executor (an asyncio.Event is not thread-safe)."""
        self.rt.poke()

    def _idle(self, within: float) -> bool:
        """Whether this daemon publishes nothing now and nothing falls due within ``within`` seconds (background
        reads such as the comment watch wait for that)."""
        rt = self.rt
        if self.workers.tasks or rt.inflight or self.reconciler.tasks:
            return False
        return not self.timer.due_within(within)

    async def _heartbeat(self) -> None:
        await self.membership.heartbeat(self.workers.tasks)

    def request_stop(self, why: str = "request") -> None:
        rt = self.rt
        if rt.stop_deadline is None:
            log.info("%s: stopping; letting in-flight posts finish", why, extra={"action": "stopping"})
            self.notifier.stopping("stopping: finishing in-flight posts")
            rt.stop_deadline = rt.monotonic() + rt.config.daemon.shutdown_grace
            if self.hard_stop:
                exit_late(rt.config.daemon.shutdown_grace + STOP_SLACK)
        rt.stopping = True
        rt.stopped.set()
        rt.poke()

    def _status_line(self) -> str:
        busy = len(self.rt.inflight)
        active = plural(len(self.workers.tasks), "channel", "channels")
        return f"{self.publisher.published_count} published, {busy} publishing, {active} active"

    async def log_summary(self) -> None:
        """At start, daily and on SIGUSR1: what each channel publishes next, and queues about to run dry."""
        rt = self.rt

        async def quotas() -> None:
            for name, adapter in list(rt.adapters.items()):
                await self.workers.plan_quotas(name, adapter)

        async def read() -> list[watch.SummaryLine]:
            return await rt.db_read(partial(watch.summary, rt.config, rt.clock()))

        await log_summary(read, quotas, self._alert)

    def release(self) -> None:
        """Let go of the threads, the database and the lock (a start that failed; tests)."""
        self.rt.release()
        if self.lock is not None:
            self.lock.release()


def build_adapters(factory: AdapterFactory, config: Config) -> tuple[dict[str, Adapter], dict[str, str]]:
    """The channels' adapters, and why each channel that has none is disabled (logged)."""
    adapters: dict[str, Adapter] = {}
    broken: dict[str, str] = {}
    for channel in config.channels:
        try:
            adapters[channel.name] = factory.build(channel)
        except ConfigError as exc:
            broken[channel.name] = str(exc)
            log.error("channel %s is disabled: %s", channel.name, exc, extra={"channel": channel.name})
    return adapters, broken


async def _close_quietly(adapter: Adapter) -> None:
    try:
        await adapter.aclose()
    except Exception as exc:  # closing must never stop a reload or a shutdown
        log.debug("closing %s adapter: %s", adapter.network, exc)
