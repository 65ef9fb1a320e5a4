"""Times and durations as people read them: one wall-clock format, one machine format and one duration format for
every message, the adapters' and the scheduler's (:mod:`scheduler.timefmt` is this module for the scheduler).

Here, in ``adapters/``, because adapters may not import the scheduler; it imports nothing heavy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

WALL_CLOCK = "%a %Y-%m-%d %H:%M %Z"
"""``Tue 2026-03-03 10:00 MSK``: a time in the channel's zone, as every message shows it."""

_MINUTE = 60
_HOUR = 3600
_DAY = 86400


def format_local(when: datetime, zone: tzinfo, *, weekday: bool = True, clock: bool = True) -> str:
    """``when`` in ``zone`` in the one wall-clock format; ``weekday=False`` drops the day's name
    (``2026-03-03 10:00 MSK``; in UTC ``2026-03-03 07:00 UTC``), ``clock=False`` keeps only the date
    (``Tue 2026-03-03``)."""
    fmt = WALL_CLOCK if clock else "%a %Y-%m-%d"
    if not weekday:
        fmt = fmt.removeprefix("%a ")
    return when.astimezone(zone).strftime(fmt)


def format_iso(when: datetime) -> str:
    """``2026-03-03T07:00:00Z``: ``when`` in UTC, ISO 8601, as the JSON output and the JSON log lines give times."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_duration(delta: timedelta, style: Literal["short", "words", "window", "exact"] = "short") -> str:
    """A duration for a message, in whole units; each unit serves until it counts two of the next.

    - ``short``: ``90s``, ``45m``, ``30h``, ``3d`` (retry decisions);
    - ``words``: whole minutes at least, ``0 min``, ``45 min``, ``30 h``, ``3 days`` (how late a post is);
    - ``window``: the span of a rate window after "per", ``day`` or ``6 hours``, ``1.5 hours``;
    - ``exact``: as the config writes it, in the largest unit that counts it whole (days from two on): ``1h``,
      ``24h``, ``7d``, ``90m``, ``45s`` (the planned ages of results).
    """
    if style == "window":
        hours = delta.total_seconds() / _HOUR
        return "day" if hours == 24 else f"{hours:g} hours"
    seconds = int(delta.total_seconds())
    if style == "exact":
        if seconds >= 2 * _DAY and seconds % _DAY == 0:
            return f"{seconds // _DAY}d"
        for unit, suffix in ((_HOUR, "h"), (_MINUTE, "m")):
            if seconds and seconds % unit == 0:
                return f"{seconds // unit}{suffix}"
        return f"{seconds}s"
    words = style == "words"
    if seconds >= 2 * _DAY:
        return f"{seconds // _DAY} days" if words else f"{seconds // _DAY}d"
    if seconds >= 2 * _HOUR:
        return f"{seconds // _HOUR} h" if words else f"{seconds // _HOUR}h"
    if seconds >= 2 * _MINUTE or words:
        return f"{seconds // _MINUTE} min" if words else f"{seconds // _MINUTE}m"
    return f"{seconds}s"
