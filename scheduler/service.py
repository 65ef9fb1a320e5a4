"""The use cases behind the CLI: list the queue, show, cancel, reschedule, retry, resolve. Queueing a post lives in
:mod:`scheduler.intake`, which must not load the ORM.

Each function takes the configuration, the database and ``now`` (aware UTC), validates everything before it writes,
and writes in one short transaction. Invalid input raises :class:`~scheduler.errors.InputError` and leaves the
database and the media store as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TypedDict

from sqlalchemy.orm import Session

from scheduler import mix, placement, timeline
from scheduler import repository as repo
from scheduler.config import CATEGORIES, Config
from scheduler.db import Database
from scheduler.errors import InputError, NotFound, StateConflict
from scheduler.intake import check_link, parse_when
from scheduler.models import ACTIVE, Delivery, Post, Status
from scheduler.store import pool as store_pool
from scheduler.timefmt import format_local
from scheduler.views import PostView, configured, iso, plural, post_view

MIX_HORIZON = 1000
"""``smm queue`` shows the content mix of at most this many upcoming deliveries per channel."""

# -- use cases ----------------------------------------------------------------------------------------------------


def list_queue(
    config: Config,
    db: Database,
    *,
    channel: str | None = None,
    include_all: bool = False,
    limit: int | None = 100,
) -> tuple[list[PostView], int]:
    """Upcoming (or, with ``include_all``, all) posts by time; and how many there are in all."""
    if channel is not None and channel not in config.channel_names:
        with db.read() as session:
            known = repo.channel_summary(session)
        if channel not in known:
            raise InputError(f"unknown channel {channel!r}; {configured(config.channel_names)}")
    statuses = None if include_all else [s.value for s in (Status.QUEUED, Status.PUBLISHING, Status.UNKNOWN)]
    with db.read() as session:
        rows, total = repo.list_posts(session, statuses=statuses, channel=channel, limit=limit or None)
        return [post_view(post, deliveries) for post, deliveries in rows], total


def show_post(db: Database, post_id: int) -> PostView:
    with db.read() as session:
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
        for delivery, data in zip(post.deliveries, view["deliveries"], strict=True):
            data["history"] = [
                {
                    "attempt": a.number,
                    "started_at": iso(a.started_at),
                    "finished_at": iso(a.finished_at),
                    "outcome": a.outcome,
                    "error": a.error,
                    "kind": a.kind,
                }
                for a in delivery.attempt_rows
            ]
        if pools := store_pool.members(session, post_id):
            view["pool"] = pools
        return view


def cancel_post(db: Database, post_id: int, now: datetime, channel: str | None = None) -> PostView:
    """Cancel the post's deliveries that have not gone out."""
    return cancel_with_notes(None, db, post_id, now, channel)[0]


def cancel_with_notes(
    config: Config | None, db: Database, post_id: int, now: datetime, channel: str | None = None
) -> tuple[PostView, list[str]]:
    """:func:`cancel_post`, and what the cancel does to the channels' content mix (a cancel is never refused)."""
    notes: list[str] = []
    with db.write() as session:
        post = _get(session, post_id)
        targets = [d for d in post.deliveries if channel is None or d.channel == channel]
        if channel is not None and not targets:
            raise InputError(f"post {post_id} has no delivery on channel {channel!r}")
        for delivery in targets:
            if config is not None and delivery.channel in config.channel_names and delivery.status in ACTIVE:
                notes += placement.cancel_notes(session, config.channel(delivery.channel), delivery, post_id)
        if not repo.cancel_deliveries(session, post_id, now, channel):
            raise StateConflict(f"post {post_id} has nothing to cancel: {_states(targets)}")
        session.expire_all()
        post = _get(session, post_id)
        return post_view(post, post.deliveries), notes


