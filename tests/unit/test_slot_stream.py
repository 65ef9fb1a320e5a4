"""slot_times (which walks only the weekdays that have slots) gives exactly the slots of a plain calendar walk."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from scheduler.slots import DEFAULT_SLOTS, Slot, local_to_utc, parse_slots, slot_times


def calendar_walk(slots: Iterable[Slot], zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """The reference: every calendar day from the day before ``after``, each day's slots in order."""
    by_day: dict[int, list] = {}  # type: ignore[type-arg]
    for slot in slots:
        by_day.setdefault(slot.weekday, []).append(slot.at)
    day: date = after.astimezone(zone).date() - timedelta(days=1)
    last = None
    while True:
        for instant in sorted({local_to_utc(datetime.combine(day, at), zone) for at in by_day.get(day.weekday(), ())}):
            if instant > after and (last is None or instant > last):
                last = instant
                yield instant
        day += timedelta(days=1)


SCHEDULES = [
    DEFAULT_SLOTS,
    parse_slots(["daily 09:00", "daily 13:00", "daily 18:00"]),
    parse_slots(["sun 02:30", "sun 03:30", "sat 23:59"]),  # inside and around the DST changes
    parse_slots(["weekdays 02:00", "mon 02:30", "mon 03:00"]),
    parse_slots(["wed 00:00"]),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Moscow"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("slots", SCHEDULES, ids=lambda s: ",".join(map(str, s))[:40])
def test_the_same_slots_as_slot_times(zone: str, slots: tuple) -> None:  # type: ignore[type-arg]
    tz = ZoneInfo(zone)
    for after in (
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 24, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 23, 12, 0, tzinfo=UTC) + timedelta(microseconds=1),
    ):
        expected = list(itertools.islice(calendar_walk(slots, tz, after), 400))
        assert list(itertools.islice(slot_times(slots, tz, after), 400)) == expected
