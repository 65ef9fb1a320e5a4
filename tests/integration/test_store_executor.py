"""The store's executor (scheduler.store.executor): a write commits before its awaitable completes, a read sees
it, and a write that raises leaves nothing behind; and store functions called through it. Run on SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from scheduler import repository as repo
from scheduler.db import Database
from scheduler.store import feeds as feed_states
from scheduler.store import probe_write
from scheduler.store.executor import Executor
from tests.conftest import utc

NOW = utc(2026, 11, 26, 12)


@pytest.fixture
def store(db_url: str) -> Iterator[Executor]:
    db = Database(db_url)
    db.check_schema()
    writer, reader = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1)
    yield Executor(db, writer, reader)
    writer.shutdown(wait=True)
    reader.shutdown(wait=True)
    db.dispose()


def mark(session: Session, channel: str, *, reason: str) -> str:
    repo.set_attention(session, channel, reason, NOW)
    return channel


def mark_then_fail(session: Session, channel: str) -> None:
    repo.set_attention(session, channel, "written, then undone", NOW)
    session.flush()
    raise ValueError(channel)


def test_a_write_is_committed_with_its_arguments_and_a_read_sees_it(store: Executor) -> None:
    async def scenario() -> tuple[str, dict[str, str]]:
        written = await store.write(mark, "a", reason="checked")
        return written, await store.read(repo.attention)

    assert asyncio.run(scenario()) == ("a", {"a": "checked"})


def test_a_write_that_raises_raises_to_its_caller_and_is_rolled_back(store: Executor) -> None:
    with pytest.raises(ValueError, match="b"):
        asyncio.run(store.write(mark_then_fail, "b"))

    assert store.read_now(repo.attention) == {}


def test_a_feeds_poll_is_claimed_once_per_interval_and_its_state_kept(store: Executor) -> None:
    hour = timedelta(hours=1)
    first = store.write_now(feed_states.claim_poll, "blog", hour, NOW)
    assert first is not None and (first.polled_at, first.etag, first.last_error) == (NOW, None, None)
    assert store.write_now(feed_states.claim_poll, "blog", hour, NOW + hour / 2) is None  # polled within the hour
    store.write_now(feed_states.record_poll, "blog", "the feed failed", ("etag-1", "Mon, 30 Nov 2026"))
    store.write_now(feed_states.record_poll, "blog", None)  # a poll that went through, validators kept
    store.write_now(feed_states.record_poll, "never-claimed", "ignored")
    again = store.write_now(feed_states.claim_poll, "blog", hour, NOW + hour)
    assert again is not None
    assert (again.polled_at, again.etag, again.modified, again.last_error) == (
        NOW + hour,
        "etag-1",
        "Mon, 30 Nov 2026",
        None,
    )
    assert store.write_now(feed_states.claim_poll, "never-claimed", hour, NOW + hour / 2) is not None
    store.write_now(probe_write)  # a writable database takes the probe
