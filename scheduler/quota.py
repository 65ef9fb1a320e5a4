"""Quotas known ahead (a VK community's 50 wall posts a day): defer the excess before the network rejects it.

:func:`plan` is pure; :func:`scheduler.store.quota.defer_over_quota` reads a channel's recent and upcoming
deliveries and moves those that would exceed the quota to the first moment the rolling window has room again, with
a note saying why.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

MARGIN = timedelta(seconds=1)


def plan(
    used: Iterable[datetime], upcoming: Sequence[tuple[int, datetime]], limit: int, window: timedelta
) -> list[tuple[int, datetime]]:
    """Moves ``(id, new time)`` so that no ``window`` holds more than ``limit`` posts.

    ``used`` are the times of posts already out (or on their way); ``upcoming`` are ``(id, time)`` of queued posts
    in the order they would go out. Posts keep their order and are never moved earlier.
    """
    times = sorted(used)
    moves: list[tuple[int, datetime]] = []
    last = None
    for delivery_id, wanted in upcoming:
        when = max(wanted, last) if last is not None else wanted
        while True:
            inside = len(times) - bisect_right(times, when - window)
            if inside < limit:
                break
            when = times[len(times) - limit] + window + MARGIN
        times.append(when)
        times.sort()
        last = when
        if when != wanted:
            moves.append((delivery_id, when))
    return moves
