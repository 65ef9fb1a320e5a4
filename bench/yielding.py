"""What the benchmarks of the daemon's background reads share (``comments_yield``, ``results_yield``): posts
published on a VK fake while the reads go on, timed from their due time to the start of their ``wall.post``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bench.common import Row, ms, percentile
from scheduler.channels import AdapterFactory
from scheduler.config import Config, load_config
from scheduler.daemon.core import Daemon
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.tables import deliveries
from tests.fakes.vk import GROUP_ID, USER_ID, USER_TOKEN, FakeVk

AHEAD = 5.0
"""Seconds ahead of their time the announced posts are queued."""
SPACING = 0.7
"""Seconds between two timed posts."""


def configure(folder: Path, vk: FakeVk, sections: str) -> Config:
    """A config of one VK channel on the fake, a SQLite database in ``folder``, and ``sections`` (TOML)."""
    path = folder / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder}/smm.db"\n\n{sections}\n\n'
        f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = {GROUP_ID}\ntoken_env = "BENCH_VK_TOKEN"\n'
        f'api_url = "{vk.url}"\n'
    )
    os.environ["BENCH_VK_TOKEN"] = USER_TOKEN
    return load_config(path)


def seed(config: Config, vk: FakeVk, posts: int, ago: timedelta, each: Callable[[int, int], None]) -> None:
    """``posts`` published ``ago`` on the fake and in the database; ``each(index, remote post id)`` after each."""
    db = Database(config.database_url)
    db.check_schema(create=True)
    then = datetime.now(UTC) - ago
    for i in range(posts):
        view = add_post(config, db, NewPost(f"earlier post {i}", at=(then + timedelta(days=30)).isoformat()), then)
        with vk._state:
            remote = vk._m_wall_post(USER_ID, {"owner_id": str(-GROUP_ID), "from_group": "1", "message": view["text"]})
        each(i, remote["post_id"])
        with db.write_core() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.post_id == view["id"])
                .values(status="published", remote_id=str(remote["post_id"]), published_at=then, next_attempt_at=None)
            )
    db.dispose()


async def start_daemon(config: Config) -> tuple[Daemon, asyncio.Task[int]]:
    """The daemon running in this process (its ``main`` as a task), once its channels are up."""
    daemon = Daemon(config, Database(config.database_url), AdapterFactory(), load=lambda: config)
    main = asyncio.create_task(daemon.main())
    while daemon.timer.scheduler is None or not daemon.rt.adapters:
        await asyncio.sleep(0.05)
    return daemon, main


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


def lateness_rows(
    alone: tuple[list[float], list[float]], during: tuple[list[float], list[float]], what: str
) -> list[Row]:
    """The rows of the posts' lateness (due now, and queued ahead) alone and ``during`` the reads (``what``): a
    post due now may wait one VK request slot (0.35 s) more, one queued ahead not at all (50 ms of noise)."""
    (alone_now, alone_ahead), (now, ahead) = alone, during
    return [
        Row("posts due now, alone", summary(alone_now)),
        Row(
            f"posts due now, during {what}",
            summary(now),
            "at most one VK slot (0.35 s)",
            max(now) <= max(alone_now) + 0.35 + 0.05,
        ),
        Row(f"posts queued {AHEAD:g} s ahead, alone", summary(alone_ahead)),
        Row(
            f"posts queued {AHEAD:g} s ahead, during {what}",
            summary(ahead),
            "not delayed (+<= 50 ms)",
            max(ahead) - max(alone_ahead) <= 0.05,
        ),
    ]


def busiest_row(*busiest: int) -> Row:
    """The most VK requests in any second of the runs, against VK's 3 a second."""
    return Row("most VK requests in any 1 s (both runs)", f"{max(busiest)}", "<= 3", max(busiest) <= 3)
