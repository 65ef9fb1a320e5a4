"""The ``[[feeds]]`` tables of the configuration: :class:`FeedConfig` and its validation (:func:`read_feeds`).

Used by :mod:`scheduler.config`; every error is one line naming the file and the key.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.channel import show
from scheduler.errors import ConfigError
from scheduler.mix import CATEGORIES
from scheduler.toml_table import Table
from scheduler.views import configured

DEFAULT_FEED_TEMPLATE = "{title}\n\n{summary}"
FEED_FIELDS = ("title", "summary", "link", "author", "published", "feed")


@dataclass(frozen=True)
class FeedConfig:
    """An RSS or Atom feed whose new entries are queued as posts (``[[feeds]]``)."""

    name: str
    url: str
    """An http(s) URL, or an absolute path to a file."""
    template: str = DEFAULT_FEED_TEMPLATE
    """The post's text; placeholders {title}, {summary}, {link}, {author}, {published}, {feed}."""
    channels: tuple[str, ...] = ()
    """Target channels; empty: every channel."""
    category: str = "educational"
    campaign: str | None = None
    interval: float = 3600.0
    """Seconds between two polls by the daemon."""
    max_summary: int = 600
    """Longest {summary}, in characters (cut at a word, with an ellipsis)."""
    timeout: float = 30.0

    @property
    def is_url(self) -> bool:
        return self.url.startswith(("http://", "https://"))


def read_feeds(root: Table, label: str, channel_names: tuple[str, ...], config_dir: Path) -> tuple[FeedConfig, ...]:
    """The ``[[feeds]]`` of the config's top-level table ``root``, each checked, their names unique."""
    raw_feeds = root.get("feeds")
    if not isinstance(raw_feeds, list):
        raise root.error("feeds", "must be an array of tables: [[feeds]]")
    feeds: list[FeedConfig] = []
    for i, entry in enumerate(raw_feeds):
        feed = _feed(entry, i, label, channel_names, config_dir)
        if any(f.name == feed.name for f in feeds):
            raise ConfigError(f"{label}: feeds[{i}].name: {show(feed.name)} is already the name of another feed")
        feeds.append(feed)
    return tuple(feeds)


def _feed(entry: Any, index: int, label: str, channel_names: tuple[str, ...], config_dir: Path) -> FeedConfig:
    t = Table(label, f"feeds[{index}].", entry)
    name = t.name("name")
    url = t.string("url", required=True)
    assert url is not None
    if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
            raise t.error("url", f"{show(url)} is not an http(s) URL or a file path")
    elif not Path(url).is_absolute():
        url = str((config_dir / url).resolve())
    template = t.string("template", DEFAULT_FEED_TEMPLATE)
    assert template is not None
    _check_template(t, template)
    channels = t.strings("channels")
    for channel in channels:
        if channel not in channel_names:
            raise t.error("channels", f"{show(channel)} is not a channel; {configured(channel_names)}")
    category = t.choice("category", CATEGORIES, "educational") or "educational"
    campaign = t.string("campaign")
    interval = t.duration("interval", 3600)
    if interval < 60:
        raise t.error("interval", f"{interval:g} seconds is too often to poll a feed; at least 60 seconds")
    max_summary = t.whole("max_summary", 600, minimum=1)
    timeout = t.duration("timeout", 30)
    t.finish()
    return FeedConfig(
        name=name,
        url=url,
        template=template,
        channels=tuple(dict.fromkeys(channels)),
        category=category,
        campaign=campaign,
        interval=interval,
        max_summary=max_summary,
        timeout=timeout,
    )


def _check_template(t: Table, template: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise t.error(
            "template", f"{show(template)} is not a template: {exc} (write {{{{ and }}}} for braces)"
        ) from None
    for name in fields:
        if name not in FEED_FIELDS:
            allowed = ", ".join(f"{{{f}}}" for f in FEED_FIELDS)
            raise t.error("template", f"{{{name}}} is not a placeholder; use {allowed}")
