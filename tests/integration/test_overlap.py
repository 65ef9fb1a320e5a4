"""A channel's next claim shares the write transaction of its last post's outcome, and nothing else changes.

The daemon runs in-process with its clock under the test's control and a real outbox channel; the group commit's
transactions are observed by wrapping the batcher's transaction function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.outbox import OutboxAdapter
from scheduler import store
from scheduler.daemon import Daemon, open_daemon
from scheduler.errors import DatabaseError
from tests.conftest import write_config
from tests.integration.test_read_ahead import T0, Clock, cycle_at, queue, statuses
from tests.support import outbox_folders

POSTS = 6


@pytest.fixture
def daemon(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # No pacing: each post may follow the last at once, so which calls meet in a transaction is deterministic.
    monkeypatch.setattr(OutboxAdapter, "rate_limits", lambda self: ())
    body = f'[[channels]]\nname = "a"\nnetwork = "outbox"\npath = "{tmp_path / "a"}"\n'
    clock = Clock()
    d = open_daemon(str(write_config(tmp_path / "config.toml", db_url, body, outbox=False)), clock=clock)
    d.rt.db.check_schema()
    d.test_clock = clock  # type: ignore[attr-defined]
    d.batches = []  # type: ignore[attr-defined]
    real = d.rt.writes._transaction

    def observed(batch: list[Any]) -> Any:
        d.batches.append(sorted(fn.__name__ for fn, _, _ in batch))  # type: ignore[attr-defined]
        return real(batch)

    monkeypatch.setattr(d.rt.writes, "_transaction", observed)
    for i in range(POSTS):
        queue(d, "a", T0 - timedelta(minutes=POSTS - i), f"post {i}")
    yield d
    d.release()


def test_each_claim_after_the_first_shares_the_transaction_of_the_last_posts_outcome(
    daemon: Daemon, tmp_path: Path
) -> None:
    async def scenario() -> None:
        await daemon.startup()
        daemon.batches.clear()  # type: ignore[attr-defined]
        await cycle_at(daemon, T0)
        while daemon.publisher.published_count < POSTS:  # on PostgreSQL the first cycle takes the lease group
            await cycle_at(daemon, daemon.test_clock.now + timedelta(seconds=1))  # type: ignore[attr-defined]

    asyncio.run(scenario())
    both = ["claim", "record_published"]
    assert daemon.batches == [["claim"], *[both] * (POSTS - 1), ["record_published"]]  # type: ignore[attr-defined]
    assert set(statuses(daemon.rt.db).values()) == {"published"}
    published = [folder.name.split("-", 1)[1] for folder in outbox_folders(tmp_path / "a")]
    assert len(published) == len(set(published)) == POSTS
    assert daemon.publisher.published_count == POSTS
    assert daemon.rt.inflight == set()


def test_an_outcome_that_cannot_be_recorded_stops_the_channel_and_is_retried(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The database fails the outcome of the first post (and with it the second claim, in the same transaction):
    # the worker stops, the outcome is recorded once the database is back, and nothing is sent twice.
    real = store.record_published_each
    failures = [1]

    def flaky(session: Any, calls: Any) -> Any:
        if failures:
            failures.pop()
            raise DatabaseError("database is locked")
        return real(session, calls)

    monkeypatch.setitem(daemon.rt.writes.combine, store.record_published, flaky)

    async def scenario() -> None:
        await daemon.startup()
        for second in range(5):
            await cycle_at(daemon, T0 + timedelta(seconds=second))

    asyncio.run(scenario())
    assert failures == []  # it failed once
    assert set(statuses(daemon.rt.db).values()) == {"published"}
    assert daemon.publisher.published_count == POSTS
    assert daemon.rt.health.failures >= 1
    assert len(outbox_folders(tmp_path / "a")) == POSTS


def test_a_claim_whose_last_outcome_cannot_be_written_is_handed_back_unsent(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The database takes the next claim but never the last post's outcome (it went down in between, for longer
    # than the outcome's retries): the claimed post was not sent, so it goes back to the queue rather than being
    # left open (a Telegram post left open would be "unknown" after a restart).
    async def record(fn: Any, *args: Any) -> Any:
        if fn is store.record_published:
            await asyncio.sleep(0.01)  # the next claim is queued meanwhile
            raise DatabaseError("database is down")
        return await daemon.rt.batch_call(fn, *args)

    monkeypatch.setattr(daemon.publisher, "record", record)

    async def scenario() -> None:
        await daemon.startup()
        await cycle_at(daemon, T0)
        while not outbox_folders(tmp_path / "a"):  # on PostgreSQL the first cycle takes the lease group
            await cycle_at(daemon, daemon.test_clock.now + timedelta(seconds=1))  # type: ignore[attr-defined]

    asyncio.run(scenario())
    assert len(outbox_folders(tmp_path / "a")) == 1  # the worker stopped after the first post
    assert sorted(statuses(daemon.rt.db).values()) == ["publishing"] + ["queued"] * (POSTS - 1)
    assert daemon.rt.health.failures >= 1
    assert daemon.rt.inflight == set()
