"""Group commit (scheduler.batch): writes that queue up together share a transaction, and nothing else changes.

Run on SQLite and on PostgreSQL. The writer thread is held busy by a first call that waits on an event, so the
calls made meanwhile queue up and go together in the next transaction.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.orm import Session

from scheduler import repository as repo
from scheduler.batch import WriteBatcher
from scheduler.db import Database
from scheduler.errors import DatabaseError
from tests.conftest import utc

NOW = utc(2026, 11, 26, 12)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.check_schema()
    yield database
    database.dispose()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


def flag(session: Session, channel: str) -> str:
    repo.set_attention(session, channel, f"reason {channel}", NOW)
    return channel


def boom(session: Session, channel: str) -> None:
    repo.set_attention(session, channel, "written, then undone", NOW)
    session.flush()
    raise ValueError(f"bad call {channel}")


def flagged(db: Database) -> dict[str, str]:
    with db.read() as session:
        return repo.attention(session)


async def queue_behind_busy_writer(batcher: WriteBatcher, calls: list[tuple[Any, str]]) -> list[Any]:
    """Run ``calls`` while the writer thread is busy with a first call, so that they queue up together."""
    release = threading.Event()

    def hold(session: Session) -> str:
        release.wait(10)
        return "held"

    first = asyncio.ensure_future(batcher.call(hold))
    await asyncio.sleep(0.05)  # the first call is on the writer thread now
    rest = [asyncio.ensure_future(batcher.call(fn, arg)) for fn, arg in calls]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert results[0] == "held"
    return results[1:]


def test_calls_that_queue_up_share_one_transaction_and_each_gets_its_result(
    db: Database, executor: ThreadPoolExecutor
) -> None:
    batcher = WriteBatcher(db, executor)
    names = [f"ch{i}" for i in range(7)]

    results = asyncio.run(queue_behind_busy_writer(batcher, [(flag, n) for n in names]))

    assert results == names
    assert (batcher.transactions, batcher.calls) == (2, 8)  # the holding call, then the seven together
    assert flagged(db) == {n: f"reason {n}" for n in names}


def test_a_call_that_raises_fails_alone_and_undoes_only_its_own_writes(
    db: Database, executor: ThreadPoolExecutor
) -> None:
    batcher = WriteBatcher(db, executor)

    results = asyncio.run(queue_behind_busy_writer(batcher, [(flag, "a"), (boom, "b"), (flag, "c")]))

    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad call b"
    assert flagged(db) == {"a": "reason a", "c": "reason c"}
    # The holding call alone, the batch of three (rolled back), then each of the three alone.
    assert batcher.transactions == 5


def test_the_batch_is_capped_and_the_rest_goes_in_the_next_transaction(
    db: Database, executor: ThreadPoolExecutor
) -> None:
    batcher = WriteBatcher(db, executor, max_batch=3)
    names = [f"ch{i}" for i in range(7)]

    results = asyncio.run(queue_behind_busy_writer(batcher, [(flag, n) for n in names]))

    assert results == names
    assert batcher.transactions == 1 + 3  # 3 + 3 + 1
    assert set(flagged(db)) == set(names)


def test_a_lone_call_runs_at_once_in_its_own_transaction(db: Database, executor: ThreadPoolExecutor) -> None:
    batcher = WriteBatcher(db, executor)

    async def main() -> list[str]:
        return [await batcher.call(flag, "x"), await batcher.call(flag, "y")]

    assert asyncio.run(main()) == ["x", "y"]
    assert batcher.transactions == 2


def test_an_unavailable_database_fails_every_call_of_the_batch(tmp_path: Any, executor: ThreadPoolExecutor) -> None:
    missing = tmp_path / "no-such-folder" / "smm.db"
    db = Database(f"sqlite:///{missing}", before_first_write=lambda _db: None)
    batcher = WriteBatcher(db, executor)

    async def main() -> list[Any]:
        calls = [batcher.call(flag, n) for n in ("a", "b", "c")]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, DatabaseError) for r in results), results
    assert "cannot open the database" in str(results[0])


class CommitFails:
    """The database, except that each write transaction's commit fails (the connection dropped at that moment)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.db.write() as session:
            yield session
            raise DatabaseError("database went away at the commit")


def test_a_commit_that_fails_fails_its_call(db: Database, executor: ThreadPoolExecutor) -> None:
    """Before, the call's result was recorded and then its commit's error as well: two outcomes for one call, the
    batch runner died on the mismatch and the caller waited forever (a PostgreSQL outage in the reliability suite)."""
    batcher = WriteBatcher(CommitFails(db), executor)  # type: ignore[arg-type]

    async def main() -> Any:
        return await asyncio.wait_for(batcher.call(flag, "x"), 5)

    with pytest.raises(DatabaseError, match="went away at the commit"):
        asyncio.run(main())
    assert flagged(db) == {}
