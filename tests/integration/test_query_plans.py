"""The daemon's recurring statements read through an index, never the whole queue (SQLite's query plans).

A full scan is harmless on a test's ten rows and costs half a second a cycle at 1,000,000 queued (bench/ B4); the
plan shows it at any size. SQLite without statistics, as the product runs it (it never runs ANALYZE).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.db import Database
from scheduler.store import claims, leases, queue


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'smm.db'}")
    database.check_schema()
    yield database
    database.dispose()


def plan(db: Database, statement: Any) -> list[str]:
    with db.read() as session:
        conn = session.connection()
        compiled = statement.compile(conn)
        params = compiled.construct_params({name: None for name in compiled.binds})  # a plan needs no values
        positional = tuple(params[name] for name in compiled.positiontup)
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).fetchall()
    return [row[-1] for row in rows]


STATEMENTS = {
    "a cycle's glance": queue._GLANCE,
    "next due": queue._NEXT_DUE,
    "next lease expiry": leases._NEXT_LEASE_EXPIRY,
    "due channels": queue._DUE_CHANNELS,
    "what falls due next (read ahead)": queue._UPCOMING,
    "expired leases": leases._EXPIRED,
    "claim, with its content and whether more is due": claims._CLAIM_RETURNING_ALL,
    "queued on a channel": queue._QUEUED_ON,
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_no_recurring_statement_scans_the_deliveries(db: Database, name: str) -> None:
    steps = plan(db, STATEMENTS[name])
    assert steps, name
    assert not [s for s in steps if s.startswith(("SCAN deliveries", "SCAN other", "SCAN posts"))], steps
    assert any("USING" in s and "INDEX" in s for s in steps), steps


def test_a_claim_asks_whether_more_is_due_on_its_channels_index(db: Database) -> None:
    index = "ix_deliveries_channel_status_next_attempt_at"
    assert f"SEARCH other USING COVERING INDEX {index} (channel=? AND status=? AND next_attempt_at<?)" in plan(
        db, claims._CLAIM_RETURNING_ALL
    )


def test_the_queue_summary_reads_only_a_covering_index_and_sorts_nothing(db: Database) -> None:
    steps = plan(db, queue._QUEUED_ON)
    index = "ix_deliveries_channel_status_next_attempt_at"
    assert steps == [f"SEARCH deliveries USING COVERING INDEX {index} (channel=? AND status=?)"]
