"""Whether a network can take a post down at a given time: what ``smm delete`` and ``--expire-at`` check before
they write anything (light: an adapter class's declared capabilities only, no network library)."""

from __future__ import annotations

from datetime import datetime

from adapters import Adapter
from scheduler.render import adapter_class


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
