"""The report's figures table (scheduler/store/figures.py), on SQLite and PostgreSQL: filled whole once per channel
and zone, then kept by catch-ups from the last one; kept current by the stores that change its sources (a new latest
reading, an audience reading, a deletion), so that it always equals a table rebuilt from scratch."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from scheduler.db import Database
from scheduler.store import deletions, figures
from scheduler.store import results as readings
from scheduler.store.results import Reading
from scheduler.tables import deliveries, delivery_figures, figure_channels, posts

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # a Friday: 15:00 in Moscow
MOSCOW = {"vk": ZoneInfo("Europe/Moscow")}
Figures = dict[int, tuple[object, ...]]


def publish(db: Database, at: datetime, *, category: str = "educational", slotted: bool = False) -> int:
    """A post with one delivery on vk published at ``at`` (due at the same time); returns the delivery's id."""
    with db.write_core() as conn:
        post_id = conn.execute(
            posts.insert().values(text="x", category=category, media=[], created_at=at, campaign="spring")
        ).inserted_primary_key[0]
        return int(
            conn.execute(
                deliveries.insert().values(
                    post_id=post_id,
                    channel="vk",
                    network="vk",
                    status="published",
                    due_at=at,
                    slotted=slotted,
                    key=f"k{post_id}",
                    published_at=at,
                    remote_id=str(post_id),
                    updated_at=at,
                )
            ).inserted_primary_key[0]
        )


def catch_up(db: Database, now: datetime = NOW, zones: dict[str, tzinfo] | None = None) -> Figures:
    with db.write_core() as conn:
        figures.catch_up(conn, MOSCOW if zones is None else zones, now)
    return table(db)


def table(db: Database) -> Figures:
    f = delivery_figures.c
    columns = [c for c in delivery_figures.c if c.name not in ("delivery_id", "sample")]
    with db.read_core() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(select(f.delivery_id, *columns))}


def rebuilt(db: Database) -> Figures:
    """The table as a first catch-up fills it from the sources."""
    with db.write_core() as conn:
        conn.execute(delete(delivery_figures))
        conn.execute(delete(figure_channels))
    return catch_up(db)


def reading(db: Database, delivery_id: int, age: int, **figures_: int | None) -> None:
    with db.write() as session:
        readings.record_readings(session, [Reading(delivery_id, age, NOW, **figures_)])


def audience(db: Database, members: int, at: datetime) -> None:
    with db.write() as session:
        readings.record_audience(session, "vk", members, at)


def test_a_channel_is_filled_whole_then_from_its_last_catch_up(db: Database) -> None:
    old = publish(db, NOW - timedelta(days=400), slotted=True)
    recent = publish(db, NOW)
    rows = catch_up(db)
    assert set(rows) == {old, recent}
    # channel, category, campaign, slot, weekday, hour, published, measured, views, likes, reposts, comments, eng.
    assert rows[recent] == ("vk", "educational", "spring", -1, 4, 15, int(NOW.timestamp()), 0, *[None] * 5)
    assert rows[old][3:6] == (3 * 1440 + 15 * 60, 3, 15)  # Thursday 15:00 Moscow, the slot of a slotted post
    assert catch_up(db) == rows
    # a publication stamped a little before the last catch-up (a slow attempt, another daemon's clock) is found
    late = publish(db, NOW - timedelta(hours=1))
    later = publish(db, NOW + timedelta(hours=1))
    assert set(catch_up(db, NOW + timedelta(hours=2))) == {old, recent, late, later}


def test_a_new_zone_computes_the_channel_again(db: Database) -> None:
    one = publish(db, NOW)
    catch_up(db)
    assert table(db)[one][4:6] == (4, 15)
    assert catch_up(db, zones={"vk": ZoneInfo("America/New_York")})[one][4:6] == (4, 7)  # 07:00 in New York


