"""Feed import: each new entry of an RSS or Atom feed becomes a post in the cadence, once.

``smm import-feed URL|FILE [--feed NAME]`` reads a feed now; :func:`poll_feeds` is what the daemon calls to read the
configured ``[[feeds]]`` when their interval has passed. Entries are remembered by their id in ``feed_entries``
(per feed: its name in the config, else its URL or file), in the same transaction as the posts they became, so an
entry is queued once whatever happens in between. New entries go into the cadence oldest first, as the feed's
template (``{title}``, ``{summary}``, ``{link}``, ``{author}``, ``{published}``, ``{feed}``) plus the entry's link.
Values put into the template are made plain (no HTML) and, for Telegram channels with a parse mode, escaped for it
(as the post's Telegram text variant).

Feeds are fetched with httpx (imported here, never by ``smm add``) with a timeout, a size cap and conditional
requests (ETag, Last-Modified); parsed with feedparser. A feed that cannot be fetched, is not a feed, is an HTML page
or has no entries is one clear error.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.telegram_markup import escape
from scheduler import __version__, placement, timeline
from scheduler import repository as repo
from scheduler.config import ChannelConfig, Config, FeedConfig
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.intake import check_link, check_text
from scheduler.models import FeedState
from scheduler.render import PostContent, problems
from scheduler.views import plural

MAX_FEED_BYTES = 20 * 1024 * 1024
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")
_ALTERNATE = re.compile(
    r"""<link\b[^>]*\btype=["']application/(?:rss|atom)\+xml["'][^>]*>""",
    re.IGNORECASE,
)
_HREF = re.compile(r"""\bhref=["']([^"']+)["']""", re.IGNORECASE)


class FeedError(InputError):
    """The feed cannot be read: unreachable, not a feed, an HTML page, or empty."""


@dataclass(frozen=True)
class Entry:
    """One feed entry, with plain-text values."""

    id: str
    title: str
    summary: str
    link: str | None
    author: str
    published: datetime | None


@dataclass
class Fetched:
    """A feed's document, or ``None`` when the server said it has not changed since the last poll."""

    data: bytes | None
    content_type: str = ""
    etag: str | None = None
    modified: str | None = None


@dataclass
class FeedResult:
    """What one read of a feed did."""

    feed: str
    queued: list[tuple[int, str]] = field(default_factory=list)
    """``(post id, title)`` of each entry queued."""
    seen: int = 0
    """Entries already known."""
    marked: int = 0
    """Entries remembered without being queued (``--mark-seen``)."""
    waiting: list[str] = field(default_factory=list)
    """Entries not queued this time because of the content mix rule (tried again next time)."""
    rejected: list[str] = field(default_factory=list)
    """Entries that cannot be published on a channel (remembered, with the reason, and not tried again)."""
    not_modified: bool = False

    def lines(self) -> list[str]:
        """One line for the log or the terminal, then one per entry that needs a person's attention."""
        name = f"feed {self.feed!r}"
        if self.not_modified:
            return [f"{name}: not modified since the last poll"]
        parts = []
        if self.queued:
            ids = ", ".join(str(post_id) for post_id, _ in self.queued)
            posts = "post" if len(self.queued) == 1 else "posts"
            parts.append(f"{plural(len(self.queued), 'new entry', 'new entries')} queued ({posts} {ids})")
        if self.marked:
            parts.append(f"{plural(self.marked, 'entry', 'entries')} marked as seen without queueing them")
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting for the content mix")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        if not parts:
            parts.append("nothing new")
        return [f"{name}: {', '.join(parts)} ({self.seen} already seen)"] + [
            f"{name}: {line}" for line in self.waiting + self.rejected
        ]


# -- reading a feed -----------------------------------------------------------------------------------------------


