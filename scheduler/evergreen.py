"""The evergreen pool: which post fills a channel's empty slot, and the fill itself.

A post added with ``--evergreen`` waits in the pool of each of its channels (``scheduler.store.pool``). When a slot
of a channel is still empty ``fill_ahead`` before its time, the daemon fills it (:func:`fill_slots`) with the pool's
post used longest ago on that channel (never used comes first), never one used there within ``cooldown`` of the
slot, never the post of the delivery just before or after the slot, never one that breaks the content mix rule.
The fill is a queued delivery like any other, written by :func:`scheduler.timeline.insert_deliveries`; from then
on it is published, retried and reconciled as every delivery is.

:func:`choose` is a pure function of the pool and the slot (``now`` is a parameter); :func:`plan_fills` decides
a channel's empty slots with it, one after the other, for the fill and for what :func:`coverage` tells the
dry-queue warning alike; :func:`list_pool` and :func:`remove_from_pool` are ``smm pool``'s use cases.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy.orm import Session

from scheduler import mix, timeline
from scheduler.config import ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError, NotFound
from scheduler.placement import Planner, local
from scheduler.store import pool as store_pool
from scheduler.store.pool import Neighbour, PoolPost
from scheduler.timefmt import format_duration
from scheduler.views import configured, iso


def choose(
    candidates: Sequence[PoolPost],
    slot: datetime,
    cooldown: timedelta,
    *,
    neighbours: Collection[int] = (),
    commercial_fits: bool = True,
) -> PoolPost | None:
    """The post to fill ``slot`` with: never used first, then the one used longest ago; None when none may go.

    A post used within ``cooldown`` of the slot (before or after it, a fill a person cancelled counting as a use),
    a post of ``neighbours`` (the deliveries just before and after the slot) and, unless ``commercial_fits``, a
    commercial post may not.
    """
    eligible = [
        c
        for c in candidates
        if c.post_id not in neighbours
        and (commercial_fits or c.category != mix.COMMERCIAL)
        and all(abs(slot - used) >= cooldown for used in (*c.used, *c.cancelled))
    ]
    return min(eligible, key=lambda c: (c.last_used is not None, c.last_used or slot, c.post_id), default=None)


def next_use(post: PoolPost, cooldown: timedelta, now: datetime) -> datetime:
    """From when ``post`` may fill a slot again: ``cooldown`` after its last use (or cancelled fill), or now."""
    last = max((*post.used, *post.cancelled), default=None)
    return now if last is None else max(now, last + cooldown)


def plan_fills(
    session: Session, channel: ChannelConfig, planner: Planner, slots: Sequence[datetime], candidates: list[PoolPost]
) -> Iterator[tuple[datetime, PoolPost | None]]:
    """Decide ``slots`` in order, as the fill does: each slot's post (None: no post of the pool may take it). Writes
    nothing: each fill counts as a use in ``candidates`` (updated in place), is placed on ``planner`` (the mix rule
    sees it) and is the post before the next slot."""
    previous: Neighbour | None = None
    for slot in slots:
        before, after = store_pool.neighbours(session, channel.name, slot)
        if previous is not None and (before is None or previous.due_at > before.due_at):
            before = previous
        picked = choose(
            candidates,
            slot,
            channel.evergreen.cooldown,
            neighbours={n.post_id for n in (before, after) if n is not None},
            commercial_fits=planner.commercial_fits(slot),
        )
        yield slot, picked
        if picked is not None:
            planner.reserve(slot, picked.category)
            candidates[candidates.index(picked)] = replace(picked, used=tuple(sorted((*picked.used, slot))))
            previous = Neighbour(slot, picked.post_id)


def coverage(session: Session, channel: ChannelConfig, now: datetime, until: datetime) -> tuple[int, datetime | None]:
    """How many posts ``channel``'s pool holds, and the first of its empty slots up to ``until`` the pool could not
    fill (None: it fills them all), for the warning that a queue runs dry: the fill's own choices, written nowhere."""
    candidates = store_pool.pool_posts(session, [channel.name])
    planner = Planner(session, channel, now)
    slots = planner.empty_slots(until)
    decided = plan_fills(session, channel, planner, slots, list(candidates))
    return len(candidates), next((slot for slot, picked in decided if picked is None), None)


