"""The placement planner on a real timeline: what it reads once, what it keeps in memory, and the late policy's slot.

The clock is pinned to Monday 23 November 2026, 12:00 UTC; ``berlin`` is an outbox on the default slots (Tuesday
and Friday at 10:00 Berlin time, 09:00 UTC), as in test_cli.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from scheduler import timeline
from scheduler.config import Config, load_config
from scheduler.db import Database
from scheduler.placement import Planner
from tests.conftest import utc, write_config
from tests.integration.test_cli import CHANNELS, NOW

TUE, FRI, TUE2, FRI2, TUE3 = (
    utc(2026, 11, 24, 9),
    utc(2026, 11, 27, 9),
    utc(2026, 12, 1, 9),
    utc(2026, 12, 4, 9),
    utc(2026, 12, 8, 9),
)


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[tuple[Config, Database]]:
    config = load_config(write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False), env={})
    db = Database(config.database_url)
    db.check_schema(create=True)
    yield config, db
    db.dispose()


def _queue(db: Database, *deliveries: tuple[datetime, bool]) -> None:
    with db.write_core() as conn:
        for when, slotted in deliveries:
            timeline.insert_post(
                conn,
                text="q",
                link=None,
                category="educational",
                media=[],
                now=NOW,
                plan=[("berlin", "outbox", when, slotted)],
            )


def test_the_planner_keeps_what_it_placed_until_it_is_written(setup: tuple[Config, Database]) -> None:
    config, db = setup
    berlin = config.channel("berlin")
    _queue(db, (TUE, True))
    with db.write_core() as conn:
        planner = Planner(conn, berlin, NOW)
        assert planner.slot_for("educational") == FRI
        planner.reserve(TUE2, "educational")  # an explicit time, not written yet, is taken
        assert planner.slot_for("educational") == FRI2
        assert planner.find_slot("educational") == planner.find_slot("educational") == TUE3  # looked at, not taken
        assert planner.fill([("educational", 0), ("news", 0)]) == [TUE3, utc(2026, 12, 11, 9)]


def test_reslot_takes_the_first_slot_from_now_that_no_delivery_holds(setup: tuple[Config, Database]) -> None:
    config, db = setup
    # The queue ends on Friday; the Tuesday before it is held by an explicit post, the one after by a queued one.
    _queue(db, (TUE, False), (FRI, True), (TUE2, False))
    with db.write_core() as conn:
        planner = Planner(conn, config.channel("berlin"), NOW)
        assert [planner.reslot(), planner.reslot()] == [FRI2, TUE3]
        assert planner.slot_for("educational") == utc(2026, 12, 11, 9)  # the queue's end, past the reslotted ones


def test_an_import_that_breaks_the_mix_names_each_commercial_row_once(setup: tuple[Config, Database]) -> None:
    config, db = setup
    _queue(db, (TUE, True))
    with db.read_core() as conn:
        planner = Planner(conn, config.channel("berlin"), NOW)
        times = planner.fill([("commercial", 2), ("commercial", 3), ("news", 4), ("commercial", 5)])
        assert times == [FRI, TUE2, FRI2, TUE3]
        # at most 50% of any 4: rows 2 to 5 hold three commercial posts, and row 5 is the one that completes them
        assert [(b.order, b.commercial) for b in planner.breaks()] == [(5, 3)]
