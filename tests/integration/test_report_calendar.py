"""The report's calendar: each channel's next four weeks, its posts, its empty slots and where the mix rule binds.

The clock is pinned to Monday 23 November 2026, 12:00 UTC (test_cli's ``NOW``); ``berlin`` posts on Tuesdays and
Fridays at 09:00 UTC, ``ny`` at 15:00 UTC; the mix rule is the default, at most 2 commercial in any 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from scheduler import timeline
from scheduler.config import Config, load_config
from scheduler.db import Database
from scheduler.placement import Planner
from scheduler.report_calendar import DAYS, Calendar, Entry, build_calendar
from scheduler.report_page_calendar import PER_DAY, calendar_section
from scheduler.tables import Status, deliveries
from tests.conftest import utc, write_config
from tests.integration.test_cli import CHANNELS, NOW


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[tuple[Config, Database]]:
    config = load_config(write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False), env={})
    db = Database(config.database_url)
    db.check_schema(create=True)
    yield config, db
    db.dispose()


def _queue(db: Database, channel: str, *posts: tuple[datetime, str]) -> list[int]:
    with db.write_core() as conn:
        return [
            timeline.insert_post(
                conn,
                text=f"{category} post",
                link=None,
                category=category,
                media=[],
                now=NOW,
                plan=[(channel, "outbox", when, True)],
            )
            for when, category in posts
        ]


def test_the_calendar_shows_posts_empty_slots_and_where_the_mix_binds(setup: tuple[Config, Database]) -> None:
    config, db = setup
    [published] = _queue(db, "berlin", (utc(2026, 11, 23, 8), "news"))
    with db.write_core() as conn:
        conn.execute(update(deliveries).where(deliveries.c.post_id == published).values(status=Status.PUBLISHED))
    _queue(
        db,
        "berlin",
        (utc(2026, 11, 24, 9), "commercial"),
        (utc(2026, 11, 27, 9), "educational"),
        (utc(2026, 12, 1, 9), "educational"),
    )
    # Three commercial posts in a row on ny (placed with --force): each is in a window over the limit.
    _queue(
        db, "ny", *[(utc(2026, 11, day, 15), "commercial") for day in (24, 27)], (utc(2026, 12, 1, 15), "commercial")
    )

    calendar = build_calendar(config, db, NOW)

    assert (calendar.today, calendar.first, calendar.last) == (
        date(2026, 11, 23),
        date(2026, 11, 23),
        date(2026, 12, 27),
    )
    assert [len(week) for week in calendar.weeks()] == [7] * 5
    berlin = [e for e in calendar.entries if e.channel == "berlin"]
    # Monday's published post (earlier this week), three queued, then the empty slots of the four weeks.
    assert [(e.at, e.category, e.status) for e in berlin[:4]] == [
        (utc(2026, 11, 23, 8), "news", "published"),
        (utc(2026, 11, 24, 9), "commercial", "queued"),
        (utc(2026, 11, 27, 9), "educational", "queued"),
        (utc(2026, 12, 1, 9), "educational", "queued"),
    ]
    free = [e.at for e in berlin[4:]]
    assert free == [utc(2026, 12, d, 9) for d in (4, 8, 11, 15, 18)]
    with db.read() as session:  # the empty slots are the planner's, those the evergreen pool would fill
        assert free == Planner(session, config.channel("berlin"), NOW).empty_slots(NOW + timedelta(days=DAYS))
    assert all(e.post_id is None for e in berlin[4:])
    assert not any(e.mix_binds for e in berlin)  # one commercial in four: room for another anywhere
    assert calendar.rules == {"berlin": "at most 50% of any 4", "ny": "at most 50% of any 4"}

    ny = [e for e in calendar.entries if e.channel == "ny"]
    assert [e.mix_binds for e in ny if e.post_id is not None] == [True, True, True]
    assert [e.at for e in ny if e.post_id is None] == [utc(2026, 12, d, 15) for d in (4, 8, 11, 15, 18)]
    assert all(e.mix_binds for e in ny if e.post_id is None)  # a fourth commercial post would make it worse
    assert calendar.on(date(2026, 11, 24)) == [e for e in calendar.entries if e.at.date() == date(2026, 11, 24)]
    assert [e.local_time for e in calendar.on(date(2026, 11, 24))] == ["10:00", "10:00"]


def test_the_calendar_of_one_channel_and_of_an_empty_queue(setup: tuple[Config, Database]) -> None:
    config, db = setup
    calendar = build_calendar(config, db, NOW, ["ny"])
    assert {e.channel for e in calendar.entries} == {"ny"}
    assert len(calendar.entries) == 8  # two slots a week for four weeks, all empty
    assert not any(e.mix_binds for e in calendar.entries)
    assert list(calendar.rules) == ["ny"]


def test_the_slots_after_two_commercial_posts_are_closed_to_a_third(setup: tuple[Config, Database]) -> None:
    config, db = setup
    _queue(db, "berlin", (utc(2026, 11, 24, 9), "commercial"), (utc(2026, 11, 27, 9), "commercial"))
    _queue(db, "berlin", (utc(2026, 12, 8, 9), "educational"), (utc(2026, 12, 11, 9), "educational"))
    entries = [e for e in build_calendar(config, db, NOW, ["berlin"]).entries if e.post_id is None]
    # 1 and 4 December follow the two commercial posts; from 15 December the two educational ones make room.
    assert [(e.at.day, e.mix_binds) for e in entries] == [(1, True), (4, True), (15, False), (18, False)]


def test_a_busy_day_shows_its_first_entries_and_counts_the_rest() -> None:
    zone = ZoneInfo("UTC")
    day = [Entry(utc(2026, 11, 24, 9, i), f"ch{i}", zone, i, "news", "queued", "<b>text</b>") for i in range(10)]
    day += [Entry(utc(2026, 11, 24, 10, i), f"ch{i}", zone) for i in range(3)]
    calendar = Calendar(date(2026, 11, 23), date(2026, 11, 23), date(2026, 11, 29), tuple(day), {"ch0": "off"})
    page = calendar_section(calendar)
    assert page.count('class="slot') == PER_DAY
    assert "and 2 posts and 3 free slots more" in page
    assert "&lt;b&gt;text&lt;/b&gt;" in page and "<b>" not in page
    assert "Commercial posts: off." in page
