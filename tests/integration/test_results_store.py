"""The store of results read back (scheduler/store/results.py), on SQLite and PostgreSQL: which readings are due,
each reading stored once with ``latest`` kept on the newest one with figures, the audience by day, a post's
history."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from scheduler.db import Database
from scheduler.store import results as store
from scheduler.store.results import Reading
from scheduler.tables import audience_readings, deliveries, posts, result_readings

HOUR, DAY = 3600, 86400
AGES = (HOUR, DAY, 7 * DAY)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def published(
    db: Database, ago: timedelta, *, channel: str = "vk", status: str = "published", remote: bool = True
) -> int:
    """A post with one delivery on ``channel`` published ``ago`` before NOW; returns the delivery's id."""
    with db.write() as session:
        conn = session.connection()
        post_id = conn.execute(
            posts.insert().values(text="hello", category="educational", media=[], created_at=NOW - ago)
        ).inserted_primary_key[0]
        delivery_id = conn.execute(
            deliveries.insert().values(
                post_id=post_id,
                channel=channel,
                network="vk",
                status=status,
                due_at=NOW - ago,
                key=f"k{post_id}",
                published_at=NOW - ago if status == "published" else None,
                remote_id=str(post_id) if remote else None,
                updated_at=NOW - ago,
            )
        ).inserted_primary_key[0]
    return int(delivery_id)


def due(db: Database, now: datetime = NOW, channels: tuple[str, ...] = ("vk",)) -> dict[int, int]:
    with db.read() as session:
        return {d.delivery_id: d.age for d in store.due_readings(session, channels, AGES, now, 100)}


def record(db: Database, *items: Reading) -> int:
    with db.write() as session:
        return store.record_readings(session, items)