def last_used_text(last: datetime | None, now: datetime) -> str:
    """``last used 41 days ago``, ``never used``."""
    if last is None:
        return "never used"
    if last > now:
        return f"next used in {format_duration(last - now, 'words')}"
    return f"last used {format_duration(now - last, 'words')} ago"


@dataclass(frozen=True)
class Fill:
    """A slot filled from the pool: when, with which post, its use number, and when it was used before."""

    channel: str
    slot: datetime
    post_id: int
    use: int
    last_used: datetime | None

    def describe(self, channel: ChannelConfig, now: datetime) -> str:
        """The log line: ``slot Tue 2026-12-01 10:00 MSK on vk-news filled from the evergreen pool with post 12,
        last used 41 days ago``."""
        return (
            f"slot {local(self.slot, channel)} on {self.channel} filled from the evergreen pool with post "
            f"{self.post_id}, {last_used_text(self.last_used, now)}"
        )


@dataclass(frozen=True)
class FillResult:
    """One channel's fills, and the empty slots within ``fill_ahead`` that no post of the pool may take."""

    fills: list[Fill]
    unfilled: list[datetime]


def fill_slots(session: Session, channel: ChannelConfig, now: datetime) -> FillResult:
    """Fill ``channel``'s empty slots up to ``fill_ahead`` from now with posts of its pool (one write transaction).

    The channel is locked as ``smm add`` locks it, and its slots are read under the lock: two daemons (or a
    daemon and ``smm add``) never take one slot twice.
    """
    timeline.lock_channel(session, channel.name)
    planner = Planner(session, channel, now)
    slots = planner.empty_slots(now + channel.evergreen.fill_ahead)
    if not slots:
        return FillResult([], [])
    candidates = store_pool.pool_posts(session, [channel.name])
    if not candidates:
        return FillResult([], [])
    fills: list[Fill] = []
    unfilled: list[datetime] = []
    for slot, picked in plan_fills(session, channel, planner, slots, candidates):
        if picked is None:
            unfilled.append(slot)
        else:
            fills.append(Fill(channel.name, slot, picked.post_id, len(picked.used) + 1, picked.last_used))
    if fills:
        rows = [timeline.NewDelivery(f.post_id, channel.name, channel.network, f.slot, True, f.use) for f in fills]
        timeline.insert_deliveries(session, rows, now)
    return FillResult(fills, unfilled)


# -- smm pool -----------------------------------------------------------------------------------------------------


class PoolEntryView(TypedDict):
    """A post in a channel's pool as ``smm pool --json`` shows it (docs/json.md); keys in their output order."""

    post_id: int
    channel: str
    category: str
    text: str
    added_at: str | None
    uses: int
    last_used: str | None
    next_use: str | None
    last_published: str | None
    queued_fill: str | None


def list_pool(
    config: Config, db: Database | None, now: datetime, channel: str | None = None, *, post_id: int | None = None
) -> list[PoolEntryView]:
    """The posts in the pools (of ``channel``; ``post_id``: that post's only), with their uses and from when each
    may fill a slot again (None: now). ``db`` None: no database yet, so an empty pool."""
    if channel is not None and channel not in config.channel_names:
        raise InputError(f"unknown channel {channel!r}; {configured(config.channel_names)}")
    if db is None:
        return []
    with db.read() as session:
        entries = store_pool.pool_posts(session, None if channel is None else [channel], post_id)
    views: list[PoolEntryView] = []
    for entry in entries:
        ready: datetime | None = None
        if entry.channel in config.channel_names:
            ready = next_use(entry, config.channel(entry.channel).evergreen.cooldown, now)
        views.append(
            {
                "post_id": entry.post_id,
                "channel": entry.channel,
                "category": entry.category,
                "text": entry.text,
                "added_at": iso(entry.added_at),
                "uses": len(entry.used),
                "last_used": iso(entry.last_used),
                "next_use": iso(ready) if ready is not None and ready > now else None,
                "last_published": iso(entry.last_published),
                "queued_fill": iso(entry.queued_fill),
            }
        )
    return views


def remove_from_pool(db: Database, post_id: int, now: datetime) -> list[str]:
    """Take a post out of every pool; the channels whose pool held it (NotFound: none did). Deliveries it already
    filled stay queued (``smm cancel`` takes them out)."""
    with db.write() as session:
        channels = store_pool.remove(session, post_id, now)
        if not channels:
            raise NotFound(f"post {post_id} is in no evergreen pool")
    return channels
