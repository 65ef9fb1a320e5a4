"""The use cases behind the CLI: queue a post, list the queue, show, cancel, reschedule, retry, resolve.

Each function takes the configuration, the database and ``now`` (aware UTC), validates everything before it writes,
and writes in one short transaction. Invalid input raises :class:`~scheduler.errors.InputError` and leaves the
database and the media store as they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scheduler import mix, placement
from scheduler import repository as repo
from scheduler.config import CATEGORIES, NETWORKS, ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError, NotFound, StateConflict
from scheduler.media import MediaStore, StoredMedia, inspect
from scheduler.models import ACTIVE, Delivery, Post, Status
from scheduler.render import PostContent, problems
from scheduler.slots import local_to_utc

MAX_LINK = 2048
MAX_TAG = 128
MIX_HORIZON = 1000
"""``smm queue`` shows the content mix of at most this many upcoming deliveries per channel."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINK = re.compile(r"https?://[^/?#\s]+\S*", re.IGNORECASE)
"""An http(s) URL with a host and no whitespace (what ``urlsplit`` accepted, without its cost in bulk imports)."""


@dataclass(frozen=True)
class NewPost:
    """What ``smm add`` asks for."""

    text: str
    channels: Sequence[str] = ()
    media: Sequence[Path] = ()
    link: str | None = None
    at: str | None = None
    now: bool = False
    next: bool = False
    category: str = "educational"
    extra: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None
    """``utm_campaign`` of the post's links (else the channel's)."""
    utm_content: str | None = None
    variants: Mapping[str, str] = field(default_factory=dict)
    """Per-network texts: ``{"telegram": "..."}`` (``--text-for``)."""
    force: bool = False
    """Place the post even where it breaks the content mix rule."""


# -- input checks -------------------------------------------------------------------------------------------------


def check_text(text: str) -> str:
    """Refuse text that no network should receive: NUL and other control characters, broken Unicode."""
    if "\x00" in text:
        raise InputError("the text contains a NUL byte")
    bad = _CONTROL.search(text)
    if bad:
        raise InputError(
            f"the text contains the control character U+{ord(bad.group()):04X} at position {bad.start() + 1}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"the text is not valid Unicode at position {exc.start + 1}") from None
    return text


def check_link(link: str | None) -> str | None:
    if link is None:
        return None
    link = link.strip()
    if len(link) > MAX_LINK:
        raise InputError(f"--link is {len(link)} characters long; at most {MAX_LINK}")
    if not _LINK.fullmatch(link):
        raise InputError(f"--link {link!r} is not an http(s) URL")
    if "[" in link:  # an IPv6 host: let urlsplit judge its brackets
        try:
            urlsplit(link)
        except ValueError:
            raise InputError(f"--link {link!r} is not an http(s) URL") from None
    return link


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise InputError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    return category


def check_tag(value: str | None, what: str) -> str | None:
    """A campaign or utm_content value: non-empty, one line, at most 128 characters (None stays None)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise InputError(f"{what} is empty")
    if _CONTROL.search(value) or "\n" in value or "\r" in value or "\t" in value:
        raise InputError(f"{what} {value!r} must be one line without control characters")
    if len(value) > MAX_TAG:
        raise InputError(f"{what} is {len(value)} characters long; at most {MAX_TAG}")
    return value


def check_variants(variants: Mapping[str, str], channels: Sequence[ChannelConfig]) -> dict[str, str]:
    """Per-network texts: a known network among the post's channels, with text that passes :func:`check_text`."""
    networks = {c.network for c in channels}
    checked: dict[str, str] = {}
    for network, text in variants.items():
        if network not in NETWORKS:
            raise InputError(f"--text-for {network!r}: not a network; use one of {', '.join(NETWORKS)}")
        if network not in networks:
            raise InputError(f"--text-for {network}: the post goes to no {network} channel")
        if not text.strip():
            raise InputError(f"--text-for {network}: the text is empty")
        try:
            checked[network] = check_text(text)
        except InputError as exc:
            raise InputError(f"--text-for {network}: {exc}") from None
    return checked


def parse_variants(values: Sequence[str]) -> dict[str, str]:
    """``["telegram=Hi", ...]`` (``--text-for NETWORK=TEXT``) as a dict; a network given twice is an error."""
    variants: dict[str, str] = {}
    for value in values:
        network, sep, text = value.partition("=")
        network = network.strip().lower()
        if not sep or not network:
            raise InputError(f"--text-for {value[:40]!r}: write NETWORK=TEXT, e.g. --text-for telegram='Hello'")
        if network in variants:
            raise InputError(f"--text-for {network} is given twice")
        variants[network] = text
    return variants


def parse_when(value: str, zone: Any, now: datetime) -> datetime:
    """An ISO 8601 date-time; without an offset it is read in ``zone``. Must be in the future."""
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"--at {value!r} is not an ISO 8601 date-time such as 2026-12-01T10:00 or 2026-12-01T10:00+03:00"
        ) from None
    if len(raw) <= 10:
        raise InputError(f"--at {value!r} has no time of day; give one, e.g. {raw}T10:00")
    try:
        when = local_to_utc(parsed, zone, strict=True)
    except ValueError as exc:
        raise InputError(f"--at {value!r}: {exc}") from None
    if when <= now:
        raise InputError(f"--at {value!r} is in the past (now is {now.astimezone(zone):%Y-%m-%d %H:%M %Z})")
    return when


