"""The daemon fills empty slots from the evergreen pool: through the fake Telegram Bot API (a slot filled, the post
published at it with fresh UTM tags and hashtags, logged; a passing error retried) and the fake VK (a lost answer
read back, published once), the rules on a real timeline (the mix rule, the neighbours, the cooldown), and two
daemons on one PostgreSQL that never fill one slot twice."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from scheduler import evergreen, takedown, watch
from scheduler.channels import AdapterFactory
from scheduler.config import Config, load_config
from scheduler.daemon import Daemon, open_daemon
from scheduler.daemon.core import build_adapters
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.service import cancel_post, show_post
from scheduler.store import pool as pool_rows
from scheduler.tables import deliveries
from tests.conftest import write_config
from tests.fakes.base import Fault
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.telegram import error_body as telegram_error
from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk
from tests.support import captured_log

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)  # a Tuesday; the slots are daily at 10:00 UTC
SLOT = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)

TELEGRAM = """
[utm]
enabled = true
campaign = "always-on"

[evergreen]
fill_ahead = "2d"
cooldown = "30d"

[schedule]
slots = ["daily 10:00"]

[[channels]]
name = "tg"
network = "telegram"
chat_id = "@testchannel"
token_env = "SMM_TG_TOKEN"
api_url = "{url}"
hashtags = ["#acme"]
"""


@pytest.fixture
def logged() -> Iterator[list[str]]:
    with captured_log(("smm",), logging.INFO) as lines:
        yield lines


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    monkeypatch.setenv("SMM_TG_TOKEN", DEFAULT_TOKEN)
    try:
        yield fake
    finally:
        fake.stop()


def run_once_at(config: Path, when: datetime) -> int:
    """``smm run --once`` with the daemon's clock at ``when``."""
    daemon = open_daemon(str(config), once=True, clock=lambda: when)
    return asyncio.run(daemon.main())


def said(logged: list[str], text: str) -> bool:
    return any(text in line for line in logged)


def deliveries_of(db_url: str) -> list[tuple[int, str, datetime, str, int | None]]:
    db = Database(db_url)
    try:
        with db.read() as session:
            d = deliveries.c
            query = select(d.post_id, d.channel, d.due_at, d.status, d.pool_use).order_by(d.due_at, d.id)
            return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]
    finally:
        db.dispose()


def test_the_daemon_fills_an_empty_slot_and_publishes_it_with_fresh_tags(
    tmp_path: Path, db_url: str, telegram: FakeTelegram, logged: list[str]
) -> None:
    config = write_config(tmp_path / "config.toml", db_url, TELEGRAM.format(url=telegram.url), outbox=False)
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    story = NewPost(text="How we roast our coffee https://acme.example/roast", evergreen=True)
    add_post(cfg, db, story, T0 - timedelta(days=1))
    db.dispose()

    assert run_once_at(config, T0) == 0  # fills 1 Jan 10:00; 2 Jan 10:00 stays empty (the cooldown)
    assert deliveries_of(db_url) == [(1, "tg", SLOT, "queued", 1)]
    assert said(
        logged,
        "INFO smm.daemon: slot Tue 2030-01-01 10:00 UTC on tg filled from the evergreen pool with post 1, never used",
    )
    assert said(
        logged, "WARNING smm.daemon: slot Wed 2030-01-02 10:00 UTC on tg stays empty: no post of its evergreen pool"
    )
    assert telegram.published == []

    cfg = load_config(config)
    db = Database(cfg.database_url)
    add_post(cfg, db, NewPost(text="Meet the team", evergreen=True), T0)
    db.dispose()

    assert run_once_at(config, SLOT + timedelta(seconds=1)) == 0  # at the slot: published like any delivery
    (message,) = telegram.published
    assert message["text"] == (
        "How we roast our coffee https://acme.example/roast?utm_source=telegram&utm_medium=social"
        "&utm_campaign=always-on\n\n#acme"
    )
    assert said(logged, "slot Wed 2030-01-02 10:00 UTC on tg filled from the evergreen pool with post 2, never used")
    assert run_once_at(config, SLOT + timedelta(days=1, seconds=1)) == 0
    assert [m["text"].split("\n")[0] for m in telegram.published] == [
        "How we roast our coffee https://acme.example/roast?utm_source=telegram&utm_medium=social&utm_campaign=always-on",
        "Meet the team",
    ]
    assert [row[3:] for row in deliveries_of(db_url)] == [("published", 1), ("published", 1)]

    # A month on, the cooldown is over: post 1 (used longest ago, and not the last one published) goes again.
    assert run_once_at(config, T0 + timedelta(days=31)) == 0
    assert deliveries_of(db_url)[2:] == [
        (1, "tg", SLOT + timedelta(days=31), "queued", 2),
        (2, "tg", SLOT + timedelta(days=32), "queued", 2),
    ]
    assert said(
        logged, "slot Fri 2030-02-01 10:00 UTC on tg filled from the evergreen pool with post 1, last used 30 days ago"
    )


