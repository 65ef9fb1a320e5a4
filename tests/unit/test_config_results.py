"""``[results]``: the planned ages and the switch, with one-line errors naming the file and the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config_results import DEFAULT_AGES
from scheduler.timefmt import format_duration
from tests.unit.test_config import error_of, load, write


def test_results_are_read_at_one_hour_a_day_and_a_week_by_default(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""))
    assert config.results.enabled and config.results.ages == DEFAULT_AGES == (3600, 86400, 604800)
    assert [format_duration(timedelta(seconds=age), "exact") for age in config.results.ages] == ["1h", "24h", "7d"]


def test_ages_are_durations_in_any_order(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[results]\nages = ["3d", 1800, "6h"]\ninterval = "1m"\nenabled = false\n'))
    assert config.results.ages == (1800, 6 * 3600, 3 * 86400)
    assert (config.results.interval, config.results.enabled) == (60, False)
    assert [format_duration(timedelta(seconds=age), "exact") for age in config.results.ages] == ["30m", "6h", "3d"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('ages = "1h"', 'results.ages: "1h" is not a list of durations such as ["1h", "24h", "7d"]'),
        ('ages = ["1h", "soon"]', 'results.ages: ["1h", "soon"] is not a list of durations'),
        ("ages = []", "results.ages: is empty: leave it out for the default, or set enabled = false"),
        ('ages = ["30s"]', "results.ages: 30s is not between 1 minute and 365 days"),
        ('ages = ["400d"]', "results.ages: 400d is not between 1 minute and 365 days"),
        ('ages = ["1h", "60m"]', "results.ages: names the same age twice"),
        ("enabled = 1", "results.enabled: must be true or false, not 1"),
        ('interval = "1s"', "results.interval: must be between 10 seconds and 1 day"),
        ('age = ["1h"]', "results.age: unknown key, did you mean ages?"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    assert message in error_of(write(tmp_path, f"[results]\n{body}\n"))
