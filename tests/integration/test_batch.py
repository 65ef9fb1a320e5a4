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
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from scheduler import repository as repo
from scheduler import store
from scheduler.batch import WriteBatcher
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.errors import DatabaseError
from scheduler.intake import NewPost, add_post
from scheduler.models import Attempt, Delivery
from tests.conftest import utc, write_config

NOW = utc(2026, 11, 26, 12)


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


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent on the write engine meanwhile (their first word)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(db.write_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.write_engine, "before_cursor_execute", note)


def flagged(db: Database) -> dict[str, str]:
    with db.read() as session:
        return repo.attention(session)


async def queue_behind_busy_writer(batcher: WriteBatcher, calls: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``calls`` while the writer thread is busy with a first call, so that they queue up together."""
    release = threading.Event()

    def hold(session: Session) -> str:
        release.wait(10)
        return "held"

    first = asyncio.ensure_future(batcher.call(hold))
    await asyncio.sleep(0.05)  # the first call is on the writer thread now
    rest = [asyncio.ensure_future(batcher.call(fn, *args)) for fn, *args in calls]
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


def flag_all(session: Session, calls: list[tuple[Any, ...]]) -> list[str]:
    """``flag``'s combined form: one call for many, noted in ``COMBINED_RUNS``."""
    COMBINED_RUNS.append([c[0] for c in calls])
    return [flag(session, *c) for c in calls]


COMBINED_RUNS: list[list[str]] = []


def test_calls_with_a_combined_form_go_to_it_together_and_each_gets_its_result(
    db: Database, executor: ThreadPoolExecutor
) -> None:
    COMBINED_RUNS.clear()
    batcher = WriteBatcher(db, executor, combine={flag: flag_all})
    calls: list[tuple[Any, ...]] = [(flag, "a"), (repo.set_attention, "x", "other", NOW), (flag, "b"), (flag, "c")]

    results = asyncio.run(queue_behind_busy_writer(batcher, calls))

    assert results == ["a", None, "b", "c"]
    assert COMBINED_RUNS == [["a", "b", "c"]]
    assert flagged(db) == {"a": "reason a", "b": "reason b", "c": "reason c", "x": "other"}


def test_a_combined_call_that_raises_falls_back_to_each_call_alone(db: Database, executor: ThreadPoolExecutor) -> None:
    def boom_all(session: Session, calls: list[tuple[Any, ...]]) -> list[str]:
        raise ValueError("the combined form failed")

    batcher = WriteBatcher(db, executor, combine={flag: boom_all})

    results = asyncio.run(queue_behind_busy_writer(batcher, [(flag, "a"), (flag, "b")]))

    assert results == ["a", "b"]
    assert flagged(db) == {"a": "reason a", "b": "reason b"}


def test_a_call_with_keyword_arguments_keeps_them_and_is_not_combined(
    db: Database, executor: ThreadPoolExecutor
) -> None:
    COMBINED_RUNS.clear()
    batcher = WriteBatcher(db, executor, combine={flag: flag_all})

    async def scenario() -> list[str]:
        release = threading.Event()

        def hold(session: Session) -> str:
            release.wait(10)
            return "held"

        first = asyncio.ensure_future(batcher.call(hold))
        await asyncio.sleep(0.05)  # the first call is on the writer thread now
        rest = [batcher.call(flag, "a"), batcher.call(flag, channel="b"), batcher.call(flag, "c")]
        queued = [asyncio.ensure_future(call) for call in rest]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *queued)

    assert asyncio.run(scenario()) == ["held", "a", "b", "c"]
    assert COMBINED_RUNS == [["a", "c"]]
    assert flagged(db) == {"a": "reason a", "b": "reason b", "c": "reason c"}


@pytest.fixture
def three_channels(tmp_path: Any, db_url: str, db: Database) -> Any:
    body = "".join(
        f'[[channels]]\nname = "{n}"\nnetwork = "outbox"\npath = "{tmp_path / n}"\n\n' for n in ("a", "b", "c")
    )
    config = load_config(write_config(tmp_path / "config.toml", db_url, body))
    for text, channel in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        add_post(config, db, NewPost(text=text, channels=[channel], now=True), NOW)
    return config


