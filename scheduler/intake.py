"""Queueing a post: the one validation of a post's content, and ``smm add``'s use case.

:func:`check_post` is every entry point's check of a post (``smm add``, ``smm import``, feeds); its messages name
the fields as the user gave them, through :class:`Names`: ``smm add``'s options or a CSV file's columns. Everything
is validated before anything is written, and the post goes in one short write transaction, placed by
:class:`scheduler.placement.Planner` and written by :func:`scheduler.timeline.insert_posts`. This module works on
SQLAlchemy's Core and never loads the ORM, which ``smm add`` would pay for in start-up time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters import ADAPTERS
from scheduler import mix, timeline
from scheduler.config import CATEGORIES, ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.media import MediaStore, StoredMedia, inspect
from scheduler.placement import Planner
from scheduler.render import PostContent, problems
from scheduler.slots import local_to_utc
from scheduler.timefmt import format_local
from scheduler.toml_table import duration_seconds
from scheduler.views import PostView, configured, post_view

MAX_LINK = 2048
MAX_TAG = 128
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 and C1 control characters but tab and line breaks: terminals act on them (ESC, CSI), networks mangle them."""
_LINK = re.compile(r"https?://[^/?#\s]+\S*", re.IGNORECASE)
"""An http(s) URL with a host and no whitespace (what ``urlsplit`` accepted, without its cost in bulk imports)."""


@dataclass(frozen=True)
class Names:
    """How messages name a post's fields: ``smm add``'s options (:data:`OPTIONS`) or a CSV file's columns
    (:data:`COLUMNS`). ``text_for`` has a ``{network}`` field."""

    at: str
    link: str
    campaign: str
    utm_content: str
    text_for: str
    expire_at: str


OPTIONS = Names("--at", "--link", "--campaign", "--utm-content", "--text-for {network}", "--expire-at")
COLUMNS = Names("at", "link", "campaign", "utm_content", "text_for_{network}", "expire_at")


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
    evergreen: bool = False
    """Put the post into each channel's evergreen pool instead of its queue (``--evergreen``)."""
    expire_at: str | None = None
    """When the daemon deletes the post from every channel (``--expire-at``; read as ``--at`` is)."""


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


def check_link(link: str | None, name: str = OPTIONS.link) -> str | None:
    """An http(s) URL (stripped; None stays None); ``name`` is the field's name in messages."""
    if link is None:
        return None
    link = link.strip()
    if _CONTROL.search(link):
        raise InputError(f"{name} {link!r} contains a control character")
    if len(link) > MAX_LINK:
        raise InputError(f"{name} is {len(link)} characters long; at most {MAX_LINK}")
    if not _LINK.fullmatch(link):
        raise InputError(f"{name} {link!r} is not an http(s) URL")
    if "[" in link:  # an IPv6 host: let urlsplit judge its brackets
        try:
            urlsplit(link)
        except ValueError:
            raise InputError(f"{name} {link!r} is not an http(s) URL") from None
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


def check_variants(
    variants: Mapping[str, str], channels: Sequence[ChannelConfig], name: str = OPTIONS.text_for
) -> dict[str, str]:
    """Per-network texts: a known network among the post's channels, with text that passes :func:`check_text`.

    ``name`` is the field's name in messages, with a ``{network}`` field."""
    networks = {c.network for c in channels}
    checked: dict[str, str] = {}
    for network, text in variants.items():
        field_name = name.format(network=network)
        if network not in ADAPTERS:
            raise InputError(f"{name.format(network=repr(network))}: not a network; use one of {', '.join(ADAPTERS)}")
        if network not in networks:
            raise InputError(f"{field_name}: the post goes to no {network} channel")
        if not text.strip():
            raise InputError(f"{field_name}: the text is empty")
        try:
            checked[network] = check_text(text)
        except InputError as exc:
            raise InputError(f"{field_name}: {exc}") from None
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


def parse_when(value: str, zone: Any, now: datetime, name: str = OPTIONS.at) -> datetime:
    """An ISO 8601 date-time; without an offset it is read in ``zone``. Must be in the future. ``name`` is the
    field's name in messages."""
    when = read_when(value, zone, name)
    if when <= now:
        raise InputError(f"{name} {value!r} is in the past (now is {format_local(now, zone, weekday=False)})")
    return when


def read_when(value: str, zone: Any, name: str) -> datetime:
    """An ISO 8601 date-time, past or future, as an aware UTC time; without an offset it is read in ``zone``.
    ``name`` is the field's name in messages."""
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{name} {value!r} is not an ISO 8601 date-time such as 2026-12-01T10:00 or 2026-12-01T10:00+03:00"
        ) from None
    if len(raw) <= 10:
        raise InputError(f"{name} {value!r} has no time of day; give one, e.g. {raw}T10:00")
    try:
        when = local_to_utc(parsed, zone, strict=True)
    except ValueError as exc:
        raise InputError(f"{name} {value!r}: {exc}") from None
    return when


def read_since(value: str, zone: Any, now: datetime, name: str) -> datetime:
    """A bound of a listing (``smm report --since/--until``, ``smm comments --since``): a duration back from ``now``
    (``2d``, ``12h``), or an ISO 8601 date (its midnight) or date-time, read in ``zone`` without an offset."""
    seconds = duration_seconds(value)
    if seconds is not None:
        return now - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"{name} {value!r} is neither a duration such as 2d or 12h nor an ISO 8601 date such as 2026-12-01"
        ) from None
    return local_to_utc(parsed, zone) if parsed.tzinfo is None else parsed.astimezone(UTC)


