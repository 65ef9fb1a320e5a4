"""``smm plan``: the next deliveries exactly as the channels would receive them, sending nothing.

Each queued delivery is rendered as the daemon will render it (:func:`scheduler.render.render`: the text variant,
UTM-tagged links, hashtags, escaping left as written for the channel's parse mode) and described by its adapter's
:meth:`~adapters.base.Adapter.preview` (which requests, in which order: a Telegram album, then a text message).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TypedDict

from adapters import adapter_class
from scheduler import repository as repo
from scheduler.config import Config
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.render import PostContent, render
from scheduler.timefmt import format_iso, format_local
from scheduler.views import configured


class PlannedMedia(TypedDict):
    """A media file of a planned delivery, named as it was added."""

    name: str
    mime: str
    width: int | None
    height: int | None


class PlanItem(TypedDict):
    """A delivery of ``smm plan --json`` (docs/json.md); keys in their output order."""

    post_id: int
    channel: str
    network: str
    category: str
    due_at: str
    text: str | None
    link: str | None
    media: list[PlannedMedia]
    requests: list[str]
    problems: list[str]


def plan(config: Config, db: Database, *, channel: str | None = None, limit: int | None = 20) -> list[PlanItem]:
    """The next ``limit`` queued deliveries (of ``channel``), rendered, with the requests each would make."""
    if channel is not None and channel not in config.channel_names:
        raise InputError(f"unknown channel {channel!r}; {configured(config.channel_names)}")
    with db.read() as session:
        deliveries = repo.upcoming(session, channel, limit)
        items: list[PlanItem] = []
        for d in deliveries:
            item = PlanItem(
                post_id=d.post_id,
                channel=d.channel,
                network=d.network,
                category=d.post.category,
                due_at=format_iso(d.next_attempt_at or d.due_at),
                text=None,
                link=None,
                media=[],
                requests=[],
                problems=[],
            )
            items.append(item)
            if d.channel not in config.channel_names:
                item["problems"] = [_unknown(d.channel)]
                continue
            conf = config.channel(d.channel)
            content = PostContent.from_post(d.post)
            out = render(content, conf, config.media_dir, key=d.key)
            cls = adapter_class(conf.network)
            # The preview names each file as it was added, not by its name in the media store.
            names = [Path(s.name) for s in content.media]
            named = replace(out, media=tuple(replace(m, path=n) for m, n in zip(out.media, names, strict=True)))
            item["text"], item["link"] = out.text, out.link
            item["media"] = [
                PlannedMedia(name=s.name, mime=s.mime, width=s.width, height=s.height) for s in content.media
            ]
            item["requests"] = cls.preview(named, conf.options)
            item["problems"] = [p.message for p in cls.validate(out, conf.options)]
        return items


def _unknown(channel: str) -> str:
    return f"channel {channel!r} is not in the config: the daemon will not publish it"


def format_plan(items: list[PlanItem], config: Config) -> list[str]:
    """``smm plan`` for people: per delivery a heading, the text as sent, the link, and the numbered requests."""
    if not items:
        return ["nothing is queued"]
    lines: list[str] = []
    for item in items:
        when = format_local(
            datetime.fromisoformat(item["due_at"].replace("Z", "+00:00")), config.zone_of(item["channel"])
        )
        lines.append(f"post {item['post_id']} -> {item['channel']} ({item['network']}, {item['category']}) at {when}")
        if item["text"]:
            lines.extend("  | " + line for line in item["text"].split("\n"))
        if item["link"]:
            lines.append(f"  link: {item['link']}")
        for number, request in enumerate(item["requests"], start=1):
            lines.append(f"  {number}. {request}")
        lines.extend(f"  ! {problem}" for problem in item["problems"])
        lines.append("")
    return lines[:-1]