def pick_channels(config: Config, names: Sequence[str]) -> list[ChannelConfig]:
    if not config.channels:
        raise InputError(f"no channels are configured in {config.path}: add a [[channels]] table")
    if not names:
        return list(config.channels)
    picked: list[ChannelConfig] = []
    for name in names:
        try:
            channel = config.channel(name)
        except KeyError:
            raise InputError(f"unknown channel {name!r}; configured: {', '.join(config.channel_names)}") from None
        if channel not in picked:
            picked.append(channel)
    return picked


# -- use cases ----------------------------------------------------------------------------------------------------


def add_post(config: Config, db: Database, request: NewPost, now: datetime) -> dict[str, Any]:
    """Validate and queue a post on its channels; returns the post as JSON-ready data."""
    modes = sum((request.at is not None, request.now, request.next))
    if modes > 1:
        raise InputError("give at most one of --at, --now and --next")
    text = check_text(request.text)
    link = check_link(request.link)
    category = check_category(request.category)
    campaign = check_tag(request.campaign, "--campaign")
    utm_content = check_tag(request.utm_content, "--utm-content")
    channels = pick_channels(config, request.channels)
    variants = check_variants(request.variants, channels)
    inspected = []
    for path in request.media:
        info, size = inspect(path)
        inspected.append(StoredMedia("0" * 64, path.name, info.mime, size, info.width, info.height))
    content = PostContent(
        text=text,
        link=link,
        media=tuple(inspected),
        category=category,
        extra=request.extra,
        campaign=campaign,
        utm_content=utm_content,
        variants=variants,
    )
    found = [p for channel in channels for p in problems(content, channel, config.media_dir)]
    if found:
        raise InputError("; ".join(found))
    explicit: dict[str, datetime] = {}
    if request.at is not None:
        explicit = {c.name: parse_when(request.at, c.timezone, now) for c in channels}
    if category == mix.COMMERCIAL and not request.force:
        closed = [c.name for c in channels if c.mix.enabled and c.mix.limit == 0]
        if closed:
            raise InputError(
                f"the content mix rule of {', '.join(map(repr, closed))} allows no commercial post (share 0); "
                "give --force to queue it anyway"
            )

    with db.write() as session:
        # Always in the same order, so two adds naming the same channels in another order cannot deadlock.
        for name in sorted(c.name for c in channels):
            repo.lock_channel(session, name)
        plan = _plan(session, channels, request, category, explicit, now)
        store = MediaStore(config.media_dir)
        stored = [store.add(path).as_dict() for path in request.media]
        post = repo.add_post(
            session,
            text=text,
            link=link,
            category=category,
            media=stored,
            now=now,
            deliveries=plan,
            campaign=campaign,
            utm_content=utm_content,
            variants=variants,
        )
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


def _plan(
    session: Any,
    channels: Sequence[ChannelConfig],
    request: NewPost,
    category: str,
    explicit: Mapping[str, datetime],
    now: datetime,
) -> list[tuple[str, str, datetime, bool]]:
    """Each channel's delivery ``(channel, network, due_at, slotted)``; every mix refusal in one InputError."""
    plan: list[tuple[str, str, datetime, bool]] = []
    refused: list[str] = []
    check = category == mix.COMMERCIAL and not request.force
    for channel in channels:
        try:
            if request.now or request.at is not None:
                when = now if request.now else explicit[channel.name]
                if check:
                    placement.check_explicit(session, channel, when, category, now)
                plan.append((channel.name, channel.network, when, False))
            elif request.next:
                when = placement.next_slot(session, channel, now, category, force=request.force)
                plan.append((channel.name, channel.network, when, True))
            else:
                when = placement.slot_for(session, channel, now, "" if request.force else category)
                plan.append((channel.name, channel.network, when, True))
        except InputError as exc:
            refused.append(str(exc))
    if refused:
        raise InputError("; ".join(refused))
    return plan


