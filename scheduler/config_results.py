"""The ``[results]`` table of the configuration: whether the daemon reads back what it published, and at which
ages (:class:`ResultsConfig`, :func:`read_results`). Used by :mod:`scheduler.config`; every error is one line
naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from scheduler.timefmt import format_duration
from scheduler.toml_table import Table

DEFAULT_AGES = (3600, 86400, 7 * 86400)
"""A post's results are read 1 hour, 24 hours and 7 days after it was published."""
MAX_AGES = 10
SMALLEST_AGE = 60
"""Seconds: a reading sooner than a minute after publishing measures nothing."""
LARGEST_AGE = 365 * 86400


@dataclass(frozen=True)
class ResultsConfig:
    """``[results]``: collect each post's results at ``ages`` (seconds after publishing, ascending) and each
    channel's audience once a day; ``enabled = false`` turns both off."""

    enabled: bool = True
    ages: tuple[int, ...] = DEFAULT_AGES
    interval: float = 300.0
    """Seconds between two looks for readings that came due."""


def read_results(section: Any, label: str) -> ResultsConfig:
    """The ``[results]`` table (``section``, the TOML value)."""
    t = Table(label, "results.", section)
    enabled = t.boolean("enabled", True)
    raw = t.durations("ages", tuple(float(a) for a in DEFAULT_AGES))
    if not raw:
        raise t.error("ages", "is empty: leave it out for the default, or set enabled = false")
    if len(raw) > MAX_AGES:
        raise t.error("ages", f"has {len(raw)} ages; at most {MAX_AGES}")
    ages = tuple(sorted(round(age) for age in raw))
    for age in ages:
        if not SMALLEST_AGE <= age <= LARGEST_AGE:
            raise t.error(
                "ages", f"{format_duration(timedelta(seconds=age), 'exact')} is not between 1 minute and 365 days"
            )
    if len(set(ages)) < len(ages):
        raise t.error("ages", "names the same age twice")
    interval = t.duration("interval", 300)
    if not 10 <= interval <= 86400:
        raise t.error("interval", "must be between 10 seconds and 1 day")
    t.finish()
    return ResultsConfig(enabled=enabled, ages=ages, interval=interval)