RETRY_FAST = '[retry]\nin_call_attempts = 1\nbackoff_base = "1s"\n'

VK = """
[evergreen]
fill_ahead = "2d"

[schedule]
slots = ["daily 10:00"]

[[channels]]
name = "vk"
network = "vk"
group_id = {group}
token_env = "SMM_VK_TOKEN"
api_url = "{url}"
timeout = "1s"
"""


def filled(config: Path, text: str) -> None:
    """``text`` added to the pool a day before ``T0``, and the daemon's run at ``T0`` queues it into ``SLOT``."""
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    add_post(cfg, db, NewPost(text=text, evergreen=True), T0 - timedelta(days=1))
    db.dispose()
    assert run_once_at(config, T0) == 0


def test_a_fill_that_meets_a_passing_error_is_retried(
    tmp_path: Path, db_url: str, telegram: FakeTelegram, logged: list[str]
) -> None:
    body = TELEGRAM.format(url=telegram.url)
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=RETRY_FAST)
    filled(config, "How we roast our coffee")
    assert deliveries_of(db_url) == [(1, "tg", SLOT, "queued", 1)]

    telegram.inject("sendMessage", Fault.respond(502, telegram_error(502, "Bad Gateway")))
    assert run_once_at(config, SLOT + timedelta(seconds=1)) == 0
    assert deliveries_of(db_url) == [(1, "tg", SLOT, "queued", 1)] and telegram.published == []
    assert said(logged, "post 1 to tg: temporary failure (")
    assert run_once_at(config, SLOT + timedelta(minutes=1)) == 0  # after the backoff: sent again, once
    assert deliveries_of(db_url) == [(1, "tg", SLOT, "published", 1)]
    assert len(telegram.published) == 1 and len(telegram.calls("sendMessage")) == 2


def test_a_fill_whose_answer_is_lost_is_read_back_and_published_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, logged: list[str]
) -> None:
    fake = FakeVk(guid_window=0).start()  # no guid to save a blind resend: only the read-back keeps it single
    monkeypatch.setenv("SMM_VK_TOKEN", USER_TOKEN)
    try:
        fake.advance((SLOT - datetime.now(UTC)).total_seconds())  # the network's clock is the daemon's
        body = VK.format(group=GROUP_ID, url=fake.url)
        config = write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=RETRY_FAST)
        filled(config, "Meet the team")
        assert deliveries_of(db_url) == [(1, "vk", SLOT, "queued", 1)]

        fake.inject("wall.post", Fault.drop_after())  # VK posts it, the answer is lost
        assert run_once_at(config, SLOT + timedelta(seconds=1)) == 0
        assert deliveries_of(db_url) == [(1, "vk", SLOT, "published", 1)]
        assert len(fake.published) == len(fake.calls("wall.post")) == 1
        db = Database(db_url)
        try:
            (attempt,) = show_post(db, 1)["deliveries"][0]["history"]
        finally:
            db.dispose()
        assert attempt["outcome"] == "published"
        assert attempt["error"] == "found on the network after an unclear outcome"
    finally:
        fake.stop()


def test_a_post_taken_down_leaves_the_pool(tmp_path: Path, db_url: str, telegram: FakeTelegram) -> None:
    config = write_config(tmp_path / "config.toml", db_url, TELEGRAM.format(url=telegram.url), outbox=False)
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    try:
        add_post(cfg, db, NewPost(text="A sale that ends", evergreen=True), T0 - timedelta(days=1))
        assert run_once_at(config, T0) == 0
        assert run_once_at(config, SLOT + timedelta(seconds=1)) == 0
        request = takedown.request_deletion(cfg, db, 1, SLOT + timedelta(hours=1))
        assert "tg: taken out of the evergreen pool" in request.lines
        assert evergreen.list_pool(cfg, db, SLOT) == []
        with db.write() as session:
            assert evergreen.fill_slots(session, cfg.channel("tg"), T0 + timedelta(days=40)).fills == []
    finally:
        db.dispose()


