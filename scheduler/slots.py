"""The cadence: weekly wall-clock slots in a time zone, and where the next post goes.

Everything here is a pure function of (slots, time zone, occupied times, now); nothing reads the clock.

Daylight-saving policy (the same for every zone):

- a slot inside a *skipped* hour (spring forward, e.g. 02:30 where clocks jump from 02:00 to 03:00) fires at the
  instant the clock would have shown 02:30 without the jump, that is 03:30 on the new wall clock;
- a slot inside a *repeated* hour (fall back) fires once, at its first occurrence;
- if two slots fall on the same instant because of this, they count as one slot that day.

Explicit local times given by a user (``--at``) follow the same rule for repeated hours, but a time that does not
exist on the wall clock is refused (:func:`local_to_utc` with ``strict=True``): the user asked for something that
cannot happen.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import islice

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SLOT = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, order=True)
class Slot:
    """A weekly wall-clock time: ``weekday`` 0 is Monday."""

    weekday: int
    at: time

    def __str__(self) -> str:
        return f"{DAYS[self.weekday]} {self.at:%H:%M}"


DEFAULT_SLOTS = (Slot(1, time(10, 0)), Slot(4, time(10, 0)))
"""Twice a week: Tuesday and Friday at 10:00."""


def parse_slot(text: str) -> tuple[Slot, ...]:
    """``"tue 10:00"`` (or ``"tuesday 10:00"``), ``"daily 09:30"``, ``"weekdays 18:00"``."""
    match = _SLOT.match(text)
    if not match:
        raise ValueError(f'"{text}" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"')
    day, hour, minute = match.group(1).lower(), int(match.group(2)), int(match.group(3))
    if hour > 23 or minute > 59:
        raise ValueError(f'"{text}": {hour:02d}:{minute:02d} is not a time of day (00:00 to 23:59)')
    at = time(hour, minute)
    if day == "daily":
        return tuple(Slot(d, at) for d in range(7))
    if day == "weekdays":
        return tuple(Slot(d, at) for d in range(5))
    if day == "weekends":
        return (Slot(5, at), Slot(6, at))
    if day in DAYS:
        return (Slot(DAYS.index(day), at),)
    if day in _FULL_DAYS:
        return (Slot(_FULL_DAYS.index(day), at),)
    raise ValueError(f'"{text}": {match.group(1)!r} is not a day (mon..sun, daily, weekdays, weekends)')


def parse_slots(texts: Iterable[str]) -> tuple[Slot, ...]:
    """Parse and sort a list of slots; an empty list or a repeated slot is an error."""
    slots: set[Slot] = set()
    for text in texts:
        for slot in parse_slot(text):
            if slot in slots:
                raise ValueError(f'"{text}": {slot} is listed twice')
            slots.add(slot)
    if not slots:
        raise ValueError("at least one slot is needed")
    return tuple(sorted(slots))


def local_to_utc(local: datetime, zone: tzinfo, *, strict: bool = False) -> datetime:
    """A naive wall-clock time in ``zone`` as an aware UTC datetime, by the policy in the module docstring.

    With ``strict``, a wall-clock time skipped by a daylight-saving jump raises ``ValueError``.
    """
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    aware = local.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if strict and utc.astimezone(zone).replace(tzinfo=None) != local:
        raise ValueError(f"{local:%Y-%m-%d %H:%M} does not exist in {zone} (the clocks skip it)")
    return utc


def slot_times(slots: Iterable[Slot], zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """Every slot instant strictly after ``after`` (aware), in UTC, in order, without repeats; endless.

    Walks week by week over the weekdays that have slots only (a bulk import asks for a hundred thousand slots).
    """
    by_day: dict[int, list[time]] = {}
    for slot in slots:
        by_day.setdefault(slot.weekday, []).append(slot.at)
    weekdays = sorted(by_day)
    start = after.astimezone(zone).date() - timedelta(days=1)
    week = start - timedelta(days=start.weekday())
    last: datetime | None = None
    while weekdays:
        for weekday in weekdays:
            day = week + timedelta(days=weekday)
            if day < start:
                continue
            for instant in sorted({local_to_utc(datetime.combine(day, at), zone) for at in by_day[weekday]}):
                if instant > after and (last is None or instant > last):
                    last = instant
                    yield instant
        week += timedelta(days=7)


def free_slots(
    slots: Iterable[Slot], zone: tzinfo, after: datetime, occupied: Container[datetime]
) -> Iterator[datetime]:
    """Every slot instant strictly after ``after`` that is not in ``occupied`` (UTC times), in order; endless.

    ``occupied`` is consulted as the walk goes, so times added to it meanwhile are skipped too.
    """
    return (instant for instant in slot_times(slots, zone, after) if instant not in occupied)


def next_free_slots(
    slots: Iterable[Slot],
    zone: tzinfo,
    after: datetime,
    occupied: Iterable[datetime] = (),
    count: int = 1,
) -> list[datetime]:
    """The first ``count`` slot instants strictly after ``after`` that are not in ``occupied`` (in any zone)."""
    return list(islice(free_slots(slots, zone, after, {o.astimezone(UTC) for o in occupied}), count))


def push_back(
    slots: Iterable[Slot],
    zone: tzinfo,
    now: datetime,
    queued: list[datetime],
    occupied: Iterable[datetime] = (),
) -> tuple[datetime, list[datetime]]:
    """``--next``: the first free slot after ``now`` for the new post, and the queued times pushed back one slot.

    ``queued`` are the times of the channel's queue-placed deliveries, in order; ``occupied`` are times taken by
    deliveries that keep their time (explicit ``--at`` posts). Returns the new post's time and the new times of
    ``queued``, in the same order; deliveries before the new post's slot keep their time.
    """
    slots = tuple(slots)
    taken = {o.astimezone(UTC) for o in occupied}
    first = next_free_slots(slots, zone, now, taken)[0]
    moved = list(queued)
    # Walk the queue forwards: each delivery goes to the first free slot after both its own time and the slot just
    # given to the one before it. That is "one slot back" for a well-formed queue, and keeps the order (and no two
    # on one slot) even when a queued delivery shares its time with an explicit one or with another queued one.
    previous = first
    for i, when in enumerate(queued):
        if when < first:
            continue
        moved[i] = next_free_slots(slots, zone, max(when, previous), taken)[0]
        previous = moved[i]
    return first, moved
