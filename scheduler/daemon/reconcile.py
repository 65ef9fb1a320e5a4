"""Reconciliation: deliveries whose lease ran out (a crash's leftovers, outcomes in doubt) are checked with their
network before anything is sent again."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from scheduler import store
from scheduler.daemon.runtime import Runtime
from scheduler.errors import DatabaseError
from scheduler.publisher import Publisher

log = logging.getLogger("smm.daemon")


class Reconciler:
    """One task per delivery being checked, never two for one delivery."""

    def __init__(self, rt: Runtime, publisher: Publisher) -> None:
        self.rt = rt
        self.publisher = publisher
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def recover_expired(self, now: datetime, *, wait: bool = False) -> None:
        """Reconcile deliveries whose lease ran out; with ``wait``, until each is checked."""
        exclude = self.rt.inflight | set(self.tasks)
        self.start(await self.rt.db_read(store.expired_leases, now, exclude))
        if wait and self.tasks:
            await asyncio.wait(list(self.tasks.values()))

    def start(self, delivery_ids: list[int]) -> None:
        for delivery_id in delivery_ids:
            if delivery_id not in self.tasks:
                self.tasks[delivery_id] = asyncio.create_task(self._reconcile(delivery_id))

    async def _reconcile(self, delivery_id: int) -> None:
        rt = self.rt
        try:
            claim = await rt.db_call(store.take_over, delivery_id, rt.clock(), rt.owner, rt.lease())
            if claim is None:
                return
            adapter = rt.adapters.get(claim.channel)
            if adapter is None:
                rt.warn_once(
                    f"reconcile:{claim.channel}",
                    f"cannot check deliveries in doubt on channel "
                    f"{claim.channel!r}: it is not configured or disabled; they wait",
                )
                await rt.db_call(
                    store.record_in_doubt,
                    claim,
                    rt.clock(),
                    "waiting for the channel to be configured",
                    rt.clock() + timedelta(seconds=rt.config.daemon.tick * 5),
                )
                return
            rt.inflight.add(delivery_id)
            await self.publisher.reconcile(claim, adapter, rt.config.channel(claim.channel))
        except DatabaseError as exc:
            log.error("database unavailable while checking delivery %d: %s", delivery_id, exc)
        finally:
            self.tasks.pop(delivery_id, None)
            rt.landed(delivery_id)
            rt.poke()