def reschedule_post(
    config: Config,
    db: Database,
    post_id: int,
    at: str | None,
    now: datetime,
    *,
    to_now: bool = False,
    force: bool = False,
) -> PostView:
    """Move the post's queued deliveries to an explicit time (``--at``) or to now.

    A move that breaks a channel's content mix rule is refused unless ``force``; one at or after the post's expiry,
    or too long before it for the network to delete the post then (Telegram: 48 hours), always is.
    """
    if (at is None) == (not to_now):
        raise InputError("give exactly one of --at and --now")
    with db.write() as session:
        post = _get(session, post_id)
        queued = [d for d in post.deliveries if d.status == Status.QUEUED]
        if not queued:
            raise StateConflict(f"post {post_id} has no queued delivery to move: {_states(post.deliveries)}")
        for delivery in queued:
            zone = config.zone_of(delivery.channel)
            when = now if at is None else parse_when(at, zone, now)
            if delivery.delete_at is not None:
                _check_expiry(post_id, delivery, when, zone)
            if not force and delivery.channel in config.channel_names:
                placement.check_move(session, config.channel(delivery.channel), delivery, when, post_id)
            timeline.move_delivery(session, delivery.id, when, now, slotted=False)
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


def _check_expiry(post_id: int, delivery: Delivery, when: datetime, zone: tzinfo) -> None:
    """Refuse moving ``delivery`` to ``when`` where its post's expiry could not be kept: the check of
    ``smm add --expire-at``."""
    from scheduler.expiry import expiry_problems

    assert delivery.delete_at is not None
    name = f"its expiry ({format_local(delivery.delete_at, zone)})"
    plan = [(delivery.channel, delivery.network, when, False)]
    if found := expiry_problems(plan, {delivery.channel: delivery.delete_at}, {delivery.channel: zone}, name):
        raise InputError(f"cannot move post {post_id}: {'; '.join(found)}")


def _refuse_expired(config: Config, post_id: int, deliveries: Sequence[Delivery], now: datetime) -> None:
    """Refuse sending again a delivery whose post expired (``--expire-at``): it would go out, then be deleted."""
    if ended := [d for d in deliveries if d.delete_at is not None and d.delete_at <= now]:
        first = min(ended, key=lambda d: d.delete_at or now)
        assert first.delete_at is not None
        raise StateConflict(
            f"post {post_id} expired ({format_local(first.delete_at, config.zone_of(first.channel))}): it is not "
            "sent again; add it anew with a later --expire-at if it should still go out"
        )


def retry_post(config: Config, db: Database, post_id: int, now: datetime) -> PostView:
    """Re-queue the post's failed and unknown deliveries, due now."""
    with db.write() as session:
        post = _get(session, post_id)
        again = [d for d in post.deliveries if d.status in (Status.FAILED, Status.UNKNOWN)]
        if not again:
            raise StateConflict(
                f"post {post_id} has no failed or unknown delivery to retry: {_states(post.deliveries)}"
            )
        _refuse_expired(config, post_id, again, now)
        ids = [d.id for d in again]
        repo.requeue(session, ids, now, now, "re-queued by an operator (smm retry)")
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


def resolve_post(
    config: Config,
    db: Database,
    post_id: int,
    now: datetime,
    *,
    published: bool,
    url: str | None = None,
    channel: str | None = None,
) -> PostView:
    """Settle the post's ``unknown`` deliveries: it went out (``published``), or send it again."""
    with db.write() as session:
        post = _get(session, post_id)
        unknown = [
            d for d in post.deliveries if d.status == Status.UNKNOWN and (channel is None or d.channel == channel)
        ]
        if not unknown:
            raise StateConflict(f"post {post_id} has no unknown delivery to resolve: {_states(post.deliveries)}")
        if url is not None and len(unknown) > 1:
            raise InputError(
                f"post {post_id} has {len(unknown)} unknown deliveries; name one with --channel to give a URL"
            )
        if url is not None:
            check_link(url, "--url")
        if published:
            for delivery in unknown:
                repo.mark_published_by_hand(session, delivery.id, url, now)
        else:
            _refuse_expired(config, post_id, unknown, now)
            repo.requeue(session, [d.id for d in unknown], now, now, "settled by an operator: send again")
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


