"""Posts and deliveries in the documented JSON shape (``--json``), from ORM objects or Core rows alike.

Imports nothing heavy: every command's output goes through here, ``smm --version`` included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any


def plural(n: int, one: str, many: str) -> str:
    """``1 post``, ``2 posts``, ``10,000 posts``."""
    return f"{n:,} {one if n == 1 else many}"


def some_of(names: Sequence[str], limit: int = 20) -> str:
    """``a, b, c``; past ``limit`` names, the first ``limit`` and ``and 2,030 more`` (a log line for an agency's
    thousands of channels stays one readable line)."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit:,} more"


def configured(names: Iterable[str]) -> str:
    """``configured: a, b`` for an error about a channel name that is not one (the first 20 of an agency's)."""
    return f"configured: {some_of(list(names)) or 'none'}"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def delivery_view(d: Any) -> dict[str, Any]:
    """A delivery (an ORM object or a row of the deliveries table) as JSON-ready data."""
    return {
        "channel": d.channel,
        "network": d.network,
        "status": d.status,
        "due_at": iso(d.due_at),
        "attempts": d.attempts,
        "published_at": iso(d.published_at),
        "remote_id": d.remote_id,
        "remote_url": d.remote_url,
        "last_error": d.last_error,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "queued" else None,
        "note": d.note,
        "network_scheduled_at": iso(d.native_at) if d.native_id and d.native_at else None,
    }


def post_view(post: Any, deliveries: Sequence[Any]) -> dict[str, Any]:
    """A post in the documented JSON shape."""
    return {
        "id": post.id,
        "text": post.text,
        "link": post.link,
        "category": post.category,
        "media": [{k: m.get(k) for k in ("name", "sha256", "mime", "size", "width", "height")} for m in post.media],
        "created_at": iso(post.created_at),
        "deliveries": [delivery_view(d) for d in deliveries],
    }