# -- the rules on a real timeline ---------------------------------------------------------------------------------

OUTBOX = '[evergreen]\ncooldown = "5d"\n[schedule]\nslots = ["daily 10:00"]\n'


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[tuple[Config, Database]]:
    config = load_config(write_config(tmp_path / "config.toml", db_url, extra_top=OUTBOX))
    db = Database(config.database_url)
    db.check_schema()
    yield config, db
    db.dispose()


def pool(config: Config, db: Database, text: str, category: str = "educational") -> int:
    view = add_post(config, db, NewPost(text=text, category=category, evergreen=True), T0 - timedelta(days=30))
    return int(view["id"])


def fill(config: Config, db: Database, now: datetime = T0) -> evergreen.FillResult:
    with db.write() as session:
        return evergreen.fill_slots(session, config.channel("outbox"), now)


def test_fills_take_every_empty_slot_within_fill_ahead_in_the_pools_order(world: tuple[Config, Database]) -> None:
    config, db = world
    a, b, c = pool(config, db, "a"), pool(config, db, "b"), pool(config, db, "c")
    queued = add_post(config, db, NewPost(text="queued", at="2030-01-02T10:00"), T0)["id"]
    result = fill(config, db)
    # 1 Jan and 3 Jan are empty within two days (to 3 Jan 09:00: only 1 Jan); 2 Jan is the queued post's.
    assert [(f.slot, f.post_id) for f in result.fills] == [(SLOT, a)]
    result = fill(config, db, T0 + timedelta(days=2))  # 3 Jan 10:00 and 4 Jan 10:00
    assert [(f.post_id, f.use) for f in result.fills] == [(b, 1), (c, 1)]
    assert [row[0] for row in deliveries_of(db.url)] == [a, queued, b, c]
    assert fill(config, db, T0 + timedelta(days=2)).fills == []  # nothing left empty


def test_the_mix_rule_keeps_an_offer_out_of_a_slot_where_it_would_break_it(world: tuple[Config, Database]) -> None:
    config, db = world
    for day in (1, 2):  # two offers queued before the slot: a third in a row breaks "at most 2 of any 4"
        when = (T0 - timedelta(days=day)).replace(hour=10).isoformat()
        add_post(
            config, db, NewPost(text=f"offer {day}", category="commercial", at=when, force=True), T0 - timedelta(days=5)
        )
    offer = pool(config, db, "evergreen offer", "commercial")
    assert fill(config, db).fills == []
    story = pool(config, db, "evergreen story")
    assert [f.post_id for f in fill(config, db).fills] == [story]
    assert offer != story


def test_never_twice_in_a_row_and_never_within_the_cooldown(world: tuple[Config, Database]) -> None:
    config, db = world
    only = pool(config, db, "the only one")
    result = fill(config, db, T0 + timedelta(days=1))  # 2 and 3 Jan
    assert [f.slot.day for f in result.fills] == [2]
    assert [s.day for s in result.unfilled] == [3]  # within 5 days of its use, and the post just before it
    result = fill(config, db, T0 + timedelta(days=6))  # 7 and 8 Jan: the cooldown is over, but it went out last
    assert (result.fills, [s.day for s in result.unfilled]) == ([], [7, 8])
    other = pool(config, db, "another one")
    result = fill(config, db, T0 + timedelta(days=6))
    assert [(f.slot.day, f.post_id, f.use) for f in result.fills] == [(7, other, 1), (8, only, 2)]


