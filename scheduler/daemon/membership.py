"""This daemon's place in a cluster: several daemons on one PostgreSQL share the work by lease group (see
:mod:`scheduler.cluster`); with one daemon on a SQLite file, it owns every channel."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from scheduler import cluster, store
from scheduler.daemon.runtime import Runtime
from scheduler.errors import DatabaseError

log = logging.getLogger("smm.daemon")

TAKEOVER_DELAY = 2.0
"""Seconds a daemon leaves a due lease group to its preferred owner before taking it itself."""


class Membership:
    """Which channels this daemon may publish now, the lease groups it takes, keeps and hands back, and the
    heartbeat that keeps its in-flight deliveries leased."""

    def __init__(self, rt: Runtime, clustered: bool, retake: Callable[[float], None]) -> None:
        self.rt = rt
        self.clustered = clustered
        self.retake = retake  # a look at the queue in so many seconds
        self.members = cluster.Membership(rt.owner, TAKEOVER_DELAY)

    async def join(self, now: datetime) -> None:
        if self.clustered:
            await self.rt.db_call(store.cluster.register, self.rt.owner, socket.gethostname(), os.getpid(), now)
            self.members.refresh(set(), await self.rt.db_read(store.cluster.live_instances, now, self.rt.lease()))

    async def leave(self) -> None:
        if self.clustered:
            try:
                await self.rt.db_call(store.cluster.leave, self.rt.owner)
            except DatabaseError as exc:
                log.warning("could not hand back lease groups (they free themselves when their lease ends): %s", exc)

    def group_of(self, name: str) -> str | None:
        adapter = self.rt.adapters.get(name)
        return adapter.lease_group if adapter is not None else None

    def owns(self, name: str) -> bool:
        """Whether this daemon may publish on channel ``name`` now (always, with one daemon on SQLite)."""
        return not self.clustered or self.members.holds(self.group_of(name))

    async def may_publish(self, name: str) -> bool:
        """Own the channel's lease group, taking it when this daemon is its preferred owner or nobody took it."""
        if not self.clustered:
            return True
        group = self.group_of(name)
        if group is None or self.members.holds(group):
            return True
        if not self.members.should_take(group, self.rt.monotonic()):
            self.retake(TAKEOVER_DELAY)
            return False
        if await self.rt.db_call(store.cluster.acquire, group, self.rt.owner, self.rt.clock(), self.rt.lease()):
            self.members.took(group)
            log.info("now publishing lease group %s", group, extra={"action": "acquired", "group": group})
            return True
        return False

    async def may_read(self, name: str) -> bool:
        """Whether this daemon does a channel's background work (its comments, its evergreen fills): always with one
        daemon; in a cluster, when it holds the channel's lease group or is the group's preferred owner and takes
        it."""
        if not self.clustered:
            return True
        group = self.group_of(name)
        if group is None or self.members.holds(group):
            return group is not None
        if cluster.preferred(group, self.members.live) != self.rt.owner:
            return False
        if await self.rt.db_call(store.cluster.acquire, group, self.rt.owner, self.rt.clock(), self.rt.lease()):
            self.members.took(group)
            return True
        return False

    async def heartbeat(self, busy: Iterable[str]) -> None:
        """Keep in-flight deliveries leased; in a cluster, stay alive, keep the groups, hand back idle strays (those
        of none of the channels ``busy``)."""
        rt = self.rt
        now = rt.clock()
        try:
            if rt.inflight:
                await rt.db_call(store.extend_lease, sorted(rt.inflight), rt.owner, now + rt.lease())
            if self.clustered:
                await self._cluster_heartbeat(now, busy)
        except DatabaseError as exc:
            log.warning("could not renew leases: %s", exc)

    async def _cluster_heartbeat(self, now: datetime, busy: Iterable[str]) -> None:
        rt = self.rt
        kept = await rt.db_call(store.cluster.heartbeat, rt.owner, sorted(self.members.owned), now, rt.lease())
        live = await rt.db_read(store.cluster.live_instances, now, rt.lease())
        for group in self.members.refresh(kept, live):
            log.warning("lost lease group %s to another daemon", group, extra={"action": "lost", "group": group})
        strays = self.members.strays({self.group_of(name) for name in busy})
        if strays:
            await rt.db_call(store.cluster.release, sorted(strays), rt.owner)
            self.members.owned -= strays
        await rt.db_call(store.cluster.forget_dead, now, timedelta(days=1))