def fetch(source: str, *, timeout: float = 30.0, etag: str | None = None, modified: str | None = None) -> Fetched:
    """The document at ``source``: an http(s) URL (conditional on ``etag``/``modified``) or a file."""
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FeedError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise FeedError(f"{source}: is a directory, not a feed") from None
        except OSError as exc:
            raise FeedError(f"{source}: cannot read: {exc.strerror or exc}") from None
        return Fetched(data)
    import httpx

    headers = {
        "User-Agent": f"smm-scheduler/{__version__} (feed import)",
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1",
    }
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    try:
        with httpx.stream("GET", source, headers=headers, timeout=timeout, follow_redirects=True) as response:
            if response.status_code == 304:
                return Fetched(None, etag=etag, modified=modified)
            if response.status_code >= 400:
                raise FeedError(f"{source}: the server answered HTTP {response.status_code} {response.reason_phrase}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedError(f"{source}: larger than {MAX_FEED_BYTES // (1024 * 1024)} MB; not a feed to import")
                chunks.append(chunk)
            return Fetched(
                b"".join(chunks),
                response.headers.get("content-type", ""),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
            )
    except httpx.TimeoutException:
        raise FeedError(f"{source}: no answer within {timeout:g} s; try again later") from None
    except httpx.HTTPError as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise FeedError(f"{source}: cannot fetch: {reason}") from None


def parse(fetched: Fetched, source: str, max_summary: int = 600) -> tuple[str, list[Entry]]:
    """The feed's title and its entries, oldest first; FeedError when it is not a feed with entries."""
    import feedparser

    data = fetched.data or b""
    if not data.strip():
        raise FeedError(f"{source}: empty, not a feed")
    parsed = feedparser.parse(io.BytesIO(data), response_headers={"content-type": fetched.content_type})
    if not parsed.get("version"):
        head = data[:2048].lstrip().lower()
        if b"<html" in head or b"<!doctype html" in head or "html" in fetched.content_type.lower():
            link = _alternate(data, source)
            hint = (
                f"; it names its feed: smm import-feed {link}" if link else "; give the address of its RSS or Atom feed"
            )
            raise FeedError(f"{source}: an HTML page, not a feed{hint}")
        detail = parsed.get("bozo_exception")
        reason = f" ({' '.join(str(detail).split())})" if detail else ""
        raise FeedError(f"{source}: not an RSS or Atom feed{reason}")
    if not parsed.entries:
        raise FeedError(f"{source}: the feed has no entries")
    title = _plain(parsed.feed.get("title", "")) or source
    entries = [_entry(e, max_summary) for e in parsed.entries]
    if all(e.published is not None for e in entries):
        entries.sort(key=lambda e: e.published or datetime.min.replace(tzinfo=UTC))
    else:
        entries.reverse()  # feeds list the newest first
    return title, entries


def _alternate(data: bytes, source: str) -> str | None:
    text = data[:200_000].decode("utf-8", "replace")
    for tag in _ALTERNATE.findall(text):
        href = _HREF.search(tag)
        if href:
            from urllib.parse import urljoin

            return urljoin(source, html.unescape(href.group(1))) if "://" in source else html.unescape(href.group(1))
    return None


def _plain(value: str) -> str:
    """Text without HTML tags or entities, its whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", value or "")).split())


def _value(raw: Any, key: str) -> str:
    """An entry's title or summary as plain text: HTML (as feedparser says it is) without its tags and entities."""
    value = str(raw.get(key) or "")
    detail = raw.get(f"{key}_detail") or {}
    if "html" in str(detail.get("type", "text/html")):
        return _plain(value)
    return " ".join(value.split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def _entry(raw: Any, max_summary: int) -> Entry:
    link = raw.get("link") or None
    try:
        link = check_link(link) if link else None
    except InputError:
        link = None
    title = _value(raw, "title")
    summary = _shorten(_value(raw, "summary"), max_summary)
    stamp = raw.get("published_parsed") or raw.get("updated_parsed")
    published = datetime(stamp[0], stamp[1], stamp[2], stamp[3], stamp[4], stamp[5], tzinfo=UTC) if stamp else None
    identity = raw.get("id") or link or hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return Entry(str(identity), title, summary, link, _plain(raw.get("author", "")), published)


# -- queueing entries ---------------------------------------------------------------------------------------------


def feed_key(name_or_source: str) -> str:
    """How a feed is remembered: its name, or its URL or path (hashed when longer than the column)."""
    if len(name_or_source) <= 255:
        return name_or_source
    return "sha256:" + hashlib.sha256(name_or_source.encode()).hexdigest()


def _entry_key(entry_id: str) -> str:
    return hashlib.sha256(entry_id.encode()).hexdigest()


def resolve(config: Config, source: str | None, name: str | None) -> tuple[FeedConfig, str, str]:
    """The feed's settings, the source to read and the key it is remembered by, for ``smm import-feed``."""
    if name is not None:
        try:
            feed = config.feed(name)
        except KeyError:
            known = ", ".join(f.name for f in config.feeds) or "none"
            raise InputError(f"unknown feed {name!r}; configured: {known}") from None
        return feed, source or feed.url, feed.name
    if source is None:
        raise InputError("give the feed's URL or file, or --feed NAME")
    if not source.startswith(("http://", "https://")):
        source = str(Path(source).resolve())
    for feed in config.feeds:
        if feed.url == source:
            return feed, source, feed.name
    return FeedConfig(name="", url=source), source, feed_key(source)


def _channels(config: Config, feed: FeedConfig) -> list[ChannelConfig]:
    if not config.channels:
        raise InputError(f"no channels are configured in {config.path}: add a [[channels]] table")
    return [config.channel(n) for n in feed.channels] if feed.channels else list(config.channels)


def _content(feed: FeedConfig, title: str, entry: Entry, channels: list[ChannelConfig], zone: Any) -> PostContent:
    values = {
        "title": entry.title,
        "summary": entry.summary,
        "link": entry.link or "",
        "author": entry.author,
        "published": f"{entry.published.astimezone(zone):%Y-%m-%d}" if entry.published else "",
        "feed": title,
    }

    def fill(mode: str | None) -> str:
        text = feed.template.format_map({k: escape(v, mode) for k, v in values.items()})
        return _BLANK_LINES.sub("\n\n", text).strip()

    modes = {c.parse_mode for c in channels if c.network == "telegram"}
    variants: dict[str, str] = {}
    if modes - {None}:
        if len(modes) > 1:
            raise InputError(
                "its Telegram channels use different parse modes, so one Telegram text cannot suit them all: "
                "list the channels of one parse mode in the feed's channels"
            )
        variants["telegram"] = check_text(fill(modes.pop()))
    return PostContent(
        text=check_text(fill(None)),
        link=entry.link,
        category=feed.category,
        campaign=feed.campaign,
        variants=variants,
    )


def queue_entries(
    config: Config,
    db: Database,
    feed: FeedConfig,
    key: str,
    title: str,
    entries: list[Entry],
    now: datetime,
    *,
    strict: bool,
    mark_seen: bool = False,
) -> FeedResult:
    """Queue the entries not seen before, in one transaction; remember each.

    ``strict`` (``smm import-feed``): an entry that cannot be published is an error and nothing is written; otherwise
    (the daemon) it is remembered as rejected, with the reason, and the others go ahead.
    """
    channels = _channels(config, feed)
    result = FeedResult(feed.name or key)
    with db.write() as session:
        timeline.lock_channel(session, f"feed:{key}")
        known = repo.feed_entry_keys(session, key, [_entry_key(e.id) for e in entries])
        fresh = [e for e in entries if _entry_key(e.id) not in known]
        result.seen = len(entries) - len(fresh)
        for name in sorted(c.name for c in channels):
            timeline.lock_channel(session, name)
        for entry in fresh:
            label = f"entry {entry.title[:60]!r}" if entry.title else f"entry {entry.id[:60]!r}"
            if mark_seen:
                repo.remember_entry(session, key, _entry_key(entry.id), entry.id, entry.title, None, now, "marked seen")
                result.marked += 1
                continue
            try:
                content = _content(feed, title, entry, channels, config.timezone)
                found = [p for c in channels for p in problems(content, c, config.media_dir)]
                if found:
                    raise InputError("; ".join(found))
            except InputError as exc:
                if strict:
                    raise FeedError(f"feed {result.feed!r}: {label}: {exc} (nothing was queued)") from None
                repo.remember_entry(session, key, _entry_key(entry.id), entry.id, entry.title, None, now, str(exc))
                result.rejected.append(f"{label} rejected: {exc}")
                continue
            try:
                plan = [(c.name, c.network, placement.slot_for(session, c, now, feed.category), True) for c in channels]
            except InputError as exc:
                result.waiting.append(f"{label} waits: {exc}")
                continue
            post_id = timeline.insert_post(
                session,
                text=content.text,
                link=content.link,
                category=content.category,
                media=[],
                now=now,
                plan=plan,
                campaign=content.campaign,
                variants=dict(content.variants),
            )
            repo.remember_entry(session, key, _entry_key(entry.id), entry.id, entry.title, post_id, now, None)
            result.queued.append((post_id, entry.title))
    if result.queued:
        db.wake_daemon()
    return result


def import_feed(
    config: Config,
    db: Database,
    source: str | None,
    now: datetime,
    *,
    name: str | None = None,
    mark_seen: bool = False,
) -> FeedResult:
    """``smm import-feed``: read a feed now and queue its new entries (all, or none when one is invalid)."""
    feed, where, key = resolve(config, source, name)
    _channels(config, feed)
    fetched = fetch(where, timeout=feed.timeout)
    title, entries = parse(fetched, where, feed.max_summary)
    return queue_entries(config, db, feed, key, title, entries, now, strict=True, mark_seen=mark_seen)


# -- the daemon's polls -------------------------------------------------------------------------------------------


def _claim(db: Database, feed: FeedConfig, now: datetime) -> FeedState | None:
    """The feed's state if its interval has passed (and mark it polled now, so that one daemon polls it)."""
    with db.write() as session:
        timeline.lock_channel(session, f"feed:{feed.name}")
        state = session.get(FeedState, feed.name)
        last = state.polled_at if state is not None else None
        if last is not None and last + timedelta(seconds=feed.interval) > now:
            return None
        if state is None:
            state = FeedState(feed=feed.name)
            session.add(state)
        state.polled_at = now
        session.flush()
        session.expunge(state)
        return state


def _record(db: Database, feed: FeedConfig, fetched: Fetched | None, error: str | None) -> None:
    with db.write() as session:
        state = session.get(FeedState, feed.name)
        if state is None:
            return
        if fetched is not None:
            state.etag, state.modified = fetched.etag, fetched.modified
        state.last_error = error


def poll_feeds(config: Config, db: Database, now: datetime) -> list[str]:
    """Read every configured feed whose interval has passed and queue its new entries; returns log lines.

    For the daemon: call it as often as you like (each feed is read at most once per ``interval``, also across
    several daemons on one database); it blocks while it fetches, so run it in a thread. Errors never raise: they
    become lines (and the feed's ``last_error``), and the feed is tried again after its interval.
    """
    lines: list[str] = []
    for feed in config.feeds:
        state = _claim(db, feed, now)
        if state is None:
            continue
        fetched: Fetched | None = None
        try:
            fetched = fetch(feed.url, timeout=feed.timeout, etag=state.etag, modified=state.modified)
            if fetched.data is None:
                lines.extend(FeedResult(feed.name, not_modified=True).lines())
                _record(db, feed, fetched, None)
                continue
            title, entries = parse(fetched, feed.url, feed.max_summary)
            result = queue_entries(config, db, feed, feed.name, title, entries, now, strict=False)
            lines.extend(result.lines())
            _record(db, feed, fetched, None)
        except InputError as exc:
            message = str(exc)
            lines.append(message if message.startswith("feed ") else f"feed {feed.name!r}: {message}")
            _record(db, feed, replace(fetched, etag=None, modified=None) if fetched else None, message)
    return lines


def next_poll(config: Config, db: Database, now: datetime) -> datetime | None:
    """When :func:`poll_feeds` next has a feed to read (``now`` if one is due), or None without feeds."""
    if not config.feeds:
        return None
    with db.read() as session:
        polled = repo.feed_polls(session)
    due: list[datetime] = []
    for feed in config.feeds:
        last = polled.get(feed.name)
        due.append(now if last is None else last + timedelta(seconds=feed.interval))
    return max(now, min(due))