def test_a_cancelled_fill_is_not_put_straight_back(world: tuple[Config, Database]) -> None:
    config, db = world
    first = pool(config, db, "first")
    (filled,) = fill(config, db, T0 + timedelta(hours=2)).fills  # 2 Jan 10:00 (1 Jan's has passed; 3 Jan: cooldown)
    cancel_post(db, first, T0)
    result = fill(config, db, T0 + timedelta(hours=2))
    assert result.fills == [] and filled.slot in result.unfilled  # only "first", cancelled there: the slot waits
    second = pool(config, db, "second")
    assert [(f.slot, f.post_id) for f in fill(config, db, T0 + timedelta(hours=2)).fills] == [(filled.slot, second)]
    assert [(e["post_id"], e["uses"]) for e in evergreen.list_pool(config, db, T0)] == [(first, 0), (second, 1)]


def test_an_empty_pool_or_a_removed_post_fills_nothing(world: tuple[Config, Database]) -> None:
    config, db = world
    assert fill(config, db) == evergreen.FillResult([], [])
    post_id = pool(config, db, "soon gone")
    evergreen.remove_from_pool(db, post_id, T0)
    assert fill(config, db).fills == []


def test_a_fill_is_counted_in_the_pools_uses(world: tuple[Config, Database]) -> None:
    config, db = world
    post_id = pool(config, db, "counted")
    fill(config, db)
    (entry,) = evergreen.list_pool(config, db, T0)
    assert (entry["post_id"], entry["uses"], entry["last_used"]) == (post_id, 1, "2030-01-01T10:00:00Z")
    assert entry["next_use"] == "2030-01-06T10:00:00Z"


# -- several daemons on one PostgreSQL ----------------------------------------------------------------------------


