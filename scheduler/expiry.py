"""Whether a network can take a post down at a given time: what ``smm delete`` and ``--expire-at`` check before
they write anything (light: an adapter class's declared capabilities only, no network library)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from adapters import Adapter
from scheduler.render import adapter_class
from scheduler.timefmt import format_local


def deletion_problem(network: str, published_at: datetime, at: datetime) -> str | None:
    """Why a post published (or to be published) on ``network`` at ``published_at`` cannot be deleted there at
    ``at``; None when it can."""
    cls = adapter_class(network)
    if cls.delete_post is Adapter.delete_post:
        return cls.unsupported.get("delete") or f"{cls.title} cannot delete posts"
    window = cls.capabilities.delete_window
    if window is not None and (at - published_at).total_seconds() >= window:
        hours = (at - published_at).total_seconds() / 3600
        return (
            f"{cls.title} lets a post be deleted only within {window / 3600:.0f} hours of publishing, "
            f"and that is {hours:.0f} hours after it"
        )
    return None


def expiry_problems(
    plan: Sequence[tuple[str, str, datetime, bool]],
    expiry: Mapping[str, datetime],
    zones: Mapping[str, tzinfo],
    name: str,
) -> list[str]:
    """Why the deliveries ``plan`` (``(channel, network, due_at, slotted)``) cannot be deleted at their ``expiry``
    (per channel): an expiry at or before the delivery's time, or one its network cannot delete by then."""
    found: list[str] = []
    for channel, network, due_at, _ in plan:
        at = expiry.get(channel)
        if at is None:
            continue
        if at <= due_at:
            found.append(f"{name} is not after the post goes out on {channel} ({format_local(due_at, zones[channel])})")
        elif why := deletion_problem(network, due_at, at):
            found.append(f"{name}: {channel} cannot delete it then: {why}")
    return found
