"""The bulk importer's slot generator gives exactly the slots of :func:`scheduler.slots.slot_times`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.importer import slot_stream
from scheduler.slots import DEFAULT_SLOTS, parse_slots, slot_times

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
        expected = list(itertools.islice(slot_times(slots, tz, after), 400))
        assert list(itertools.islice(slot_stream(slots, tz, after), 400)) == expected
