"""``smm delete``: asking for a published post to be taken down from its networks.

The command only writes the request (``delete_at``, now) and cancels what has not gone out; the daemon carries it
out as an attempt like a publish (:mod:`scheduler.deleting`). Everything is checked before anything is written:
an unknown post or channel, nothing published, a network that cannot delete the post (Telegram after 48 hours)
refuse the whole command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scheduler import repository as repo
from scheduler.config import Config
from scheduler.db import Database
from scheduler.errors import InputError, NotFound, StateConflict
from scheduler.expiry import deletion_problem
from scheduler.models import Delivery, Status
from scheduler.store import deletions
from scheduler.store import pool as pool_rows
from scheduler.views import PostView, post_view

WAIT_NOTE = (
    "the daemon deletes it within seconds; with no daemon running, the request waits: `smm run --once` carries it out"
)


@dataclass(frozen=True)
class DeletionRequest:
    """What ``smm delete`` did: the post as it is now, and one line per delivery about what becomes of it."""

    view: PostView
    lines: list[str]


def request_deletion(
    config: Config, db: Database, post_id: int, now: datetime, channel: str | None = None
) -> DeletionRequest:
    """Ask the daemon to delete the post's published deliveries (all, or the one on ``channel``) and cancel the
    queued and failed ones; an InputError (nothing written) for what cannot be done."""
    with db.write() as session:
        post = repo.get_post(session, post_id)
        if post is None:
            raise NotFound(f"no post with id {post_id}")
        targets = [d for d in post.deliveries if channel is None or d.channel == channel]
        pools = pool_rows.members(session, post_id, channel)
        pooled = f"`smm pool remove {post_id}` takes it out of the evergreen pool of {', '.join(pools)}"
        if not targets and pools:
            raise StateConflict(f"post {post_id} is only in the evergreen pool, nothing went out to delete; {pooled}")
        if channel is not None and not targets:
            raise InputError(f"post {post_id} has no delivery on channel {channel!r}")
        published = [d for d in targets if d.status == Status.PUBLISHED]
        if not published:
            states = ", ".join(f"{d.channel} is {d.status}" for d in targets)
            hint = f"; `smm cancel {post_id}` cancels what has not gone out" if _waiting(targets) else ""
            hint += f"; {pooled}" if pools else ""
            raise StateConflict(f"post {post_id} has nothing published to delete ({states}){hint}")
        refused = [f"{d.channel}: {why}" for d in published if (why := _problem(d, now))]
        if refused:
            others = " (leave it out with --channel)" if len(published) > 1 else ""
            raise InputError(f"cannot delete post {post_id}: {'; '.join(refused)}{others}")
        lines = [f"{d.channel}: deleting {d.remote_url or d.remote_id}" for d in published]
        for d in targets:
            if d.status == Status.PUBLISHING:
                lines.append(f"{d.channel}: being published right now: `smm delete {post_id}` again once it is out")
            elif d.status == Status.UNKNOWN:
                lines.append(f"{d.channel}: in doubt: settle it with `smm resolve {post_id}`, then delete it")
            elif d.status in (Status.QUEUED, Status.FAILED):
                lines.append(f"{d.channel}: {d.status}, cancelled")
        deletions.request_deletion(session, [d.id for d in published], now)
        repo.cancel_deliveries(session, post_id, now, channel, statuses=(Status.QUEUED, Status.FAILED))
        # A post taken down must not come back from the evergreen pool at the next empty slot.
        lines += [
            f"{name}: taken out of the evergreen pool" for name in pool_rows.remove(session, post_id, now, channel)
        ]
        session.expire_all()
        post = repo.get_post(session, post_id)
        assert post is not None
        targets = [d for d in post.deliveries if channel is None or d.channel == channel]
        view = post_view(post, targets)
    db.wake_daemon()
    return DeletionRequest(view, [*lines, WAIT_NOTE])


def _waiting(deliveries: list[Delivery]) -> bool:
    return any(d.status in (Status.QUEUED, Status.FAILED, Status.UNKNOWN) for d in deliveries)


def _problem(delivery: Delivery, now: datetime) -> str | None:
    if not delivery.remote_id:
        return "it was marked published by hand, without the network's id: delete it there by hand"
    return deletion_problem(delivery.network, delivery.published_at or now, now)