def rows(db: Database) -> list[tuple[int, int, bool, int | None, bool, str | None]]:
    r = result_readings.c
    with db.read() as session:
        found = session.connection().execute(
            select(r.delivery_id, r.age, r.latest, r.views, r.gone, r.error).order_by(r.delivery_id, r.age)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


def test_a_reading_is_due_at_the_largest_planned_age_that_has_passed(db: Database) -> None:
    young = published(db, timedelta(minutes=30))
    one_hour = published(db, timedelta(hours=2))
    one_day = published(db, timedelta(days=3))
    one_week = published(db, timedelta(days=9))  # a daemon down for a week: one reading, at 7 days
    published(db, timedelta(days=30))  # older than the collection window: never read
    published(db, timedelta(hours=2), status="failed")
    published(db, timedelta(hours=2), remote=False)
    published(db, timedelta(hours=2), channel="elsewhere")
    assert young not in due(db)
    assert due(db) == {one_hour: HOUR, one_day: DAY, one_week: 7 * DAY}


def test_a_reading_taken_or_failed_is_not_due_again_before_the_next_age(db: Database) -> None:
    ok, failed, gone = (published(db, timedelta(hours=2)) for _ in range(3))
    record(
        db,
        Reading(ok, HOUR, NOW, views=10, likes=1, reposts=0, comments=0),
        Reading(failed, HOUR, NOW, error="VK: internal server error"),
        Reading(gone, HOUR, NOW, gone=True),
    )
    assert due(db) == {}
    assert due(db, NOW + timedelta(hours=12)) == {}
    # At 24 hours both the read and the failed one are due again; the gone one never.
    assert due(db, NOW + timedelta(days=1)) == {ok: DAY, failed: DAY}
    assert due(db, NOW + timedelta(days=7)) == {ok: 7 * DAY, failed: 7 * DAY}


def test_nothing_is_due_after_the_last_age_was_read(db: Database) -> None:
    delivery = published(db, timedelta(days=8))
    record(db, Reading(delivery, 7 * DAY, NOW, views=1))
    assert due(db) == {}
    assert due(db, NOW + timedelta(days=5)) == {}


def test_a_reading_is_stored_once_and_latest_marks_the_newest_with_figures(db: Database) -> None:
    delivery = published(db, timedelta(days=8))
    assert record(db, Reading(delivery, HOUR, NOW, views=10)) == 1
    assert record(db, Reading(delivery, HOUR, NOW, views=99)) == 0  # a restart or another daemon: kept as it was
    record(db, Reading(delivery, DAY, NOW, error="timed out"))
    assert rows(db) == [(delivery, HOUR, True, 10, False, None), (delivery, DAY, False, None, False, "timed out")]
    record(db, Reading(delivery, 7 * DAY, NOW, views=50))
    assert [(age, latest) for _, age, latest, *_ in rows(db)] == [(HOUR, False), (DAY, False), (7 * DAY, True)]


def test_a_gone_reading_keeps_latest_on_the_last_figures(db: Database) -> None:
    delivery = published(db, timedelta(days=2))
    record(db, Reading(delivery, HOUR, NOW, views=10), Reading(delivery, DAY, NOW, gone=True))
    assert [(age, latest, gone) for _, age, latest, _, gone, _ in rows(db)] == [(HOUR, True, False), (DAY, False, True)]


def test_two_daemons_storing_the_same_readings_at_once_store_each_once(db: Database) -> None:
    ids = [published(db, timedelta(days=2)) for _ in range(20)]
    start = threading.Barrier(2)
    stored: list[int] = []

    def daemon(views: int) -> None:
        start.wait()
        for delivery in ids:
            stored.append(
                record(db, Reading(delivery, HOUR, NOW, views=views), Reading(delivery, DAY, NOW, views=views))
            )

    threads = [threading.Thread(target=daemon, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(stored) == 40
    r = result_readings.c
    with db.read() as session:
        conn = session.connection()
        assert conn.execute(select(func.count()).select_from(result_readings)).scalar() == 40
        latest = conn.execute(select(r.delivery_id, r.age).where(r.latest)).all()
    assert sorted(latest) == [(delivery, DAY) for delivery in ids]


def test_the_audience_is_one_row_per_channel_and_day(db: Database) -> None:
    with db.read() as session:
        assert store.audience_due(session, ["vk", "tg"], NOW.date()) == ["vk", "tg"]
    with db.write() as session:
        store.record_audience(session, "vk", 1200, NOW)
        store.record_audience(session, "vk", 1210, NOW + timedelta(hours=1))  # the same day: replaced
        store.record_audience(session, "vk", 1250, NOW + timedelta(days=1))
    with db.read() as session:
        assert store.audience_due(session, ["vk", "tg"], NOW.date()) == ["tg"]
        assert store.audience_of(session, ["vk", "tg"]) == {"vk": ((NOW + timedelta(days=1)).date(), 1250)}
        a = audience_readings.c
        days = session.connection().execute(select(a.day, a.members).order_by(a.day)).all()
    assert [tuple(d) for d in days] == [(NOW.date(), 1210), ((NOW + timedelta(days=1)).date(), 1250)]


def test_a_posts_history_lists_each_delivery_with_its_readings(db: Database) -> None:
    delivery = published(db, timedelta(days=2))
    record(db, Reading(delivery, DAY, NOW, views=20), Reading(delivery, HOUR, NOW - timedelta(days=1), views=5))
    with db.read() as session:
        post_id = session.connection().execute(select(deliveries.c.post_id).where(deliveries.c.id == delivery)).scalar()
        assert post_id is not None
        history = store.history(session, post_id)
        assert store.history(session, post_id + 1000) is None
    assert history is not None
    [entry] = history
    assert (entry.channel, entry.status) == ("vk", "published")
    assert [(r.age, r.views, r.latest) for r in entry.readings] == [(HOUR, 5, False), (DAY, 20, True)]


def test_the_due_readings_range_over_recent_published_deliveries_by_index(tmp_path: Path) -> None:
    # At 1,000,000 published deliveries a scan would cost the job seconds every run (SQLite's plan shows it).
    database = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    database.check_schema(create=True)
    statements: list[tuple[str, Any]] = []
    with database.read() as session:
        conn = session.connection()
        event.listen(conn, "before_cursor_execute", lambda *args: statements.append((args[2], args[3])))
        store.due_readings(session, ["vk", "tg"], AGES, NOW, 100)
        statement, params = statements[-1]
        steps = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()]
    database.dispose()
    assert not [s for s in steps if s.startswith("SCAN")], steps
    assert any("ix_deliveries_status_published_at" in s for s in steps), steps
    assert any("uq_result_readings_delivery_id_age" in s for s in steps), steps
