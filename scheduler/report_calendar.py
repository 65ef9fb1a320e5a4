"""The calendar of the HTML report: each channel's next four weeks, its posts, its empty slots, and where the
content mix rule binds.

Nothing here places a post: the empty slots are the planner's (:meth:`scheduler.placement.Planner.empty_slots`,
the cadence's slots that no delivery holds, which the evergreen pool fills), and whether a commercial post could go
in one is the question ``smm add --at`` asks (:meth:`scheduler.placement.Planner.commercial_fits`). A commercial
delivery already in a window over the rule's limit (placed with ``--force``) is marked too
(:func:`scheduler.placement.offending`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from scheduler import repository, timeline
from scheduler.config import ChannelConfig, Config
from scheduler.db import Database
from scheduler.placement import Planner, offending

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DAYS = 28
"""How far ahead the calendar looks: four weeks."""


@dataclass(frozen=True)
class Entry:
    """A delivery on the calendar, or an empty slot of the cadence (``post_id`` None).

    ``mix_binds``: for an empty slot, a commercial post there would break the content mix rule; for a delivery,
    it is commercial and already breaks it.
    """

    at: datetime
    channel: str
    zone: ZoneInfo
    post_id: int | None = None
    category: str | None = None
    status: str | None = None
    text: str = ""
    mix_binds: bool = False

    @property
    def day(self) -> date:
        """The day in the channel's time zone."""
        return self.at.astimezone(self.zone).date()

    @property
    def local_time(self) -> str:
        """``10:00`` in the channel's time zone."""
        return f"{self.at.astimezone(self.zone):%H:%M}"


@dataclass(frozen=True)
class Calendar:
    """Whole weeks from the Monday of ``today`` to the last of the :data:`DAYS` days ahead; ``entries`` by time."""

    today: date
    first: date
    last: date
    entries: tuple[Entry, ...]
    rules: dict[str, str]
    """Each channel's content mix rule, described (``at most 50% of any 4``, ``off``)."""

    def weeks(self) -> list[list[date]]:
        """The days of the calendar, Monday to Sunday, week by week."""
        days = [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]
        return [days[i : i + 7] for i in range(0, len(days), 7)]

    def on(self, day: date) -> list[Entry]:
        """The entries of one day, by time."""
        return [e for e in self.entries if e.day == day]


def build_calendar(config: Config, db: Database, now: datetime, channels: Sequence[str] = ()) -> Calendar:
    """The calendar of ``channels`` (every configured channel when empty) from the start of this week (in the
    config's time zone) to :data:`DAYS` days after ``now``: posts since Monday, empty slots from ``now`` on."""
    today = now.astimezone(config.timezone).date()
    first = today - timedelta(days=today.weekday())
    end = today + timedelta(days=DAYS)
    last = end + timedelta(days=6 - end.weekday())
    since = datetime.combine(first, time(), config.timezone)
    until = now + timedelta(days=DAYS)
    chosen = [c for c in config.channels if not channels or c.name in channels]
    entries: list[Entry] = []
    with db.read() as session:
        for channel in chosen:
            entries += _channel_entries(session, channel, now, since, until)
    entries.sort(key=lambda e: (e.at, e.channel))
    return Calendar(today, first, last, tuple(entries), {c.name: c.mix.describe() for c in chosen})


def _channel_entries(
    session: Session, channel: ChannelConfig, now: datetime, since: datetime, until: datetime
) -> list[Entry]:
    name, zone = channel.name, channel.timezone
    planned = repository.planned_between(session, name, since, until, [s.value for s in timeline.IN_SEQUENCE])
    breaking = offending(session, channel, now, until)
    entries = [Entry(p.due_at, name, zone, p.post_id, p.category, p.status, p.text, p.id in breaking) for p in planned]
    planner = Planner(session, channel, now)
    for when in planner.empty_slots(until):
        if when < until:  # the planner's includes a slot at ``until``; the calendar's range does not
            entries.append(Entry(when, name, zone, mix_binds=not planner.commercial_fits(when)))
    return entries
