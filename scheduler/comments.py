"""Comments the daemon's watch stored (:mod:`scheduler.daemon.comments`): ``smm comments`` (:func:`list_comments`,
their JSON shape :func:`comment_view`) and the daily digest alert's text (:func:`digest_alert`, :func:`next_digest`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo

from scheduler.alerts import Alert
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.store.comments import StoredComment, listed, mark_shown
from scheduler.views import configured, iso, plural

SHOWN_TEXT = 200
"""Characters of a comment's text that ``smm comments`` and the digest show."""
DIGEST_LINES = 20
"""Comments a digest lists one by one; it counts the rest."""


class CommentView(TypedDict):
    """One comment in ``smm comments --json`` (documented in docs/json.md)."""

    id: int
    post_id: int
    channel: str
    network: str
    remote_id: str
    author: str
    text: str
    written_at: str | None
    url: str | None
    seen_at: str | None
    new: bool


def comment_view(comment: StoredComment) -> CommentView:
    return {
        "id": comment.id,
        "post_id": comment.post_id,
        "channel": comment.channel,
        "network": comment.network,
        "remote_id": comment.remote_id,
        "author": comment.author,
        "text": comment.text,
        "written_at": iso(comment.written_at),
        "url": comment.url,
        "seen_at": iso(comment.seen_at),
        "new": not comment.shown,
    }


def known_channel(channel: str | None, channels: Collection[str]) -> None:
    """``--channel`` names one of ``channels`` (or is not given)."""
    if channel is not None and channel not in channels:
        raise InputError(f"--channel: no channel named {channel!r} ({configured(channels)})")


def list_comments(
    db: Database, now: datetime, *, since: datetime | None = None, channel: str | None = None, seen_too: bool = False
) -> list[StoredComment]:
    """``smm comments``: the new comments (``seen_too``: those shown before too), newest first, written at or after
    ``since``, on ``channel``; once listed, they are no longer new."""
    with db.write() as session:
        found = listed(session, since=since, channel=channel, seen_too=seen_too)
        mark_shown(session, [c.id for c in found if not c.shown], now)
    return found


def short(text: str) -> str:
    """A comment's text on one line, at most :data:`SHOWN_TEXT` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN_TEXT else flat[: SHOWN_TEXT - 1] + "…"


def digest_alert(comments: Sequence[StoredComment]) -> Alert:
    """``5 new comments: post 12 on vk (3), facebook (2)``, then a line per comment (author, text, link)."""
    posts: dict[int, Counter[str]] = {}
    for comment in comments:
        posts.setdefault(comment.post_id, Counter())[comment.channel] += 1
    where = "; ".join(
        f"post {post} on " + ", ".join(f"{channel} ({count})" for channel, count in sorted(counts.items()))
        for post, counts in sorted(posts.items())
    )
    lines = [
        f"post {c.post_id} on {c.channel}, {c.author or 'someone'}: {short(c.text)}" + (f" {c.url}" if c.url else "")
        for c in comments[:DIGEST_LINES]
    ]
    if len(comments) > DIGEST_LINES:
        lines.append(f"and {len(comments) - DIGEST_LINES:,} more: smm comments")
    headline = f"{plural(len(comments), 'new comment', 'new comments')}: {where}"
    return Alert("comment_digest", headline, details=tuple(lines))


def next_digest(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The next time of day ``at`` in ``zone`` after ``now`` (an aware time)."""
    local = now.astimezone(zone)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        when = datetime.combine(day, at, tzinfo=zone)
        if when > now:
            return when.astimezone(UTC)
    raise AssertionError("a time of day comes within two days")
