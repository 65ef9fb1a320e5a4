"""Several daemons on one PostgreSQL: who is alive, and which daemon publishes which lease group.

A lease group is the widest rate-limit scope of a channel (a Telegram bot, a VK or OK token, a Facebook Page):
the channels in it share their limits, so exactly one daemon at a time publishes them and paces them in memory.
That keeps every limit honest across daemons without a shared counter in the database, and keeps each
channel's order. Each group has a preferred daemon by rendezvous hashing over the live daemons, so groups spread
evenly and move as little as possible when a daemon joins or leaves. A daemon takes a group it does not prefer
only when nobody holds it for a while (work-conserving), and gives such groups back when it is idle.

A group's lease is renewed by its owner's heartbeat; when a daemon dies, its groups are free once their lease
expires, and its in-flight deliveries go through reconciliation (never a blind resend), like after a crash.
The rows (live instances, lease groups) are written and read by :mod:`scheduler.store.cluster`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def preferred(group: str, live: Iterable[str]) -> str | None:
    """The daemon that should own ``group`` among ``live`` ones (highest random weight)."""
    return max(live, key=lambda owner: hashlib.sha256(f"{group}|{owner}".encode()).digest(), default=None)


class Membership:
    """One daemon's view of the others: who is alive, and which lease groups it holds (in memory; the lease
    rows in the database are the truth, renewed by :func:`scheduler.store.cluster.heartbeat`)."""

    def __init__(self, owner: str, takeover_delay: float) -> None:
        self.owner = owner
        self.takeover_delay = takeover_delay
        self.owned: set[str] = set()
        self.live: list[str] = [owner]
        self._waiting_since: dict[str, float] = {}

    def holds(self, group: str | None) -> bool:
        return group is not None and group in self.owned

    def should_take(self, group: str, monotonic: float) -> bool:
        """Whether to try to take ``group`` now: at once when this daemon is its preferred owner, else only after
        leaving it to the preferred one for ``takeover_delay`` seconds."""
        if preferred(group, self.live) == self.owner:
            return True
        first = self._waiting_since.setdefault(group, monotonic)
        return monotonic - first >= self.takeover_delay

    def took(self, group: str) -> None:
        self.owned.add(group)
        self._waiting_since.pop(group, None)

    def refresh(self, kept: set[str], live: list[str]) -> set[str]:
        """After a heartbeat: the groups still held and the live daemons; returns the groups lost meanwhile."""
        lost = self.owned - kept
        self.owned = kept
        self.live = live if self.owner in live else [*live, self.owner]
        return lost

    def strays(self, busy: set[str | None]) -> set[str]:
        """Held groups another live daemon should have, and that nothing here is publishing: to hand back."""
        return {g for g in self.owned if g not in busy and preferred(g, self.live) != self.owner}