def list_queue(
    config: Config,
    db: Database,
    *,
    channel: str | None = None,
    include_all: bool = False,
    limit: int | None = 100,
) -> tuple[list[dict[str, Any]], int]:
    """Upcoming (or, with ``include_all``, all) posts by time; and how many there are in all."""
    if channel is not None and channel not in config.channel_names:
        with db.read() as session:
            known = repo.channel_summary(session)
        if channel not in known:
            raise InputError(f"unknown channel {channel!r}; configured: {', '.join(config.channel_names)}")
    statuses = None if include_all else [s.value for s in (Status.QUEUED, Status.PUBLISHING, Status.UNKNOWN)]
    with db.read() as session:
        rows, total = repo.list_posts(session, statuses=statuses, channel=channel, limit=limit or None)
        return [post_view(post, deliveries) for post, deliveries in rows], total


def show_post(db: Database, post_id: int) -> dict[str, Any]:
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
                }
                for a in delivery.attempt_rows
            ]
        return view


def cancel_post(db: Database, post_id: int, now: datetime, channel: str | None = None) -> dict[str, Any]:
    """Cancel the post's deliveries that have not gone out."""
    return cancel_with_notes(None, db, post_id, now, channel)[0]


def cancel_with_notes(
    config: Config | None, db: Database, post_id: int, now: datetime, channel: str | None = None
) -> tuple[dict[str, Any], list[str]]:
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
) -> dict[str, Any]:
    """Move the post's queued deliveries to an explicit time (``--at``) or to now.

    A move that breaks a channel's content mix rule is refused unless ``force``.
    """
    if (at is None) == (not to_now):
        raise InputError("give exactly one of --at and --now")
    with db.write() as session:
        post = _get(session, post_id)
        queued = [d for d in post.deliveries if d.status == Status.QUEUED]
        if not queued:
            raise StateConflict(f"post {post_id} has no queued delivery to move: {_states(post.deliveries)}")
        for delivery in queued:
            when = now
            if at is not None:
                zone = config.channel(delivery.channel).timezone if delivery.channel in config.channel_names else UTC
                when = parse_when(at, zone, now)
            if not force and delivery.channel in config.channel_names:
                placement.check_move(session, config.channel(delivery.channel), delivery, when, post_id)
            repo.move_delivery(session, delivery, when, now, slotted=False)
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


def retry_post(db: Database, post_id: int, now: datetime) -> dict[str, Any]:
    """Re-queue the post's failed and unknown deliveries, due now."""
    with db.write() as session:
        post = _get(session, post_id)
        ids = [d.id for d in post.deliveries if d.status in (Status.FAILED, Status.UNKNOWN)]
        if not ids:
            raise StateConflict(
                f"post {post_id} has no failed or unknown delivery to retry: {_states(post.deliveries)}"
            )
        repo.requeue(session, ids, now, now, "re-queued by an operator (smm retry)")
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


def resolve_post(
    db: Database,
    post_id: int,
    now: datetime,
    *,
    published: bool,
    url: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
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
            check_link(url)
        if published:
            for delivery in unknown:
                repo.mark_published_by_hand(session, delivery.id, url, now)
        else:
            repo.requeue(session, [d.id for d in unknown], now, now, "settled by an operator: send again")
        session.expire_all()
        post = _get(session, post_id)
        view = post_view(post, post.deliveries)
    db.wake_daemon()
    return view


# -- views --------------------------------------------------------------------------------------------------------


def _get(session: Any, post_id: int) -> Post:
    post = repo.get_post(session, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post


def _states(deliveries: Sequence[Delivery]) -> str:
    return ", ".join(f"{d.channel} is {d.status}" for d in deliveries) or "it has no deliveries"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def delivery_view(d: Delivery) -> dict[str, Any]:
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
        "next_attempt_at": iso(d.next_attempt_at) if d.status == Status.QUEUED else None,
        "note": d.note,
        "network_scheduled_at": iso(d.native_at) if d.native_id and d.native_at else None,
    }


def post_view(post: Post, deliveries: Sequence[Delivery]) -> dict[str, Any]:
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


def post_extras(db: Database, post_id: int) -> dict[str, Any]:
    """A post's marketing fields (not part of the post JSON contract): campaign, utm_content, variants."""
    with db.read() as session:
        post = _get(session, post_id)
        return {"campaign": post.campaign, "utm_content": post.utm_content, "variants": dict(post.variants or {})}


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
                history = repo.mix_before(session, conf.name, upcoming[0][0], conf.mix.window - 1)
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
                notes.append(f"{waiting} deliveries wait on channel {channel!r}, which is not in {config.path.name}")
            if counts.get(Status.UNKNOWN):
                notes.append(
                    f"channel {channel!r}: {counts[Status.UNKNOWN]} deliveries in doubt: check the channel, then "
                    "`smm resolve ID --published` or `--retry`"
                )
    return notes
