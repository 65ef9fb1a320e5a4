"""What the benchmarks of the daemon's background reads share (``comments_yield``, ``results_yield``): posts
published on a VK fake while the reads go on, timed from their due time to the start of their ``wall.post``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bench.common import ms, percentile
from scheduler.config import Config
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from tests.fakes.vk import FakeVk

AHEAD = 5.0
"""Seconds ahead of their time the announced posts are queued."""
SPACING = 0.7
"""Seconds between two timed posts."""


async def timed_posts(
    config: Config, writer: Database, vk: FakeVk, timed: int, label: str
) -> tuple[list[float], list[float]]:
    """Queue ``timed`` posts due now (``smm add --now``: nothing announced them) and ``timed`` due ``AHEAD`` seconds
    after they are queued, one every ``SPACING`` seconds, each waited for at the fake; their lateness, in seconds."""
    now_late: list[float] = []
    ahead_late: list[float] = []
    for i in range(timed):
        for kind, late in (("now", now_late), ("ahead", ahead_late)):
            text = f"timed post {i} ({kind}, {label})"
            due = datetime.now(UTC) + timedelta(seconds=AHEAD if kind == "ahead" else 0)
            request = NewPost(text, now=kind == "now", at=None if kind == "now" else due.isoformat())
            await asyncio.to_thread(add_post, config, writer, request, datetime.now(UTC))
            sent = await sent_at(vk, text)
            late.append(sent - due.timestamp())
            await asyncio.sleep(SPACING)
    return now_late, ahead_late


async def sent_at(vk: FakeVk, text: str, timeout: float = 60.0) -> float:
    """When the fake received the ``wall.post`` of ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in vk.calls("wall.post"):
            if request.params.get("message") == text:
                return request.received_at
        await asyncio.sleep(0.005)
    raise TimeoutError(f"{text!r} was not published within {timeout:g} s")


def busiest_second(vk: FakeVk) -> int:
    """The most API requests the fake received in any 1-second window."""
    stamps = sorted(r.received_at for r in vk.requests if r.path.startswith("/method/"))
    return max((len([s for s in stamps if t <= s < t + 1.0]) for t in stamps), default=0)


def summary(late: list[float]) -> str:
    return f"p50 {ms(percentile(late, 50))}, max {ms(max(late))}"