def test_two_fills_at_once_never_take_one_slot_twice(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The channel's lock is taken before its slots are read: the second fill waits, then finds them taken."""
    config = load_config(write_config(tmp_path / "config.toml", postgres_url, extra_top=OUTBOX))
    setup = Database(config.database_url)
    setup.check_schema()
    for name in ("a", "b", "c"):
        pool(config, setup, name)
    setup.dispose()
    real = pool_rows.pool_posts

    def slow(session: Any, channels: Any = None) -> Any:
        found = real(session, channels)
        time.sleep(0.3)  # both transactions are open at once: without the lock, both would see the slots empty
        return found

    monkeypatch.setattr(pool_rows, "pool_posts", slow)
    start = threading.Barrier(2)
    results: list[evergreen.FillResult] = []

    def daemon() -> None:
        db = Database(config.database_url)
        try:
            start.wait()
            with db.write() as session:
                results.append(evergreen.fill_slots(session, config.channel("outbox"), T0 + timedelta(days=1)))
        finally:
            db.dispose()

    threads = [threading.Thread(target=daemon) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(len(r.fills) for r in results) == [0, 2]  # 2 and 3 Jan, by one of them
    rows = deliveries_of(config.database_url)
    assert len(rows) == len({row[2] for row in rows}) == 2


def test_two_daemons_fill_a_channel_from_one_of_them_only(tmp_path: Path, postgres_url: str) -> None:
    config = load_config(write_config(tmp_path / "config.toml", postgres_url, extra_top=OUTBOX))
    setup = Database(config.database_url)
    setup.check_schema()
    for name in ("a", "b", "c"):
        pool(config, setup, name)
    setup.dispose()

    async def scenario() -> list[int]:
        daemons = [
            Daemon(config, Database(config.database_url), AdapterFactory(), clock=lambda: T0, load=lambda: config)
            for _ in range(2)
        ]
        try:
            for d in daemons:
                d.rt.adapters, d.rt.broken = build_adapters(d.factory, config)
                await d.membership.join(T0)
            return list(await asyncio.gather(*(d.background.pool.fill() for d in daemons)))
        finally:
            for d in daemons:
                await d.factory.aclose()
                d.release()

    filled = asyncio.run(scenario())
    assert sorted(filled) == [0, 2]  # 1 and 2 Jan, by one of them
    rows = deliveries_of(config.database_url)
    assert len(rows) == len({row[2] for row in rows})


def test_a_fill_waits_while_the_daemon_is_busy_publishing(world: tuple[Config, Database]) -> None:
    config, db = world
    pool(config, db, "a")
    pool(config, db, "b")
    daemon = Daemon(config, Database(config.database_url), AdapterFactory(), clock=lambda: T0, load=lambda: config)
    daemon.rt.adapters, daemon.rt.broken = build_adapters(daemon.factory, config)
    busy = [3]

    def idle(within: float) -> bool:
        if busy[0]:
            assert deliveries_of(db.url) == []  # nothing written while a post is being published
            busy[0] -= 1
            return False
        return True

    daemon.background.pool.idle = idle
    started = time.monotonic()
    try:
        assert asyncio.run(daemon.background.pool.fill()) == 2  # 1 and 2 Jan, once the daemon was idle
    finally:
        daemon.release()
    assert busy == [0] and time.monotonic() - started >= 1.0
    assert len(deliveries_of(db.url)) == 2


# -- the dry-queue warning counts the pool ------------------------------------------------------------------------


def summary(config: Config, db: Database) -> list[tuple[int, str, bool]]:
    with db.read() as session:
        return [(line.level, line.text, line.dry) for line in watch.summary(config, T0, session)]


def test_no_dry_queue_warning_while_the_pool_can_fill_every_empty_slot(world: tuple[Config, Database]) -> None:
    config, db = world
    add_post(config, db, NewPost(text="queued", at="2030-01-01T10:00"), T0)
    for name in "abcde":  # 5 posts, a 5-day cooldown: enough for the 6 empty daily slots of the coming 7 days
        pool(config, db, name)
    assert summary(config, db) == [
        (logging.INFO, "channel outbox: 1 queued, next Tue 2030-01-01 10:00 UTC", False),
        (
            logging.INFO,
            "channel outbox: the queue runs dry after Tue 2030-01-01; its evergreen pool fills the empty "
            "slots within 7 days",
            False,
        ),
    ]


def test_the_dry_queue_warning_names_the_slot_the_pool_cannot_fill(world: tuple[Config, Database]) -> None:
    config, db = world
    add_post(config, db, NewPost(text="queued", at="2030-01-01T10:00"), T0)
    for name in "abc":  # 2 Jan a, 3 Jan b, 4 Jan c, 5 Jan: a was used 3 days before
        pool(config, db, name)
    assert summary(config, db)[1] == (
        logging.WARNING,
        "channel outbox: the queue runs dry after Tue 2030-01-01, within 7 days, and its evergreen pool (3 posts) "
        "cannot fill the slot Sat 2030-01-05 10:00 UTC either (each was used within the cooldown, is next to it, or "
        "would break the content mix); queue more posts to keep the cadence",
        True,
    )


def test_without_a_pool_the_warnings_are_as_they_were(world: tuple[Config, Database]) -> None:
    config, db = world
    assert summary(config, db) == [(logging.WARNING, "channel outbox: nothing queued; the cadence has stopped", False)]
    add_post(config, db, NewPost(text="queued", at="2030-01-01T10:00"), T0)
    assert summary(config, db)[1] == (
        logging.WARNING,
        "channel outbox: the queue runs dry after Tue 2030-01-01, within 7 days; queue more posts to keep the cadence",
        True,
    )
    pool(config, db, "one")  # one post cannot fill a week of daily slots: said so
    assert "its evergreen pool (1 post) cannot fill the slot Wed 2030-01-02 10:00 UTC" not in summary(config, db)[1][1]
    assert "its evergreen pool (1 post) cannot fill the slot Thu 2030-01-03 10:00 UTC" in summary(config, db)[1][1]


def test_the_dry_queue_warning_applies_the_mix_rule_as_the_fill_does(world: tuple[Config, Database]) -> None:
    """A pool of offers only: enough posts for the cooldown, but the mix rule ("at most 2 of any 4") keeps the
    third in a row out, as the fill would."""
    config, db = world
    add_post(config, db, NewPost(text="queued", at="2030-01-01T10:00"), T0)
    for name in "abcdef":
        pool(config, db, f"offer {name}", "commercial")
    assert summary(config, db)[1] == (
        logging.WARNING,
        "channel outbox: the queue runs dry after Tue 2030-01-01, within 7 days, and its evergreen pool (6 posts) "
        "cannot fill the slot Fri 2030-01-04 10:00 UTC either (each was used within the cooldown, is next to it, or "
        "would break the content mix); queue more posts to keep the cadence",
        True,
    )
    # The fill keeps the same slot empty.
    assert [f.slot.day for f in fill(config, db, T0 + timedelta(hours=1)).fills] == [2, 3]
    result = fill(config, db, T0 + timedelta(days=2))
    assert result.fills == [] and [s.day for s in result.unfilled] == [4]
