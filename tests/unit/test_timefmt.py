"""The one wall-clock format, the one machine format and the one duration format, in the strings messages show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters import timefmt as adapters_timefmt
from scheduler.timefmt import format_duration, format_iso, format_local

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


def test_a_time_in_utc_and_for_machines() -> None:
    # The late policy's lines and Facebook's scheduling refusal give UTC times so; the JSON output ISO 8601 so.
    assert format_local(WHEN, UTC, weekday=False) == "2026-03-03 07:00 UTC"
    assert format_iso(WHEN.astimezone(MOSCOW)) == "2026-03-03T07:00:00Z"
    assert format_iso(WHEN + timedelta(microseconds=5)) == "2026-03-03T07:00:00.000005Z"


@pytest.mark.parametrize(
    ("seconds", "exact"),
    [(45, "45s"), (90, "90s"), (60, "1m"), (5400, "90m"), (3600, "1h"), (86400, "24h"), (3 * 86400, "3d"), (0, "0s")],
)
def test_duration_as_the_config_writes_it(seconds: int, exact: str) -> None:
    assert format_duration(timedelta(seconds=seconds), "exact") == exact


def test_the_formats_live_where_the_adapters_can_use_them_too() -> None:
    assert (format_local, format_iso, format_duration) == (
        adapters_timefmt.format_local,
        adapters_timefmt.format_iso,
        adapters_timefmt.format_duration,
    )
