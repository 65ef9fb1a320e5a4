"""Reading ahead: one look at the queue serves the due times of the next seconds, until something may change them.

The daemon runs in-process with its clock under the test's control and real outbox channels; each cycle is driven
by hand, as its wake-ups would drive it. Looks at the queue are counted by wrapping ``watch.look``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.base import Quota
from scheduler import store, watch
from scheduler.daemon import READ_AHEAD, Daemon, open_daemon
from scheduler.db import Database
from scheduler.errors import DatabaseError
from scheduler.intake import NewPost, add_post
from scheduler.models import Delivery
from tests.conftest import write_config

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
CHANNELS = ("a", "b", "c")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def daemon(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    body = "".join(f'[[channels]]\nname = "{n}"\nnetwork = "outbox"\npath = "{tmp_path / n}"\n\n' for n in CHANNELS)
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False)
    clock = Clock()
    d = open_daemon(str(config), clock=clock)
    d.rt.db.check_schema()
    d.looks = 0  # type: ignore[attr-defined]
    real_look = watch.look

    def counted(*args: Any, **kwargs: Any) -> Any:
        d.looks += 1  # type: ignore[attr-defined]
        return real_look(*args, **kwargs)

    monkeypatch.setattr(watch, "look", counted)
    d.test_clock = clock  # type: ignore[attr-defined]
    yield d
    d.release()


def queue(d: Daemon, channel: str, at: datetime, text: str) -> None:
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    add_post(d.config, d.rt.db, NewPost(text=text, channels=[channel], at=when), T0 - timedelta(hours=1))


def statuses(db: Database) -> dict[str, str]:
    with db.read() as session:
        return {str(d.post.text): d.status for d in session.scalars(select(Delivery))}


async def cycle_at(d: Daemon, when: datetime) -> None:
    d.test_clock.now = when  # type: ignore[attr-defined]
    await d.cycle()
    while d.workers.tasks:
        await asyncio.gather(*d.workers.tasks.values())


def test_one_look_serves_the_due_times_read_ahead(daemon: Daemon) -> None:
    step = timedelta(milliseconds=100)
    times = [T0 + step * (i + 1) for i in range(12)]
    for channel in CHANNELS:  # on PostgreSQL, taking each channel's lease group makes the next cycle look again
        queue(daemon, channel, T0 + step / 2, f"first on {channel}")
    for i, at in enumerate(times):
        queue(daemon, CHANNELS[i % 3], at, f"post {i}")

    async def scenario() -> None:
        await daemon.startup()
        await cycle_at(daemon, T0)
        await cycle_at(daemon, T0 + step / 2)
        looks = daemon.looks  # type: ignore[attr-defined]
        for at in times:
            await cycle_at(daemon, at)
        # One look read the next 2 s ahead (at T0 on SQLite, on PostgreSQL after the lease groups were taken):
        # the due times after it needed none, until the last one, whose cycle looks again for what comes next.
        assert daemon.looks - looks <= 2  # type: ignore[attr-defined]

    asyncio.run(scenario())
    assert set(statuses(daemon.rt.db).values()) == {"published"}


def test_a_poke_or_a_write_that_may_make_something_due_sooner_ends_the_read_ahead(daemon: Daemon) -> None:
    step = timedelta(milliseconds=100)
    for channel in ("a", "b"):  # on PostgreSQL, taking each channel's lease group makes the next cycle look again
        queue(daemon, channel, T0 + step / 2, f"first on {channel}")
    for i in range(6):
        queue(daemon, "a", T0 + step * (i + 1), f"post {i}")

    async def scenario() -> None:
        await daemon.startup()
        await cycle_at(daemon, T0)
        await cycle_at(daemon, T0 + step / 2)
        looks = daemon.looks  # type: ignore[attr-defined]
        # The CLI queues a post for now on another channel and pokes the daemon: the next cycle looks, and sends it.
        queue(daemon, "b", T0 + step, "added meanwhile")
        daemon.rt.poke()
        await cycle_at(daemon, T0 + step)
        assert daemon.looks == looks + 1  # type: ignore[attr-defined]
        assert statuses(daemon.rt.db)["added meanwhile"] == "published"
        # Publishing and claiming keep what was read ahead; a retry (due again sooner, maybe) does not.
        await cycle_at(daemon, T0 + 2 * step)
        assert daemon.looks == looks + 1  # type: ignore[attr-defined]
        await daemon.rt.db_call(store.expire_leases, [], T0)
        await cycle_at(daemon, T0 + 3 * step)
        assert daemon.looks == looks + 2  # type: ignore[attr-defined]
        for i in range(4, 7):
            await cycle_at(daemon, T0 + i * step)

    asyncio.run(scenario())
    assert set(statuses(daemon.rt.db).values()) == {"published"}


def test_what_another_process_queued_unannounced_waits_at_most_the_read_ahead(daemon: Daemon) -> None:
    # No poke (another daemon's release, a lost datagram): the read-ahead runs out within READ_AHEAD, and the look
    # that follows finds it.
    step = timedelta(milliseconds=500)
    for i in range(5):
        queue(daemon, "a", T0 + step * (i + 1), f"post {i}")

    async def scenario() -> None:
        await daemon.startup()
        await cycle_at(daemon, T0)
        queue(daemon, "c", T0 + step, "unannounced")
        await cycle_at(daemon, T0 + step)
        at = T0 + step
        while statuses(daemon.rt.db)["unannounced"] != "published":
            at += step
            assert at - (T0 + step) <= READ_AHEAD, "not sent within the read-ahead"
            await cycle_at(daemon, at)

    asyncio.run(scenario())


def test_a_look_reads_ahead_only_what_it_can_read_whole(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url)
    from scheduler.config import load_config

    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    try:
        for i, ms in enumerate((100, 200, 200, 300, 5000)):
            when = (T0 + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            add_post(cfg, db, NewPost(text=f"p{i}", channels=["outbox"], at=when), T0 - timedelta(hours=1))
        with db.read() as session:
            whole = watch.look(session, 0, T0, T0, set(), timedelta(seconds=2))
            cut = watch.look(session, 0, T0, T0, set(), timedelta(seconds=2), ahead_limit=3)
            idle = watch.look(session, 0, T0, T0, set(), timedelta(milliseconds=50))
        assert [t for t, _ in whole.upcoming] == [T0 + timedelta(milliseconds=ms) for ms in (100, 200, 200, 300)]
        assert whole.ahead_until == T0 + timedelta(seconds=2)
        # Three rows asked for: the two at 200 ms may not be all there are at that time, so it stops before them.
        assert [t for t, _ in cut.upcoming] == [T0 + timedelta(milliseconds=100)]
        assert cut.ahead_until == T0 + timedelta(milliseconds=200)
        # Nothing due within the read-ahead: nothing more is read (an idle daemon's look stays one statement).
        assert (idle.upcoming, idle.ahead_until) == ([], None)
    finally:
        db.dispose()


def test_a_worker_that_claims_nothing_leaves_its_post_to_the_next_look(daemon: Daemon) -> None:
    # The claim for "a" fails (the database was locked a moment): what was read ahead no longer says it is due,
    # so the next cycle looks at the queue, finds it still due and sends it, instead of after the read-ahead.
    step = timedelta(milliseconds=100)
    queue(daemon, "a", T0 + step, "first claim fails")
    queue(daemon, "c", T0 + 5 * step, "next")
    queue(daemon, "b", T0 + 19 * step, "later")
    real_call = daemon.rt.writes.call
    failures = [DatabaseError("database is locked")]

    async def flaky(fn: Any, *args: Any) -> Any:
        if fn is store.claim and failures:
            raise failures.pop()
        return await real_call(fn, *args)

    daemon.rt.writes.call = flaky  # type: ignore[method-assign]

    async def scenario() -> None:
        await daemon.startup()
        await cycle_at(daemon, T0)
        await cycle_at(daemon, T0 + step)
        assert statuses(daemon.rt.db)["first claim fails"] == "queued"
        daemon.rt.health.up()
        await cycle_at(daemon, T0 + 5 * step)
        assert statuses(daemon.rt.db) == {"first claim fails": "published", "next": "published", "later": "queued"}

    asyncio.run(scenario())


def test_a_quota_deferral_within_the_read_ahead_is_sent_at_its_new_time(daemon: Daemon) -> None:
    # Channel "a" takes one post a minute; the one before went out 59.9 s before "deferred" is due, which is moved
    # to when the minute has room: within what was read ahead, where no entry has that time.
    step = timedelta(milliseconds=100)
    queue(daemon, "a", T0 - timedelta(seconds=59.8), "a minute ago")
    queue(daemon, "a", T0 + step, "deferred")
    queue(daemon, "c", T0 + 5 * step, "next")
    queue(daemon, "b", T0 + 19 * step, "later")

    with daemon.rt.db.write() as session:  # published by an earlier run of the daemon
        session.execute(
            update(Delivery)
            .where(Delivery.channel == "a", Delivery.next_attempt_at < T0)
            .values(status="published", published_at=T0 - timedelta(seconds=59.8), next_attempt_at=None)
        )

    async def scenario() -> None:
        await daemon.startup()
        daemon.rt.adapters["a"].quotas = lambda: (Quota("a", 1, 60),)  # type: ignore[method-assign]
        await cycle_at(daemon, T0)
        await cycle_at(daemon, T0 + step)
        with daemon.rt.db.read() as session:
            moved = session.scalar(
                select(Delivery.next_attempt_at).where(Delivery.channel == "a", Delivery.status == "queued")
            )
        assert moved is not None and T0 + step < moved < T0 + 19 * step
        await cycle_at(daemon, T0 + 5 * step)
        await cycle_at(daemon, moved)
        assert statuses(daemon.rt.db)["deferred"] == "published"

    asyncio.run(scenario())