def test_claims_and_outcomes_of_one_batch_take_what_one_at_a_time_would(
    db: Database, executor: ThreadPoolExecutor, three_channels: Any
) -> None:
    # On PostgreSQL each list is one statement; on SQLite the calls one by one: both must give the same.
    batcher = WriteBatcher(db, executor, combine=store.COMBINED)
    lease = timedelta(minutes=5)
    with counted_statements(db) as statements:
        got = asyncio.run(
            queue_behind_busy_writer(batcher, [(store.claim, ch, NOW, "me", lease) for ch in ("a", "b", "c")])
        )
    if not db.is_sqlite:
        assert statements == ["WITH"]
    a, b, none = got
    assert none is None and a is not None and b is not None
    assert (a.content.text, a.more_due, a.attempt_number) == ("a1", True, 1)
    assert (b.content.text, b.more_due, b.channel) == ("b1", False, "b")
    with db.read() as session:
        opened = dict(session.execute(select(Attempt.delivery_id, Attempt.id).where(Attempt.outcome.is_(None))).all())
    assert opened == {a.delivery_id: a.attempt_id, b.delivery_id: b.attempt_id}

    with db.write() as session:  # b's attempt was settled elsewhere (a daemon presumed dead): its outcome is fenced
        assert store.record_unknown(session, b, NOW, "settled elsewhere")
    later = NOW + timedelta(seconds=3)
    with counted_statements(db) as statements:
        recorded = asyncio.run(
            queue_behind_busy_writer(
                batcher,
                [
                    (store.record_published, a, later, "r-a", "outbox://a", "note a", ("r-a2", "r-a3")),
                    (store.record_published, b, later, "r-b", "outbox://b"),
                ],
            )
        )
    if not db.is_sqlite:
        assert statements == ["WITH"]
    assert recorded == [True, False]
    with db.read() as session:
        rows = {
            d.channel: (d.status, d.remote_id, d.remote_url, d.more_remote_ids, d.published_at, d.lease_owner)
            for d in session.scalars(select(Delivery).where(Delivery.id.in_([a.delivery_id, b.delivery_id])))
        }
        attempt = session.get(Attempt, a.attempt_id)
        assert attempt is not None
        assert (attempt.outcome, attempt.remote_id, attempt.error, attempt.finished_at) == (
            "published",
            "r-a",
            "note a",
            later,
        )
    assert rows == {
        "a": ("published", "r-a", "outbox://a", "r-a2 r-a3", later, None),
        "b": ("unknown", None, None, None, None, None),
    }


def test_claims_for_one_channel_twice_in_a_batch_take_two_deliveries(db: Database, three_channels: Any) -> None:
    lease = timedelta(minutes=5)
    with db.write() as session:
        first, second, third = store.claim_each(session, [("a", NOW, "me", lease)] * 3)
    assert first is not None and second is not None and third is None
    assert (first.content.text, second.content.text) == ("a1", "a2")


def test_outcomes_of_one_batch_stay_fenced_when_two_are_for_one_delivery(db: Database, three_channels: Any) -> None:
    # The first attempt was settled (a retry), the second is open: a late outcome of the first, recorded in the same
    # batch as the second's, changes nothing, and the same outcome twice counts once.
    lease = timedelta(minutes=5)
    with db.write() as session:
        first = store.claim(session, "b", NOW, "me", lease)
        assert first is not None
        assert store.record_retry(session, first, NOW, "timeout", NOW)
        second = store.claim(session, "b", NOW, "me", lease)
        assert second is not None and second.delivery_id == first.delivery_id
    later = NOW + timedelta(seconds=3)
    with db.write() as session:
        recorded = store.record_published_each(
            session,
            [
                (first, later, "stale", "outbox://stale"),
                (second, later, "good", "outbox://good"),
                (second, later, "x", None),
            ],
        )
    assert recorded == [False, True, False]
    with db.read() as session:
        delivery = session.get(Delivery, second.delivery_id)
        assert delivery is not None
        assert (delivery.status, delivery.remote_id, delivery.remote_url) == ("published", "good", "outbox://good")


def test_combined_outcomes_refuse_a_naive_time_like_one_outcome(db: Database, three_channels: Any) -> None:
    lease = timedelta(minutes=5)
    with db.write() as session:
        a, b = store.claim_each(session, [("a", NOW, "me", lease), ("b", NOW, "me", lease)])
    assert a is not None and b is not None
    with pytest.raises(Exception, match="naive datetime"), db.write() as session:
        store.record_published_each(session, [(a, NOW, "r-a", None), (b, NOW.replace(tzinfo=None), "r-b", None)])
