"""Feed import: each new entry of an RSS or Atom feed becomes a post in the cadence, once.

``smm import-feed URL|FILE [--feed NAME]`` reads a feed now; :func:`poll_feeds` is what the daemon calls to read the
configured ``[[feeds]]`` when their interval has passed. Entries are remembered by their id in ``feed_entries``
(per feed: its name in the config, else its URL or file), in the same transaction as the posts they became, so an
entry is queued once whatever happens in between. New entries go into the cadence oldest first, as the feed's
template (``{title}``, ``{summary}``, ``{link}``, ``{author}``, ``{published}``, ``{feed}``) plus the entry's link.
Values put into the template are made plain (no HTML) and, for Telegram channels with a parse mode, escaped for it
(as the post's Telegram text variant).

Feeds are read by :mod:`scheduler.feed_fetch` (httpx, imported there and never by ``smm add``) within one deadline,
a size cap and with conditional requests (ETag, Last-Modified); parsed by :mod:`scheduler.feed_parse` (feedparser),
relative links resolved against the feed's URL. A feed that cannot be fetched, is not a feed, is an HTML page or has
no entries is one clear error. Within one feed, the first entry with an id wins over later ones with the same id.
One read queues at most :data:`MAX_NEW_ENTRIES` entries (the rest wait for the next read), written in transactions
of at most :data:`BATCH_ENTRIES`, so that a huge feed never locks others out of the database for long.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from adapters import adapter_class
from adapters.telegram_markup import escape
from scheduler import repository as repo
from scheduler import timeline
from scheduler.config import ChannelConfig, Config
from scheduler.config_feeds import FeedConfig
from scheduler.db import Database
from scheduler.errors import InputError, SmmError
from scheduler.feed_fetch import FeedError, Fetched, Request, fetch, fetch_all, is_url
from scheduler.feed_parse import Entry, entry_label, parse
from scheduler.intake import check_post
from scheduler.models import FeedState
from scheduler.placement import Planner
from scheduler.render import PostContent
from scheduler.store import feeds as feed_states
from scheduler.views import plural, some_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["FeedError", "FeedResult", "import_feed", "next_poll", "parse", "poll_feeds", "queue_entries"]

MAX_NEW_ENTRIES = 500
"""The most entries one read of a feed queues; the others are queued by the next reads, oldest first."""
BATCH_ENTRIES = 100
"""The most entries written in one transaction."""
_KEYS_PER_QUERY = 500
_BLANK_LINES = re.compile(r"\n{3,}")
log = logging.getLogger("smm.feeds")


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
    later: int = 0
    """New entries past :data:`MAX_NEW_ENTRIES`, left for the next reads."""
    not_modified: bool = False

    def lines(self) -> list[str]:
        """One line for the log or the terminal, then one per entry that needs a person's attention."""
        name = f"feed {self.feed!r}"
        if self.not_modified:
            return [f"{name}: not modified since the last poll"]
        parts = []
        if self.queued:
            ids = some_of([str(post_id) for post_id, _ in self.queued])
            posts = "post" if len(self.queued) == 1 else "posts"
            parts.append(f"{plural(len(self.queued), 'new entry', 'new entries')} queued ({posts} {ids})")
        if self.marked:
            parts.append(f"{plural(self.marked, 'entry', 'entries')} marked as seen without queueing them")
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting for the content mix")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        if self.later:
            more = plural(self.later, "more new entry waits", "more new entries wait")
            parts.append(f"{more} for the next read ({MAX_NEW_ENTRIES} at most a read)")
        if not parts:
            parts.append("nothing new")
        return [f"{name}: {', '.join(parts)} ({self.seen} already seen)"] + [
            f"{name}: {line}" for line in self.waiting + self.rejected
        ]


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
    if not is_url(source):
        source = str(Path(source).resolve())
    for feed in config.feeds:
        if feed.url == source:
            return feed, source, feed.name
    return FeedConfig(name="", url=source), source, feed_key(source)


