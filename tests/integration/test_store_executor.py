"""The store's executor (scheduler.store.executor): a write commits before its awaitable completes, a read sees
it, and a write that raises leaves nothing behind. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session

from scheduler import repository as repo
from scheduler.db import Database
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
