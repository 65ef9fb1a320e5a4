"""What the daemon reads from the database: each cycle's look at the queue, and the summary for operators."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.orm import Session

from scheduler import evergreen, store
from scheduler import repository as repo
from scheduler.config import ChannelConfig, Config
from scheduler.models import Delivery
from scheduler.placement import local
from scheduler.store import pool as pool_rows
from scheduler.timefmt import format_local
from scheduler.views import plural

EXPIRED_LIMIT = 100
"""Expired leases one look hands to reconciliation at most (the next look takes the rest)."""


@dataclass(frozen=True)
class Look:
    """One cycle's reads."""

    new: list[Delivery]
    newest: int
    due: list[str]
    expired: list[int]
    next_wake: datetime | None
    #: Expired leases left out because ``exclude`` had them (still in this daemon's hands): a look is needed once
    #: they leave it, as nothing else wakes the daemon for them.
    held: list[int] = field(default_factory=list)
    #: When the first lease still running ends (a wake-up for it: a crash's leftovers, an outcome in doubt).
    lease_end: datetime | None = None
    #: ``(due time, channel)`` of what falls due after this cycle, up to ``ahead_until``, in time order.
    upcoming: list[tuple[datetime, str]] = field(default_factory=list)
    ahead_until: datetime | None = None


def look(
    session: Session,
    seen_id: int,
    due_at: datetime,
    now: datetime,
    exclude: set[int],
    ahead: timedelta | None = None,
    ahead_limit: int = 256,
) -> Look:
    """One cycle's reads: new deliveries, channels with something due, expired leases, the next wake-up.

    The next wake-up is a delivery falling due after ``due_at`` or a lease running out after ``now``. What is due
    already is this cycle's (its channel's worker claims it, and every delivery due on the channel after it); it
    must not hide the next one, or that one would wait for the tick. One statement answers an idle cycle; the due
    channels and the expired leases are read only when there are some. With ``ahead``, what falls due within that
    long after ``due_at`` is read too when something does (``upcoming``, complete up to ``ahead_until``)."""
    seen = store.glance(session, due_at)
    new, newest = store.queued_since(session, seen_id, seen.newest_id)
    due = store.due_channels(session, due_at) if seen.first_due is not None and seen.first_due <= due_at else []
    expired: list[int] = []
    held: list[int] = []
    lease_end = seen.first_lease_end
    if lease_end is not None and lease_end <= now:
        ran_out = store.expired_leases(session, now, set(), limit=EXPIRED_LIMIT + len(exclude))
        expired = [i for i in ran_out if i not in exclude][:EXPIRED_LIMIT]
        held = [i for i in ran_out if i in exclude]
        lease_end = store.next_lease_expiry(session, now)
    times = [t for t in (seen.next_due, lease_end) if t is not None]
    upcoming: list[tuple[datetime, str]] = []
    ahead_until = None
    if ahead is not None and seen.next_due is not None and seen.next_due <= due_at + ahead:
        ahead_until = due_at + ahead
        upcoming = store.upcoming(session, due_at, ahead_until, ahead_limit)
        if len(upcoming) == ahead_limit:  # cut short: complete only up to before its last due time
            ahead_until = upcoming[-1][0]
            upcoming = [item for item in upcoming if item[0] < ahead_until]
    return Look(
        new=new,
        newest=newest,
        due=due,
        expired=expired,
        held=held,
        next_wake=min(times) if times else None,
        lease_end=lease_end,
        upcoming=upcoming,
        ahead_until=ahead_until,
    )


class SummaryLine(NamedTuple):
    """One line of the operators' summary, at its log level; ``dry``: a queue that runs dry (an alert too);
    ``channel``: the channel the line is about (it begins ``channel NAME: ``)."""

    level: int
    text: str
    dry: bool = False
    channel: str | None = None

    @property
    def about(self) -> str:
        """The text without its ``channel NAME: `` head (an alert names the channel apart)."""
        return self.text.removeprefix(f"channel {self.channel}: ") if self.channel else self.text


def summary(config: Config, now: datetime, session: Session) -> list[SummaryLine]:
    """The operators' summary: per channel what is queued and until when, and the channels that need a person.

    A queue that runs dry within ``queue_warning_days`` is a warning (and a ``queue_dry`` alert) unless the
    channel's evergreen pool fills every empty slot until then."""
    lines: list[SummaryLine] = []
    queues = store.queued_per_channel(session, config.channel_names)
    horizon = now + timedelta(days=config.daemon.queue_warning_days)
    pooled = pool_rows.pool_channels(session)
    for channel in config.channels:
        queued, nxt, last = queues.get(channel.name, (0, None, None))
        if nxt is not None:
            lines.append(
                SummaryLine(logging.INFO, f"channel {channel.name}: {queued} queued, next {local(nxt, channel)}")
            )
            if last is None or last >= horizon:
                continue
        held, gap = evergreen.coverage(session, channel, now, horizon) if channel.name in pooled else (0, None)
        lines.append(_running_dry(channel, last, config.daemon.queue_warning_days, held, gap))
    for name, reason in sorted(repo.attention(session).items()):
        lines.append(SummaryLine(logging.ERROR, f"channel {name} needs attention: {reason}"))
    return lines


def _running_dry(
    channel: ChannelConfig, last: datetime | None, days: int, held: int, gap: datetime | None
) -> SummaryLine:
    """The line about a queue that runs dry after ``last`` (None: nothing queued) within ``days``, whose evergreen
    pool holds ``held`` posts and cannot fill the slot ``gap`` (None: it fills them all)."""
    within = plural(days, "day", "days")
    stops = (
        "nothing queued"
        if last is None
        else f"the queue runs dry after {format_local(last, channel.timezone, clock=False)}"
    )
    if held and gap is None:
        return SummaryLine(
            logging.INFO, f"channel {channel.name}: {stops}; its evergreen pool fills the empty slots within {within}"
        )
    text = stops if last is None else f"{stops}, within {within}"
    if held and gap is not None:
        text += (
            f", and its evergreen pool ({plural(held, 'post', 'posts')}) cannot fill the slot {local(gap, channel)} "
            "either (each was used within the cooldown, is next to it, or would break the content mix)"
        )
    if last is None:
        return SummaryLine(logging.WARNING, f"channel {channel.name}: {text}; the cadence has stopped")
    return SummaryLine(
        logging.WARNING,
        f"channel {channel.name}: {text}; queue more posts to keep the cadence",
        dry=True,
        channel=channel.name,
    )
