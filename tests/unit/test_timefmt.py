"""The one wall-clock format and the one duration format, in the strings messages show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.timefmt import format_duration, format_local

MOSCOW = ZoneInfo("Europe/Moscow")
WHEN = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)


def test_local_time_in_the_channel_zone() -> None:
    assert format_local(WHEN, MOSCOW) == "Tue 2026-03-03 10:00 MSK"
    assert format_local(WHEN, MOSCOW, weekday=False) == "2026-03-03 10:00 MSK"
    assert format_local(WHEN, MOSCOW, clock=False) == "Tue 2026-03-03"
    assert format_local(WHEN, UTC) == "Tue 2026-03-03 07:00 UTC"


@pytest.mark.parametrize(
    ("seconds", "short", "words"),
    [
        (0, "0s", "0 min"),
        (59, "59s", "0 min"),
        (119, "119s", "1 min"),
        (120, "2m", "2 min"),
        (7199, "119m", "119 min"),
        (7200, "2h", "2 h"),
        (172799, "47h", "47 h"),
        (172800, "2d", "2 days"),
        (30 * 86400 + 5, "30d", "30 days"),
    ],
)
def test_duration_each_unit_until_two_of_the_next(seconds: int, short: str, words: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == short
    assert format_duration(timedelta(seconds=seconds), "words") == words


def test_duration_of_a_rate_window() -> None:
    assert format_duration(timedelta(hours=24), "window") == "day"
    assert format_duration(timedelta(hours=6), "window") == "6 hours"
    assert format_duration(timedelta(minutes=90), "window") == "1.5 hours"
