"""Several processes running ``smm add`` on one database at once, on SQLite and on PostgreSQL.

Each worker process calls ``scheduler.cli.main`` in a loop (a fresh config, engine and transaction per call, as a
separate ``smm`` process would). Nothing may fail ("database is locked" included), every add must land, and slot
placement must stay first-in-first-out per channel with never two queued posts of a channel on one slot.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select, text

from scheduler.db import SCHEMA_HEAD
from scheduler.models import Delivery, Post
from scheduler.slots import DEFAULT_SLOTS, parse_slots, slot_times
from tests.conftest import PG_URL, run_cli, write_config
from tests.support import wait_for

CHANNELS = """
[[channels]]
name = "a"
network = "outbox"
path = "outbox-a"

[[channels]]
name = "b"
network = "outbox"
path = "outbox-b"
timezone = "Europe/Berlin"
slots = ["daily 09:00", "daily 18:00"]
"""
SLOTS = {
    "a": (DEFAULT_SLOTS, ZoneInfo("UTC")),
    "b": (parse_slots(["daily 09:00", "daily 18:00"]), ZoneInfo("Europe/Berlin")),
}

WORKER = """
import sys
from scheduler.cli import main

config, tag, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
failures = 0
for i in range(count):
    args = ["--config", config, "add", f"{tag}-{i}"]
    if mode == "mixed" and i % 3 == 1:
        args.append("--next")
    try:
        main(args)
    except SystemExit as exc:
        if exc.code:
            failures += 1
sys.exit(1 if failures else 0)
"""


def run_workers(config: Path, processes: int, adds: int, mode: str = "plain") -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(config), f"p{n}", str(adds), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=config.parent,
        )
        for n in range(processes)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        # No "database is locked", no warning; the process that created the database says so.
        assert err in ("", f"smm: created a new database at {config.parent / 'smm.db'}\n"), err
        assert out.count("queued post ") == adds


def deliveries(db_url: str) -> dict[str, list[tuple[int, str, datetime, bool]]]:
    """Per channel: (post id, text, due_at UTC, slotted), by post id."""
    query = (
        select(Delivery.channel, Post.id, Post.text, Delivery.due_at, Delivery.slotted)
        .join(Post, Post.id == Delivery.post_id)
        .where(Delivery.status == "queued")
        .order_by(Post.id)
    )
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        engine.dispose()
    out: dict[str, list[tuple[int, str, datetime, bool]]] = {}
    for channel, post_id, post_text, due, slotted in rows:
        out.setdefault(channel, []).append((post_id, post_text, due, slotted))
    return out


def consecutive_slots(channel: str, first: datetime, count: int) -> list[datetime]:
    slots, zone = SLOTS[channel]
    return list(islice(slot_times(slots, zone, first - timedelta(seconds=1)), count))


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False)
    assert run_cli("db", "upgrade", config=path).code == 0
    return path


def test_concurrent_adds_land_in_fifo_order_on_consecutive_slots(config: Path, db_url: str) -> None:
    run_workers(config, processes=4, adds=25)
    queues = deliveries(db_url)
    for channel in ("a", "b"):
        rows = queues[channel]
        assert len(rows) == 100
        times = [due for _, _, due, _ in rows]
        # FIFO: a later post id never gets an earlier slot; and no two posts share a slot
        assert times == sorted(times)
        assert len(set(times)) == 100
        # no gaps either: exactly the next 100 slots
        assert times == consecutive_slots(channel, times[0], 100)
        # each worker's own posts are in its own order
        for n in range(4):
            mine = [int(t.split("-")[1]) for _, t, _, _ in rows if t.startswith(f"p{n}-")]
            assert mine == list(range(25))


def test_concurrent_adds_and_next_never_share_a_slot(config: Path, db_url: str) -> None:
    run_workers(config, processes=4, adds=15, mode="mixed")
    queues = deliveries(db_url)
    for channel in ("a", "b"):
        rows = queues[channel]
        assert len(rows) == 60
        times = sorted(due for _, _, due, _ in rows)
        assert len(set(times)) == 60, "two queued posts of one channel on one slot"
        assert times == consecutive_slots(channel, times[0], 60)
        assert all(slotted for *_, slotted in rows)


def test_concurrent_first_adds_on_an_empty_database(tmp_path: Path, db_url: str) -> None:
    # No `smm db upgrade` first: every process finds no schema and races to create it.
    config = write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False)
    run_workers(config, processes=4, adds=3)
    queues = deliveries(db_url)
    assert {channel: len(rows) for channel, rows in queues.items()} == {"a": 12, "b": 12}
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [SCHEMA_HEAD]
    finally:
        engine.dispose()


def test_a_failed_migration_releases_the_postgresql_migration_lock(tmp_path: Path, postgres_url: str) -> None:
    db_url = postgres_url
    import psycopg

    from scheduler.db import Database
    from scheduler.migrate import _PG_MIGRATION_LOCK, upgrade

    db = Database(db_url)
    try:
        with db.write_engine.begin() as conn:
            conn.execute(text("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
        with pytest.raises(Exception) as info:  # the message is test_cli's business; the lock is ours
            upgrade(db)
        assert "already exists" in str(info.value)
        # the failed migration's pooled connection is still open here: another smm must not wait on it forever
        conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", (_PG_MIGRATION_LOCK,)).fetchone() == (True,)
            other.execute("SELECT pg_advisory_unlock(%s)", (_PG_MIGRATION_LOCK,))
    finally:
        db.dispose()


def test_channels_named_in_any_order_do_not_deadlock(tmp_path: Path, postgres_url: str) -> None:
    """Deterministic: B waits for b, A takes a and waits for b behind B; when b frees, B takes it and wants a."""
    db_url = postgres_url  # SQLite serialises every write; the advisory locks are PostgreSQL's
    import uuid

    import psycopg

    app = f"smm-lock-order-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path / "config.toml", f"{db_url}&application_name={app}", CHANNELS, outbox=False)
    assert run_cli("db", "upgrade", config=config).code == 0
    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")

    def waiting(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = %s",
            (app,),
        ).fetchone()
        return int(row[0]) if row else 0

    def add(text_: str, *channels: str) -> subprocess.Popen[str]:
        args = [arg for c in channels for arg in ("--channel", c)]
        return subprocess.Popen(
            [sys.executable, "-m", "scheduler", "--config", str(config), "add", text_, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )

    with psycopg.connect(conninfo, autocommit=True) as watcher, psycopg.connect(conninfo) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtext('smm-channel:b'))")
        b_first = add("B", "b", "a")
        wait_for(lambda: waiting(watcher) == 1, what="B waiting")
        a_first = add("A", "a", "b")
        wait_for(lambda: waiting(watcher) == 2, what="A waiting")
        holder.commit()  # frees b
        results = [p.communicate(timeout=30) for p in (b_first, a_first)]
    assert [p.returncode for p in (b_first, a_first)] == [0, 0], results
