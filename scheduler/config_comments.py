"""The ``[comments]`` table of the configuration: the daemon's comment watch (:class:`CommentsConfig`) and its
validation (:func:`read_comments`). Used by :mod:`scheduler.config`; every error is one line naming the file and
the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from adapters.channel import show
from scheduler.toml_table import Table

MIN_INTERVAL = 60.0
"""The shortest interval between two reads: each read asks the networks about every recent post."""
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class CommentsConfig:
    """``[comments]``: whether the daemon reads comments, on the posts of how many days, how often, and when the
    daily digest alert goes (a wall-clock time in the ``[schedule]`` time zone)."""

    enabled: bool = True
    days: int = 14
    interval: float = 3600.0
    digest_at: time = time(9, 0)


def read_comments(section: Any, label: str) -> CommentsConfig:
    """The ``[comments]`` table (``section``, the TOML value)."""
    t = Table(label, "comments.", section)
    enabled = t.boolean("enabled", True)
    days = t.whole("days", 14, minimum=1)
    interval = t.duration("interval", 3600)
    if interval < MIN_INTERVAL:
        raise t.error("interval", f"must be at least {MIN_INTERVAL:g} seconds, not {interval:g}")
    raw = t.string("digest_at", "09:00")
    assert raw is not None
    match = _CLOCK.fullmatch(raw)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise t.error("digest_at", f'{show(raw)} is not a time of day such as "09:00"')
    t.finish()
    return CommentsConfig(enabled, days, interval, time(int(match[1]), int(match[2])))