def _channels(config: Config, feed: FeedConfig) -> list[ChannelConfig]:
    if not config.channels:
        raise InputError(f"no channels are configured in {config.path}: add a [[channels]] table")
    return [config.channel(n) for n in feed.channels] if feed.channels else list(config.channels)


def _content(config: Config, feed: FeedConfig, title: str, entry: Entry, channels: list[ChannelConfig]) -> PostContent:
    """The entry's post, checked as every post is (:func:`scheduler.intake.check_post`)."""
    zone = config.timezone
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

    # A network whose channels take markup gets its own text, escaped for their parse mode.
    modes: dict[str, set[str | None]] = {}
    for channel in channels:
        modes.setdefault(channel.network, set()).add(channel.parse_mode)
    variants: dict[str, str] = {}
    for network, found in modes.items():
        if not found - {None}:
            continue
        if len(found) > 1:
            title = adapter_class(network).title
            raise InputError(
                f"its {title} channels use different parse modes, so one {title} text cannot suit them all: "
                "list the channels of one parse mode in the feed's channels"
            )
        variants[network] = fill(found.pop())
    return check_post(
        config,
        channels,
        text=fill(None),
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
    """Queue the entries not seen before (at most :data:`MAX_NEW_ENTRIES`), and remember each with its post.

    ``strict`` (``smm import-feed``): an entry that cannot be published is an error and nothing is written; otherwise
    (the daemon) it is remembered as rejected, with the reason, and the others go ahead. Entries are written in
    transactions of :data:`BATCH_ENTRIES`; each remembers its entries with their posts, so a read cut short by a
    crash is taken up by the next read without queueing an entry twice.
    """
    channels = _channels(config, feed)
    result = FeedResult(feed.name or key)
    with db.write():
        pass  # a new database gets its schema on its first write: from here on it can be read
    with db.read() as session:
        known = _known(session, key, [_entry_key(e.id) for e in entries])
    fresh = [e for e in entries if _entry_key(e.id) not in known]
    result.seen = len(entries) - len(fresh)
    if not mark_seen and len(fresh) > MAX_NEW_ENTRIES:
        result.later = len(fresh) - MAX_NEW_ENTRIES
        fresh = fresh[:MAX_NEW_ENTRIES]
    prepared: list[tuple[Entry, PostContent | InputError | None]] = []
    for entry in fresh:
        if mark_seen:
            prepared.append((entry, None))
            continue
        try:
            content = _content(config, feed, title, entry, channels)
        except InputError as exc:
            if strict:
                raise FeedError(f"feed {result.feed!r}: {entry_label(entry)}: {exc} (nothing was queued)") from None
            prepared.append((entry, exc))
            continue
        prepared.append((entry, content))
    for start in range(0, len(prepared), BATCH_ENTRIES):
        _write(db, key, channels, feed, prepared[start : start + BATCH_ENTRIES], now, result)
    if result.queued:
        db.wake_daemon()
    return result


def _known(session: Session, key: str, keys: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        known |= repo.feed_entry_keys(session, key, keys[start : start + _KEYS_PER_QUERY])
    return known


def _write(
    db: Database,
    key: str,
    channels: list[ChannelConfig],
    feed: FeedConfig,
    batch: Sequence[tuple[Entry, PostContent | InputError | None]],
    now: datetime,
    result: FeedResult,
) -> None:
    """One transaction: queue and remember ``batch`` (content, why it was rejected, or None to only remember)."""
    with db.write() as session:
        timeline.lock_channel(session, f"feed:{key}")
        # Read again under the feed's lock: another command or daemon may have queued some since.
        known = _known(session, key, [_entry_key(entry.id) for entry, _ in batch])
        for name in sorted(c.name for c in channels):
            timeline.lock_channel(session, name)
        planners = [Planner(session, c, now) for c in channels]
        for entry, content in batch:
            entry_key = _entry_key(entry.id)
            if entry_key in known:
                result.seen += 1
                continue
            if content is None:
                repo.remember_entry(session, key, entry_key, entry.id, entry.title, None, now, "marked seen")
                result.marked += 1
                continue
            if isinstance(content, InputError):
                repo.remember_entry(session, key, entry_key, entry.id, entry.title, None, now, str(content))
                result.rejected.append(f"{entry_label(entry)} rejected: {content}")
                continue
            try:
                slots = [p.find_slot(feed.category) for p in planners]
            except InputError as exc:
                result.waiting.append(f"{entry_label(entry)} waits: {exc}")
                continue
            for planner, when in zip(planners, slots, strict=True):
                planner.take(when, feed.category)
            plan = [(c.name, c.network, when, True) for c, when in zip(channels, slots, strict=True)]
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
            repo.remember_entry(session, key, entry_key, entry.id, entry.title, post_id, now, None)
            result.queued.append((post_id, entry.title))


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
        return feed_states.claim_poll(session, feed.name, timedelta(seconds=feed.interval), now)


def _record(db: Database, feed: FeedConfig, fetched: Fetched | None, error: str | None) -> None:
    validators = (fetched.etag, fetched.modified) if fetched is not None else None
    with db.write() as session:
        feed_states.record_poll(session, feed.name, error, validators)


def poll_feeds(config: Config, db: Database, now: datetime) -> list[str]:
    """Read every configured feed whose interval has passed and queue its new entries; returns log lines.

    For the daemon: call it as often as you like (each feed is read at most once per ``interval``, also across
    several daemons on one database); it blocks while it fetches, so run it in a thread. The feeds are fetched at
    the same time, each within its own timeout. One feed's failure, of whatever kind, never stops the others: it
    becomes a line naming the feed (and the feed's ``last_error``), and the feed is tried again after its interval.
    """
    lines: list[str] = []
    due: list[tuple[FeedConfig, FeedState]] = []
    for feed in config.feeds:
        try:
            state = _claim(db, feed, now)
        except Exception as exc:
            lines.append(_failed(db, feed, exc, None))
            continue
        if state is not None:
            due.append((feed, state))
    fetched_all = fetch_all([Request(f.url, f.timeout, s.etag, s.modified) for f, s in due])
    for (feed, _), fetched in zip(due, fetched_all, strict=True):
        try:
            if isinstance(fetched, Exception):
                raise fetched
            lines.extend(_take(config, db, feed, fetched, now))
        except Exception as exc:
            clear = replace(fetched, etag=None, modified=None) if isinstance(fetched, Fetched) else None
            lines.append(_failed(db, feed, exc, clear))
    return lines


def _take(config: Config, db: Database, feed: FeedConfig, fetched: Fetched, now: datetime) -> list[str]:
    """Queue what a poll of ``feed`` read; its lines."""
    if fetched.data is None:
        _record(db, feed, fetched, None)
        return FeedResult(feed.name, not_modified=True).lines()
    title, entries = parse(fetched, feed.url, feed.max_summary)
    result = queue_entries(config, db, feed, feed.name, title, entries, now, strict=False)
    # Entries left for later are in this version of the feed: without its validators the next poll reads it again.
    rest = result.later or result.waiting
    _record(db, feed, replace(fetched, etag=None, modified=None) if rest else fetched, None)
    return result.lines()


def _failed(db: Database, feed: FeedConfig, exc: Exception, fetched: Fetched | None) -> str:
    """The line for a feed whose poll failed, and its ``last_error`` (when the database takes it)."""
    if isinstance(exc, SmmError):
        message = str(exc)
    else:
        log.debug("feed %r: the poll failed", feed.name, exc_info=exc)
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"unexpected {type(exc).__name__}: {first} (run with -v for the traceback)"
    line = message if message.startswith("feed ") else f"feed {feed.name!r}: {message}"
    try:
        _record(db, feed, fetched, message)
    except Exception:  # the database may be what failed; the line says it
        log.debug("feed %r: the error could not be recorded", feed.name, exc_info=True)
    return line


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