# -- views --------------------------------------------------------------------------------------------------------


def _get(session: Session, post_id: int) -> Post:
    post = repo.get_post(session, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post


def _states(deliveries: Sequence[Delivery]) -> str:
    return ", ".join(f"{d.channel} is {d.status}" for d in deliveries) or "it has no deliveries"


class PostExtras(TypedDict):
    """A post's marketing fields."""

    campaign: str | None
    utm_content: str | None
    variants: dict[str, str]


def post_extras(db: Database, post_id: int) -> PostExtras:
    """A post's marketing fields (not part of the post JSON contract): campaign, utm_content, variants."""
    with db.read() as session:
        post = _get(session, post_id)
        return PostExtras(campaign=post.campaign, utm_content=post.utm_content, variants=dict(post.variants or {}))


def mix_lines(
    config: Config, db: Database, now: datetime, *, channel: str | None = None, every: bool = False
) -> list[str]:
    """The content mix of each channel's upcoming queue: those with commercial posts (``every``: all channels).

    ``"vk-news: 3 educational, 1 commercial (25%), rule: at most 50% of any 4"``, and where the rule is broken;
    over the next :data:`MIX_HORIZON` deliveries at most, so that a huge queue is never loaded.
    """
    lines: list[str] = []
    statuses = [s.value for s in ACTIVE]
    with db.read() as session:
        for conf in config.channels:
            if channel is not None and conf.name != channel:
                continue
            upcoming = repo.upcoming_categories(session, conf.name, statuses, MIX_HORIZON + 1)
            scope = f" (the next {MIX_HORIZON})" if len(upcoming) > MIX_HORIZON else ""
            upcoming = upcoming[:MIX_HORIZON]
            counts: dict[str, int] = {}
            for _, category in upcoming:
                counts[category] = counts.get(category, 0) + 1
            if not counts or not (every or counts.get(mix.COMMERCIAL)):
                continue
            line = f"{conf.name}{scope}: {mix.summary(counts, conf.mix, CATEGORIES)}"
            if conf.mix.enabled:
                history = timeline.mix_before(session, conf.name, upcoming[0][0], conf.mix.window - 1)
                times = [e.due_at for e in history] + [due for due, _ in upcoming]
                flags = [e.commercial for e in history] + [c == mix.COMMERCIAL for _, c in upcoming]
                broken = mix.first_break(flags, conf.mix)
                if broken is not None:
                    start, end, count = broken
                    line += (
                        f"; BROKEN: {count} commercial in {end - start + 1} consecutive deliveries up to "
                        f"{placement.local(times[end], conf)}"
                    )
            lines.append(line)
    return lines


def queue_notes(config: Config, db: Database) -> list[str]:
    """What an operator looking at the queue should know: channels needing attention, unknown channels."""
    notes: list[str] = []
    with db.read() as session:
        for channel, reason in sorted(repo.attention(session).items()):
            notes.append(f"channel {channel!r} needs attention: {reason}")
        for channel, counts in sorted(repo.channel_summary(session).items()):
            waiting = counts.get(Status.QUEUED, 0) + counts.get(Status.UNKNOWN, 0)
            if channel not in config.channel_names and waiting:
                waits = plural(waiting, "delivery waits", "deliveries wait")
                notes.append(f"{waits} on channel {channel!r}, which is not in {config.path.name}")
            if counts.get(Status.UNKNOWN):
                notes.append(
                    f"channel {channel!r}: {plural(counts[Status.UNKNOWN], 'delivery', 'deliveries')} in doubt: "
                    "check the channel, then "
                    "`smm resolve ID --published` or `--retry`"
                )
    return notes
