"""What the ``smm`` commands print on a terminal: a post and its deliveries (:func:`print_post`), times in the
channel's zone, one-line texts, JSON, and the one-line error (:func:`fail`). Everything shown is escaped for the
terminal and redacted."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

import click

from scheduler.config import Config
from scheduler.log import escape_for_terminal, redact
from scheduler.timefmt import format_local
from scheduler.views import DeliveryView, PostView, plural

if TYPE_CHECKING:
    from scheduler.evergreen import PoolEntryView


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"smm: error: {redact(escape_for_terminal(message))}", err=True)
    sys.exit(code)


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def local_time(iso: str | None, channel: str, config: Config) -> str:
    if iso is None:
        return "-"
    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    zone = config.zone_of(channel)
    return format_local(when, zone)


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when_of(delivery: DeliveryView) -> str | None:
    """The time that matters for a delivery: when it went out, or when it will be tried next."""
    if delivery["status"] == "published":
        return delivery["published_at"]
    if delivery["status"] == "deleted":
        return delivery["deleted_at"]
    if delivery["network_scheduled_at"]:
        return delivery["network_scheduled_at"]
    return delivery["next_attempt_at"] or delivery["due_at"]


def print_post(view: PostView, config: Config, heading: str) -> None:
    click.echo(f"{heading} post {view['id']}")
    width = max((len(d["channel"]) for d in view["deliveries"]), default=0)
    for d in view["deliveries"]:
        line = f"  {d['channel']:<{width}}  {d['status']:<10}  {local_time(when_of(d), d['channel'], config)}"
        if d["remote_url"]:
            line += f"  {d['remote_url']}"
        if d["delete_at"] and d["status"] in ("published", "queued"):
            line += f"  (to be deleted at {local_time(d['delete_at'], d['channel'], config)})"
        if d["last_error"]:
            # On a published delivery, what its deletion met.
            line += f"  ({redact(one_line(d['last_error'], 200))})"
        elif d["note"] and d["status"] in ("queued", "cancelled"):
            # Queued: why it waits where it is; cancelled: why smm cancelled it (the post expired, say).
            line += f"  ({one_line(d['note'], 200)})"
        click.echo(escape_for_terminal(line))


def describe_entry(entry: PoolEntryView, config: Config) -> str:
    """A post's place in one channel's pool, for ``smm show``: ``2 uses, last used Tue 2026-11-10 10:00 CET, queued
    fill Tue 2026-11-24 10:00 CET, may be used again Fri 2026-12-04 10:00 CET``."""
    channel = entry["channel"]
    if not entry["uses"]:
        parts = ["never used"]
    else:
        last = entry["last_published"]
        parts = [
            plural(entry["uses"], "use", "uses"),
            f"last used {local_time(last, channel, config)}" if last else "none gone out yet",
        ]
    if entry["queued_fill"]:
        parts.append(f"queued fill {local_time(entry['queued_fill'], channel, config)}")
    if entry["next_use"]:
        parts.append(f"may be used again {local_time(entry['next_use'], channel, config)}")
    return ", ".join(parts)
