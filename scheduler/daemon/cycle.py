"""One wake-up of the daemon's main loop: a look at the queue (or at what the last look read ahead), the workers
and the reconciliations it starts, and the next wake-up planned; a failed look is a database outage, waited out."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.daemon.health import Progress
from scheduler.daemon.look import Look
from scheduler.daemon.membership import Membership
from scheduler.daemon.reconcile import Reconciler
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.daemon.workers import Workers
from scheduler.errors import DatabaseError


class Cycle:
    """``await cycle()`` looks once and starts what is due; :meth:`turn` is the main loop's step around it."""

    def __init__(
        self,
        rt: Runtime,
        look: Look,
        timer: Timer,
        membership: Membership,
        workers: Workers,
        reconciler: Reconciler,
        progress: Progress,
    ) -> None:
        self.rt = rt
        self.look = look
        self.timer = timer
        self.membership = membership
        self.workers = workers
        self.reconciler = reconciler
        self.progress = progress

    async def turn(self) -> None:
        """One wake-up of the loop: a cycle, and the outage a failed one means."""
        try:
            await self()
        except DatabaseError as exc:
            self.rt.health.down(exc)
            self._wake_for_database()
        else:
            if not self.rt.health.write_failing:  # a cycle's reads went through; its writes may not
                self.rt.health.up()

    def _wake_for_database(self) -> None:
        rt = self.rt
        self.timer.wake_at(rt.clock() + timedelta(seconds=max(0.0, rt.health.retry_at - rt.monotonic())), self._due)

    async def __call__(self, until: datetime | None = None) -> None:
        """Look at the queue once (or at what the last look read ahead): late deliveries, due channels, expired
        leases; then plan the next wake-up."""
        rt = self.rt
        now = rt.clock()
        if rt.health.waiting() is not None:
            self._wake_for_database()
            return
        busy = set(self.reconciler.tasks)
        found, held = await self.look(now, until, rt.inflight | busy, recovering=rt.health.down_since is not None)
        if held is not None:
            # Those that left this daemon's hands during the look are due a look already; the others get it then.
            rt.held = {i for i in held if i in rt.inflight or i in self.reconciler.tasks}
            if len(rt.held) < len(held):
                rt.poke()
        for name in found.due:
            if await self.membership.may_publish(name):
                self.workers.start(name)
        self.reconciler.start(found.expired)
        self.timer.wake_at(found.next_wake if found.next_wake is None or found.next_wake > now else None, self._due)
        self.progress.report()

    async def _due(self) -> None:
        """The wake-up at the next due time: what was read ahead still holds."""
        self.rt.wake.set()