def test_readings_and_audience_readings_keep_the_rows_as_a_rebuild_gives_them(db: Database) -> None:
    first = publish(db, NOW - timedelta(days=3))
    second = publish(db, NOW - timedelta(days=2))
    catch_up(db)
    audience(db, 1000, NOW - timedelta(days=3))
    reading(db, first, 3600, views=500, likes=10, reposts=2, comments=3)
    assert table(db)[first][7:] == (1, 500, 10, 2, 3, 15.0)
    assert table(db)[second][7:] == (0, None, None, None, None, None)
    reading(db, second, 3600, views=None, likes=4, reposts=None, comments=None)
    assert table(db)[second][-1] == 4.0  # the latest audience before its day: 1,000
    audience(db, 2000, NOW - timedelta(days=2))  # its own day's: 2,000
    assert table(db)[second][-1] == 2.0
    assert table(db)[first][-1] == 15.0
    audience(db, 500, NOW - timedelta(days=5))  # an earlier first reading changes neither
    reading(db, first, 86400, views=900, likes=20, reposts=2, comments=3)  # a newer reading
    reading(db, first, 3600 * 2, views=1, likes=1, reposts=1, comments=1)  # an older age: not the latest
    reading(db, second, 7 * 86400, error="timeout")  # a failed reading changes nothing
    assert table(db)[first][7:] == (1, 900, 20, 2, 3, 25.0)
    assert table(db) == rebuilt(db)


def test_a_first_audience_reading_gives_the_earlier_posts_their_engagement(db: Database) -> None:
    early = publish(db, NOW - timedelta(days=10))
    catch_up(db)
    reading(db, early, 3600, likes=5)
    assert table(db)[early][-1] is None  # no audience known yet
    audience(db, 250, NOW)
    assert table(db)[early][-1] == 20.0
    assert table(db) == rebuilt(db)


def test_a_deleted_post_leaves_the_figures(db: Database) -> None:
    gone = publish(db, NOW - timedelta(days=1))
    kept = publish(db, NOW - timedelta(days=1))
    catch_up(db)
    with db.write() as session:
        deletions.request_deletion(session, [gone], NOW)
    with db.write() as session:
        deletion = deletions.claim_deletion(session, gone, NOW, "me", timedelta(minutes=5))
        assert deletion is not None
        assert deletions.record_deleted(session, deletion, NOW)
    assert set(table(db)) == {kept}
    assert set(catch_up(db, NOW + timedelta(hours=1))) == {kept}


def test_two_catch_ups_at_once_add_each_row_once(db: Database) -> None:
    """Two daemons (or a daemon and ``smm report``) catching up together: the second waits for the first's rows
    and adds none of them again (PostgreSQL: the unique index and ON CONFLICT DO NOTHING; SQLite: the write lock)."""
    for days in range(5):
        publish(db, NOW - timedelta(days=days))
    failures: list[BaseException] = []

    def other() -> None:
        try:
            with db.write_core() as conn:
                figures.catch_up(conn, MOSCOW, NOW)
        except BaseException as exc:
            failures.append(exc)

    with db.write_core() as conn:
        figures.catch_up(conn, MOSCOW, NOW)
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)  # the other catch-up runs into this one's uncommitted rows (or lock) and waits
    thread.join(30)
    assert not thread.is_alive() and failures == []
    assert len(table(db)) == 5


def test_a_fill_in_steps_adds_every_row_and_what_was_published_meanwhile(db: Database) -> None:
    """The daemon fills a channel in short transactions (``batch``); a delivery queued before the fill began and
    published while it ran (its id already passed) is added by the catch-up after the fill."""
    queued = publish(db, NOW)  # the lowest id
    ids = [publish(db, NOW - timedelta(days=days)) for days in range(7)]
    with db.write_core() as conn:
        conn.execute(deliveries.update().where(deliveries.c.id == queued).values(status="queued", published_at=None))
    steps = []
    with db.write_core() as conn:
        steps.append(figures.catch_up(conn, MOSCOW, NOW, batch=3))
    assert steps == [False] and len(table(db)) == 3
    with db.write_core() as conn:  # published now, behind the fill
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == queued)
            .values(status="published", published_at=NOW + timedelta(minutes=5))
        )
    while not steps[-1]:
        with db.write_core() as conn:
            steps.append(figures.catch_up(conn, MOSCOW, NOW + timedelta(minutes=10), batch=3))
    assert steps == [False, False, True]  # 3 + 3 + the last one
    assert set(table(db)) == set(ids)
    assert set(catch_up(db, NOW + timedelta(minutes=20))) == {*ids, queued}
    assert table(db) == rebuilt(db)
