"""Reading a feed's document: RSS or Atom parsed by feedparser into :class:`Entry` values with plain-text fields.

:func:`parse` returns the feed's title and its entries oldest first, relative links resolved against the feed's
URL, the first entry of each id kept; a document that is not a feed with entries (an HTML page, with the feed it
names if any) is one clear :class:`~scheduler.feed_fetch.FeedError`. Titles, summaries and authors lose their HTML
tags and entities; a summary is cut at a word. What happens to the entries is :mod:`scheduler.feeds`'s business.
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from scheduler.errors import InputError
from scheduler.feed_fetch import FeedError, Fetched, is_url
from scheduler.intake import check_link

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)?[^>]*>")
#: Tags that break a line when shown: they leave a space; the others (a, b, span ...) leave nothing.
_BLOCK_TAG = re.compile(
    r"address|article|aside|blockquote|br|caption|d[dlt]|details|dialog|div|fieldset|figcaption|figure|footer|form"
    r"|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|summary|table|t[dhr]|tbody|tfoot|thead|ul",
    re.IGNORECASE,
)
_FEED_TYPES = ("application/rss+xml", "application/atom+xml")
log = logging.getLogger("smm.feeds")


@dataclass(frozen=True)
class Entry:
    """One feed entry, with plain-text values."""

    id: str
    title: str
    summary: str
    link: str | None
    author: str
    published: datetime | None


def parse(fetched: Fetched, source: str, max_summary: int = 600) -> tuple[str, list[Entry]]:
    """The feed's title and its entries, oldest first; FeedError when it is not a feed with entries."""
    import feedparser

    data = fetched.data or b""
    if not data.strip():
        raise FeedError(f"{source}: empty, not a feed")
    headers = {"content-type": fetched.content_type}
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    if not parsed.get("version"):
        head = data[:2048].lstrip().lower()
        if b"<html" in head or b"<!doctype html" in head or "html" in fetched.content_type.lower():
            raise FeedError(f"{source}: an HTML page, not a feed; {_feed_hint(data, fetched.url)}")
        detail = parsed.get("bozo_exception")
        reason = f" ({' '.join(str(detail).split())})" if detail else ""
        raise FeedError(f"{source}: not an RSS or Atom feed{reason}")
    if not parsed.entries:
        raise FeedError(f"{source}: the feed has no entries")
    resolved = parsed.entries
    if fetched.url and any(not is_url(e.get("link") or "http://") for e in parsed.entries):
        # Relative links: read again against the feed's URL (xml:base included). The ids are taken from the first
        # read, as the feed wrote them: feedparser would resolve a relative <guid> too, and entries are remembered
        # by their id.
        again = feedparser.parse(io.BytesIO(data), response_headers=headers | {"content-location": fetched.url})
        if len(again.entries) == len(parsed.entries):
            resolved = again.entries
    title = _plain(parsed.feed.get("title", "")) or source
    entries = _first_of_each_id(
        [_entry(raw, based.get("link"), max_summary) for raw, based in zip(parsed.entries, resolved, strict=True)],
        source,
    )
    if all(e.published is not None for e in entries):
        entries.sort(key=lambda e: e.published or datetime.min.replace(tzinfo=UTC))
    else:
        entries.reverse()  # feeds list the newest first
    return title, entries


def _first_of_each_id(entries: list[Entry], source: str) -> list[Entry]:
    """``entries`` without those whose id an earlier entry of the feed has (said in the log, with ``-v``)."""
    seen: set[str] = set()
    unique: list[Entry] = []
    for entry in entries:
        if entry.id in seen:
            log.debug(
                "%s: %s has the id %r of an earlier entry; the first one is kept", source, entry_label(entry), entry.id
            )
            continue
        seen.add(entry.id)
        unique.append(entry)
    return unique


class _FeedLinks(HTMLParser):
    """An HTML page's ``<base href>`` and the feeds it names (``<link type="application/rss+xml" href=...>``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.feeds: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values: dict[str, str] = {}
        for name, value in attrs:
            values.setdefault(name, (value or "").strip())
        href = values.get("href")
        if not href:
            return
        if tag == "base" and self.base is None:
            self.base = href
        elif tag == "link" and values.get("type", "").split(";")[0].strip().lower() in _FEED_TYPES:
            self.feeds.append(href)


def _feed_hint(data: bytes, page_url: str | None) -> str:
    """What to tell of an HTML page: the absolute URL of the feed it names, or how to find one."""
    links = _FeedLinks()
    links.feed(data[:200_000].decode("utf-8", "replace"))
    links.close()
    if not links.feeds:
        return "give the address of its RSS or Atom feed"
    base = page_url or ""
    if links.base:
        base = urljoin(base, links.base) if base else links.base
    href = urljoin(base, links.feeds[0]) if base else links.feeds[0]
    if is_url(href):
        return f"it names its feed: smm import-feed {href}"
    return f"it names its feed by an address relative to the page's own, {href!r}: give the feed's full URL"


def _tag_gap(found: re.Match[str]) -> str:
    return " " if _BLOCK_TAG.fullmatch(found.group(2) or "") else ""


def _plain(value: str) -> str:
    """Text without HTML tags or entities, its whitespace collapsed (a tag that breaks the line leaves a space)."""
    return " ".join(html.unescape(_TAG.sub(_tag_gap, value or "")).split())


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


def _link(value: Any) -> str | None:
    """An absolute http(s) link, or None."""
    try:
        return check_link(str(value)) if value else None
    except InputError:
        return None


def _published(stamp: Any) -> datetime | None:
    """The entry's date, or None when it has none or one out of range (feedparser gives year 10000 for some)."""
    if not stamp:
        return None
    try:
        return datetime(stamp[0], stamp[1], stamp[2], stamp[3], stamp[4], stamp[5], tzinfo=UTC)
    except (ValueError, TypeError, IndexError):
        return None


def _entry(raw: Any, resolved_link: Any, max_summary: int) -> Entry:
    own_link = _link(raw.get("link"))
    title = _value(raw, "title")
    summary = _shorten(_value(raw, "summary"), max_summary)
    published = _published(raw.get("published_parsed") or raw.get("updated_parsed"))
    # The id as the feed wrote it; without one, its link if absolute as written (as entries were always remembered).
    identity = raw.get("id") or own_link or hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    link = own_link or _link(resolved_link)
    return Entry(str(identity), title, summary, link, _plain(raw.get("author", "")), published)


def entry_label(entry: Entry) -> str:
    """How the log and messages name an entry: by its title, else by its id."""
    return f"entry {entry.title[:60]!r}" if entry.title else f"entry {entry.id[:60]!r}"
