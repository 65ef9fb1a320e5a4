"""What a write declares about due times: whether it may give a delivery a due time sooner than the daemon planned.

The daemon reads ahead what falls due in the coming seconds and serves its wake-ups from that until something may
have changed it (see :mod:`scheduler.daemon.look`). A write that only takes deliveries out of the queue, or changes
none, leaves what was read ahead true: it says so where it is defined, with :func:`keeps_due_times`. Any other write
of the daemon's (a retry, a check of an outcome in doubt, a lease group newly taken) makes it look at the queue again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_KEEPING: set[Callable[..., object]] = set()


def keeps_due_times(fn: F) -> F:
    """Declare that ``fn`` (a write or a read run in a write transaction) gives no delivery a new due time."""
    _KEEPING.add(fn)
    return fn


def may_change_due_times(fn: Callable[..., object]) -> bool:
    """Whether ``fn`` may give a delivery a due time that what was read ahead does not have."""
    return fn not in _KEEPING
