"""What the daemon's parts share: the config and adapters (a reload swaps them), the clock, the database calls, the
deliveries in this daemon's hands, and the wake-up of the main loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from adapters import Adapter
from scheduler import store
from scheduler.alerts import Alert, ignore_alert, wanted_by_none
from scheduler.batch import WriteBatcher
from scheduler.config import Config
from scheduler.daemon.health import DatabaseHealth, WarnOnce
from scheduler.daemon.look import ReadAhead
from scheduler.daemon.process import worker_thread
from scheduler.db import Database
from scheduler.due import may_change_due_times
from scheduler.errors import DatabaseError
from scheduler.sdnotify import Notifier
from scheduler.store.executor import Executor

P = ParamSpec("P")
R = TypeVar("R")


class Runtime:
    """The daemon's shared state and its one way to the database: writes on the writer thread (alone or in the
    group commit), reads on the reader threads. Each write that may give a delivery a due time sooner than planned
    (see :mod:`scheduler.due`) wakes the main loop to look at the queue."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        owner: str,
        once: bool,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        notifier: Notifier,
    ) -> None:
        self.config = config
        self.db = db
        self.owner = owner
        self.once = once
        self.clock = clock
        self.monotonic = monotonic
        self.adapters: dict[str, Adapter] = {}
        self.broken: dict[str, str] = {}
        self.inflight: set[int] = set()
        self.held: set[int] = set()  # expired leases the last look left out while they were in flight
        self.stopping = False
        self.stop_deadline: float | None = None  # monotonic; in-flight work is cancelled then
        self.stopped = asyncio.Event()
        self.wake = asyncio.Event()
        self.ahead = ReadAhead()
        self.health = DatabaseHealth(notifier, monotonic)
        self.warn_once = WarnOnce(monotonic)
        #: Tells the operator: the daemon's alert sender (set by :class:`~scheduler.daemon.core.Daemon`).
        self.alert: Callable[[Alert], None] = ignore_alert
        #: Whether an alert of an event would reach a destination, asked of the sender running now.
        self.alert_wanted: Callable[[str], bool] = wanted_by_none
        # SQLite takes one writer at a time; reads (WAL) go on beside it, so a slow summary never delays a claim.
        self.executor = ThreadPoolExecutor(
            max_workers=1 if db.is_sqlite else 4, thread_name_prefix="smm-db", initializer=worker_thread
        )
        self.read_executor = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="smm-db-read", initializer=worker_thread
        )
        self.store = Executor(db, self.executor, self.read_executor)
        self.writes = WriteBatcher(db, self.executor, combine=store.COMBINED)

    async def db_call(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in one write transaction on the database thread."""
        return await self._written(fn, self.store.write(fn, *args, **kwargs))

    async def batch_call(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in a write transaction shared with the calls queued beside it."""
        return await self._written(fn, self.writes.call(fn, *args, **kwargs))

    async def _written(self, fn: Callable[Concatenate[Session, P], object], write: Awaitable[R]) -> R:
        try:
            result = await write
        except BaseException as exc:
            self._wrote(fn, exc)
            raise
        self._wrote(fn)
        return result

    async def db_read(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args)`` in a read transaction on a reader thread."""
        return await self.store.read(fn, *args, **kwargs)

    def _wrote(self, fn: Callable[Concatenate[Session, P], object], error: BaseException | None = None) -> None:
        # Once the write is done (or failed): a look that started before it may not have seen it. One that went
        # through may have set a time sooner than the planned wake-up: only a look at the queue knows.
        if error is None:
            self.health.up()
        elif isinstance(error, DatabaseError):
            self.health.write_failing = True
        if may_change_due_times(fn):
            if error is None:
                self.poke()
            else:
                self.ahead.forget()

    def poke(self) -> None:
        """Wake the main loop to look at the queue (the CLI's datagram, a LISTEN notification, the tick, a finished
        reconciliation): something may have changed, so what was read ahead no longer counts."""
        self.ahead.forget()
        self.wake.set()

    def landed(self, delivery_id: int) -> None:
        """A delivery is out of this daemon's hands; if the last look found its lease run out, look again."""
        self.inflight.discard(delivery_id)
        if delivery_id in self.held:
            self.held.discard(delivery_id)
            self.poke()

    def is_stopping(self) -> bool:
        return self.stopping

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)

    def lease(self) -> timedelta:
        return timedelta(seconds=self.config.daemon.lease)

    def release(self) -> None:
        """Let go of the threads and the database's connections (a start that failed; tests)."""
        self.executor.shutdown(wait=False)
        self.read_executor.shutdown(wait=False)
        self.db.dispose()