def pick_channels(config: Config, names: Sequence[str]) -> list[ChannelConfig]:
    """The channels named (each once, in order), or every channel when none is named."""
    if not config.channels:
        raise InputError(f"no channels are configured in {config.path}: add a [[channels]] table")
    if not names:
        return list(config.channels)
    picked: list[ChannelConfig] = []
    for name in names:
        try:
            channel = config.channel(name)
        except KeyError:
            raise InputError(f"unknown channel {name!r}; {configured(config.channel_names)}") from None
        if channel not in picked:
            picked.append(channel)
    return picked


def check_post(
    config: Config,
    channels: Sequence[ChannelConfig],
    *,
    text: str,
    link: str | None = None,
    category: str = "educational",
    campaign: str | None = None,
    utm_content: str | None = None,
    variants: Mapping[str, str] | None = None,
    media: Sequence[StoredMedia] = (),
    extra: dict[str, Any] | None = None,
    names: Names = OPTIONS,
) -> PostContent:
    """Check a post's content for its ``channels``; returns it as it will be stored (InputError: the problems).

    Every entry point's one validation: the text, link, category, UTM tags and per-network texts, then what each
    channel's network allows (:func:`scheduler.render.problems`). ``names`` names the fields in the messages.
    """
    content = PostContent(
        text=check_text(text),
        link=check_link(link, names.link),
        media=tuple(media),
        category=check_category(category),
        extra=extra or {},
        campaign=check_tag(campaign, names.campaign),
        utm_content=check_tag(utm_content, names.utm_content),
        variants=check_variants(variants, channels, names.text_for) if variants else {},
    )
    found = [p for channel in channels for p in problems(content, channel, config.media_dir)]
    if found:
        raise InputError("; ".join(found))
    return content


# -- queueing -----------------------------------------------------------------------------------------------------


def add_post(config: Config, db: Database, request: NewPost, now: datetime) -> PostView:
    """Validate and queue a post on its channels; returns the post as JSON-ready data."""
    modes = sum((request.at is not None, request.now, request.next))
    if modes > 1:
        raise InputError("give at most one of --at, --now and --next")
    if modes and request.evergreen:
        raise InputError("--evergreen puts the post into the pool, not at a time: leave out --at, --now and --next")
    if request.evergreen and request.expire_at is not None:
        raise InputError("--evergreen puts the post into the pool, to go out again and again: leave out --expire-at")
    channels = pick_channels(config, request.channels)
    inspected = []
    for path in request.media:
        info, size = inspect(path)
        inspected.append(StoredMedia("0" * 64, path.name, info.mime, size, info.width, info.height))
    content = check_post(
        config,
        channels,
        text=request.text,
        link=request.link,
        category=request.category,
        campaign=request.campaign,
        utm_content=request.utm_content,
        variants=request.variants,
        media=inspected,
        extra=request.extra,
    )
    explicit: dict[str, datetime] = {}
    if request.at is not None:
        explicit = {c.name: parse_when(request.at, c.timezone, now) for c in channels}
    expiry: dict[str, datetime] = {}
    if request.expire_at is not None:
        expiry = {c.name: parse_when(request.expire_at, c.timezone, now, OPTIONS.expire_at) for c in channels}
    if content.category == mix.COMMERCIAL and not request.force:
        closed = [c.name for c in channels if c.mix.enabled and c.mix.limit == 0]
        if closed:
            raise InputError(
                f"the content mix rule of {', '.join(map(repr, closed))} allows no commercial post (share 0); "
                "give --force to queue it anyway"
            )

    store = MediaStore(config.media_dir)
    if request.media:
        store.sweep(now)
    # The copies are made before the write transaction (a big file takes a while) and put in place within it.
    with store.staging():
        stored = [store.stage(path, item).as_dict() for path, item in zip(request.media, inspected, strict=True)]
        with db.write_core() as conn:
            # Always in the same order, so two adds naming the same channels in another order cannot deadlock.
            for name in sorted(c.name for c in channels):
                timeline.lock_channel(conn, name)
            plan = [] if request.evergreen else _plan(conn, channels, request, content.category, explicit, now)
            zones = {c.name: c.timezone for c in channels}
            if expiry:
                from scheduler.expiry import expiry_problems

                if found := expiry_problems(plan, expiry, zones, OPTIONS.expire_at):
                    raise InputError("; ".join(found))
            post_id = timeline.insert_post(
                conn,
                text=content.text,
                link=content.link,
                category=content.category,
                media=stored,
                now=now,
                plan=plan,
                campaign=content.campaign,
                utm_content=content.utm_content,
                variants=content.variants,
                pool=[c.name for c in channels] if request.evergreen else (),
                expiry=expiry or None,
            )
            view = post_view(*timeline.post_rows(conn, post_id))
            if request.evergreen:
                view["pool"] = [c.name for c in channels]
            store.commit()
    db.wake_daemon()
    return view


def _plan(
    conn: timeline.Executor,
    channels: Sequence[ChannelConfig],
    request: NewPost,
    category: str,
    explicit: Mapping[str, datetime],
    now: datetime,
) -> list[tuple[str, str, datetime, bool]]:
    """Each channel's delivery ``(channel, network, due_at, slotted)``; every mix refusal in one InputError."""
    plan: list[tuple[str, str, datetime, bool]] = []
    refused: list[str] = []
    for channel in channels:
        planner = Planner(conn, channel, now)
        try:
            if request.now or request.at is not None:
                when = now if request.now else explicit[channel.name]
                if not request.force:
                    planner.check_explicit(when, category)
                plan.append((channel.name, channel.network, when, False))
            elif request.next:
                plan.append((channel.name, channel.network, planner.push_back(category, force=request.force), True))
            else:
                plan.append((channel.name, channel.network, planner.slot_for(category, force=request.force), True))
        except InputError as exc:
            refused.append(str(exc))
    if refused:
        raise InputError("; ".join(refused))
    return plan
