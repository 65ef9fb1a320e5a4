"""The daemon reads back what it published (scheduler/daemon/results.py) from the network fakes: each network's
figures at planned ages, the audience once a day, Telegram's audience only, a missing right, a post gone, a
failed read tried again at the next age, a restart and a daemon down past several ages, two daemons on PostgreSQL.

The daemon runs in-process with its clock under the test's control; the fakes age their posts with ``advance`` as
the test moves the clock. Pacing is the networks' real one (Facebook one request per 2 s per Page, OK one per 5 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.config_results import ResultsConfig
from scheduler.daemon import Daemon, open_daemon
from scheduler.errors import DatabaseError
from scheduler.intake import NewPost, add_post
from scheduler.store import results as results_store
from scheduler.tables import audience_readings, deliveries, delivery_figures, result_readings
from tests.conftest import run_cli, write_config
from tests.fakes.base import Fault, grown
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.vk import GROUP_ID, RIGHTS, USER_TOKEN, FakeVk
from tests.fakes.vk import error_body as vk_error
from tests.integration.test_read_ahead import T0, Clock

pytestmark = pytest.mark.slow

HOUR, DAY = 3600, 86400


@dataclass
class World:
    """The fakes of the networks a test uses, its config, and the daemons it made."""

    tmp_path: Path
    db_url: str
    monkeypatch: pytest.MonkeyPatch
    fakes: dict[str, Any] = field(default_factory=dict)
    daemons: list[Daemon] = field(default_factory=list)
    config: Path | None = None

    def start(self, *networks: str, extra: str = "") -> Path:
        body = ""
        for kind in networks:
            if kind == "vk":
                fake: Any = FakeVk().start()
                table = f'group_id = {GROUP_ID}\ntoken_env = "SMM_VK_TOKEN"\n'
                self.monkeypatch.setenv("SMM_VK_TOKEN", USER_TOKEN)
            elif kind == "facebook":
                fake = FakeFacebook().start()
                table = f'page_id = {fake.page_id}\ntoken_env = "SMM_FB_TOKEN"\n'
                self.monkeypatch.setenv("SMM_FB_TOKEN", fake.token)
            elif kind == "ok":
                fake = FakeOk().start()
                table = (
                    f'group_id = {fake.group_id}\napplication_key = "{fake.application_key}"\n'
                    'application_secret_env = "SMM_OK_SECRET"\ntoken_env = "SMM_OK_TOKEN"\n'
                )
                self.monkeypatch.setenv("SMM_OK_SECRET", fake.application_secret)
                self.monkeypatch.setenv("SMM_OK_TOKEN", fake.token)
            else:
                fake = FakeTelegram().start()
                table = 'chat_id = "@testchannel"\ntoken_env = "SMM_TG_TOKEN"\n'
                self.monkeypatch.setenv("SMM_TG_TOKEN", DEFAULT_TOKEN)
            self.fakes[kind] = fake
            body += f'[[channels]]\nname = "{kind}"\nnetwork = "{kind}"\n{table}api_url = "{fake.url}"\n\n'
        self.config = write_config(self.tmp_path / "config.toml", self.db_url, extra + "\n" + body, outbox=False)
        return self.config

    def daemon(self) -> Daemon:
        assert self.config is not None
        d = open_daemon(str(self.config), clock=Clock())
        self.daemons.append(d)
        return d

    def advance(self, seconds: float) -> None:
        for fake in self.fakes.values():
            if hasattr(fake, "advance"):
                fake.advance(seconds)

    def stop(self) -> None:
        for d in self.daemons:
            d.release()
        for fake in self.fakes.values():
            fake.stop()


@pytest.fixture
def world(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = World(tmp_path, db_url, monkeypatch)
    yield w
    w.stop()


async def up(d: Daemon) -> None:
    await d.startup()


async def down(d: Daemon) -> None:
    for adapter in d.rt.adapters.values():
        await adapter.aclose()
    await d.factory.aclose()


def move(d: Daemon, when: timedelta) -> None:
    """Set the daemon's clock to ``T0 + when``."""
    d.rt.clock.now = T0 + when  # type: ignore[attr-defined]


async def publish(d: Daemon, count: int = 1, channels: list[str] | None = None) -> list[int]:
    """Queue ``count`` posts due now and let the daemon publish them; returns their ids."""
    ids = []
    for i in range(count):
        view = add_post(d.config, d.rt.db, NewPost(f"post {i}", channels=channels or (), now=True), d.rt.clock())
        ids.append(view["id"])
    wanted = count * len(channels or d.config.channel_names)
    for _ in range(400):
        await d.cycle()
        while d.workers.tasks:
            await asyncio.gather(*d.workers.tasks.values())
        if published(d) == wanted:
            return ids
        await asyncio.sleep(0.05)
    raise AssertionError(f"not published: {statuses(d)}")


def statuses(d: Daemon) -> list[str]:
    with d.rt.db.read() as session:
        return list(session.connection().execute(select(deliveries.c.status)).scalars())


def published(d: Daemon) -> int:
    return statuses(d).count("published")


def readings(d: Daemon) -> list[dict[str, Any]]:
    r, c = result_readings.c, deliveries.c
    with d.rt.db.read() as session:
        rows = session.connection().execute(
            select(c.channel, r.age, r.views, r.likes, r.reposts, r.comments, r.gone, r.error, r.latest)
            .join(deliveries, c.id == r.delivery_id)
            .order_by(c.channel, c.id, r.age)
        )
        return [dict(row._mapping) for row in rows]


def audience(d: Daemon) -> dict[str, int]:
    """Each channel's latest audience reading."""
    return {channel: days[-1] for channel, days in audience_by_day(d).items()}


def audience_by_day(d: Daemon) -> dict[str, list[int]]:
    a = audience_readings.c
    found: dict[str, list[int]] = {}
    with d.rt.db.read() as session:
        for channel, members in session.connection().execute(select(a.channel, a.members).order_by(a.day)):
            found.setdefault(channel, []).append(members)
    return found


def test_each_network_is_read_at_its_planned_ages_and_telegram_gives_its_audience_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.start("vk", "facebook", "ok", "telegram")
    d = world.daemon()
    tg: FakeTelegram = world.fakes["telegram"]
    caplog.set_level(logging.INFO, logger="smm.results")

    async def scenario() -> None:
        await up(d)
        d.background.results.plan()
        [post_id] = await publish(d)
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        first = readings(d)
        assert {(r["channel"], r["age"]) for r in first} == {("facebook", HOUR), ("ok", HOUR), ("vk", HOUR)}
        for r in first:
            assert r["views"] > 0 and r["likes"] is not None and r["reposts"] is not None, r
            assert r["comments"] == 0 and r["latest"] and not r["gone"] and r["error"] is None, r
        base = {"vk": 1200, "facebook": 2400, "ok": 3100}
        assert audience(d) == {**{c: grown(n, HOUR + 60) for c, n in base.items()}, "telegram": 850}
        # The next day: figures grew, the audience too; a second run that day reads nothing again.
        tg.chats[0].members = 870
        world.advance(DAY)
        move(d, timedelta(seconds=HOUR + 60 + DAY))
        await d.background.results.run()
        asked = len(tg.calls("getChatMemberCount"))
        await d.background.results.run()
        assert len(tg.calls("getChatMemberCount")) == asked == 2
        # The fakes' communities grow 1 % a day; each day has its own reading.
        days = {c: [grown(n, HOUR + 60), grown(n, HOUR + 60 + DAY)] for c, n in base.items()}
        assert audience_by_day(d) == {**days, "telegram": [850, 870]}
        assert all(first < second for first, second in days.values())
        later = {r["channel"]: r for r in readings(d) if r["age"] == DAY}
        assert set(later) == {"facebook", "ok", "vk"}
        for r in first:
            assert later[r["channel"]]["views"] > r["views"] and later[r["channel"]]["latest"]
        assert [r["latest"] for r in readings(d) if r["age"] == HOUR] == [False] * 3
        # the report's figures table holds every published delivery with its latest reading's figures
        f = delivery_figures.c
        with d.rt.db.read() as session:
            rows = session.connection().execute(select(f.channel, f.measured, f.views, f.likes, f.engagement))
            kept = {row.channel: row for row in rows}
        assert set(kept) == {"vk", "facebook", "ok", "telegram"}
        assert (kept["telegram"].measured, kept["telegram"].views, kept["telegram"].engagement) == (0, None, None)
        for channel in ("vk", "facebook", "ok"):
            assert kept[channel].measured == 1 and kept[channel].views == later[channel]["views"]
            assert kept[channel].engagement is not None and kept[channel].engagement >= 0
        assert tg.calls("getChatMemberCount") and not [c for c in tg.requests if "getMessage" in c.path]
        await down(d)

        stats = run_cli("stats", str(post_id), "--json", config=world.config)
        assert stats.code == 0, stats.err
        view = json.loads(stats.out)
        by_channel = {entry["channel"]: entry for entry in view["deliveries"]}
        assert by_channel["telegram"]["results"] == "not_available" and by_channel["telegram"]["readings"] == []
        assert by_channel["vk"]["results"] == "read"
        assert [r["age_label"] for r in by_channel["vk"]["readings"]] == ["1h", "24h"]
        text = run_cli("stats", str(post_id), config=world.config).out
        assert "post results are not available: the Telegram Bot API gives a bot no view" in text
        assert " 24h reading, " in text and "views " in text

    asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if m.startswith("channel telegram: post results are not available (the Telegram Bot")], said


def test_a_facebook_token_without_read_insights_gives_no_views_and_says_why_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.start("facebook")
    fb: FakeFacebook = world.fakes["facebook"]
    fb.permissions = tuple(p for p in fb.permissions if p != "read_insights")
    d = world.daemon()
    caplog.set_level(logging.INFO, logger="smm.results")

    async def scenario() -> None:
        await up(d)
        await publish(d, 2)
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        await down(d)

    asyncio.run(scenario())
    found = readings(d)
    assert len(found) == 2
    for r in found:
        assert r["views"] is None and r["likes"] is not None and r["error"] is None and r["latest"]
    notes = [r.getMessage() for r in caplog.records if "read_insights" in r.getMessage()]
    assert len(notes) == 1, notes


def test_a_missing_right_is_logged_once_and_the_other_channels_go_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.start("vk", "telegram")
    vk: FakeVk = world.fakes["vk"]
    d = world.daemon()
    caplog.set_level(logging.INFO, logger="smm.results")

    async def scenario() -> None:
        await up(d)
        await publish(d, 2)
        vk.rights[USER_TOKEN] = set(RIGHTS) - {"wall"}
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        move(d, timedelta(seconds=HOUR + 600))
        await d.background.results.run()
        await down(d)

    asyncio.run(scenario())
    assert readings(d) == []  # nothing is lost: once the right is granted, the readings are taken
    assert len(vk.calls("wall.getById")) == 1
    assert audience(d) == {"vk": 1200, "telegram": 850}
    missing = [r.getMessage() for r in caplog.records if "cannot read post results" in r.getMessage()]
    assert len(missing) == 1 and "wall" in missing[0], missing


def test_a_post_gone_from_the_network_is_recorded_and_no_longer_read(world: World) -> None:
    world.start("vk")
    vk: FakeVk = world.fakes["vk"]
    d = world.daemon()

    async def scenario() -> int:
        await up(d)
        [post_id] = await publish(d)
        vk.published[0]["deleted"] = True
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        world.advance(DAY)
        move(d, timedelta(seconds=DAY + HOUR))
        await d.background.results.run()
        await down(d)
        return post_id

    post_id = asyncio.run(scenario())
    assert [(r["age"], r["gone"], r["views"], r["latest"]) for r in readings(d)] == [(HOUR, True, None, False)]
    assert len(vk.calls("wall.getById")) == 1
    view = json.loads(run_cli("stats", str(post_id), "--json", config=world.config).out)
    assert view["deliveries"][0]["results"] == "gone"


def test_a_failed_read_is_stored_and_tried_again_at_the_next_age_only(world: World) -> None:
    world.start("vk")
    vk: FakeVk = world.fakes["vk"]
    d = world.daemon()

    async def scenario() -> None:
        await up(d)
        await publish(d)
        vk.inject("wall.getById", Fault.respond(200, vk_error(10, "Internal server error")))
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        for minutes in (10, 60, 600):  # the job's later runs that day: no retry storm
            move(d, timedelta(seconds=HOUR + 60 * minutes))
            await d.background.results.run()
        assert len(vk.calls("wall.getById")) == 1
        world.advance(DAY)
        move(d, timedelta(seconds=DAY + 60))
        await d.background.results.run()
        await down(d)

    asyncio.run(scenario())
    found = readings(d)
    assert [(r["age"], r["error"] is not None, r["latest"]) for r in found] == [(HOUR, True, False), (DAY, False, True)]
    assert "VK failed on wall.getById" in found[0]["error"] and found[1]["views"] > 0
    assert len(vk.calls("wall.getById")) == 2


def test_a_daemon_down_past_several_ages_takes_one_reading_and_a_restart_none(world: World) -> None:
    world.start("vk")
    vk: FakeVk = world.fakes["vk"]
    d = world.daemon()

    async def first() -> None:
        await up(d)
        await publish(d, 3)
        world.advance(8 * DAY)
        move(d, timedelta(days=8))
        await d.background.results.run()
        await down(d)

    asyncio.run(first())
    assert [(r["age"], r["latest"]) for r in readings(d)] == [(7 * DAY, True)] * 3
    d.release()
    world.daemons.remove(d)
    again = world.daemon()  # a restart at the same moment: nothing more is read or stored

    async def second() -> None:
        await up(again)
        move(again, timedelta(days=8, minutes=5))
        await again.background.results.run()
        await down(again)

    asyncio.run(second())
    assert len(readings(again)) == 3 and len(vk.calls("wall.getById")) == 3


def test_two_daemons_on_postgresql_store_each_reading_once(world: World, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("several daemons share a PostgreSQL database only")
    world.start("vk", "telegram")
    first, second = world.daemon(), world.daemon()

    async def scenario() -> None:
        await up(first)
        await publish(first, 3)
        await up(second)
        await first.membership.heartbeat([])
        await second.membership.heartbeat([])
        world.advance(HOUR + 60)
        for d in (first, second):
            move(d, timedelta(seconds=HOUR + 60))
        await asyncio.gather(first.background.results.run(), second.background.results.run())
        # Whatever each one collected, the same readings are not stored again by the other afterwards.
        await asyncio.gather(second.background.results.run(), first.background.results.run())
        for d in (first, second):
            await d.membership.leave()
            await down(d)

    asyncio.run(scenario())
    assert [(r["channel"], r["age"]) for r in readings(first)] == [("vk", HOUR)] * 3
    assert first.background.results.stored + second.background.results.stored == 3
    assert len(world.fakes["vk"].calls("wall.getById")) == 3
    assert audience(first) == {"vk": 1200, "telegram": 850}


def test_a_read_steps_aside_for_a_post_due_within_its_pace(world: World) -> None:
    world.start("vk")
    d = world.daemon()

    async def scenario() -> list[float]:
        await up(d)
        d.timer.start()
        d.background.results.sharing = {"vk": {"vk"}}
        add_post(d.config, d.rt.db, NewPost("soon", channels=["vk"], at=(T0 + timedelta(seconds=3)).isoformat()), T0)
        d.rt.poke()  # as the CLI's wake-up does
        await d.cycle()  # the look plans the wake-up at the post's time
        holds = [d.background.results._posts_hold("vk", 5.0), d.background.results._posts_hold("vk", 2.0)]
        move(d, timedelta(seconds=2))
        await d.cycle()  # within the read-ahead now: the post's channel is known
        holds += [d.background.results._posts_hold("vk", 2.0), d.background.results._posts_hold("other", 2.0)]
        await d.timer.stop(lambda tasks: asyncio.sleep(0, 0))
        await down(d)
        return holds

    assert asyncio.run(scenario()) == [1.0, 0.0, 1.0, 0.0]


def test_a_network_asking_to_slow_down_leaves_the_readings_for_the_next_run(world: World) -> None:
    world.start("vk")
    vk: FakeVk = world.fakes["vk"]
    d = world.daemon()

    async def scenario() -> list[int]:
        await up(d)
        await publish(d, 2)
        vk.inject("wall.getById", Fault.respond(200, vk_error(6, "Too many requests per second")))
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()
        counts = [len(readings(d)), len(vk.calls("wall.getById"))]
        await asyncio.sleep(1.0)  # VK's error 6 names no wait; the adapter asks for half a second
        move(d, timedelta(seconds=HOUR + 360))
        await d.background.results.run()
        await down(d)
        return [*counts, len(readings(d))]

    # Nothing stored as failed: the network refused the read, it did not fail it; the next run reads both.
    assert asyncio.run(scenario()) == [0, 1, 2]
    assert [r["error"] for r in readings(d)] == [None, None]


def test_the_collection_is_a_timer_job_unless_it_is_turned_off(world: World) -> None:
    world.start("vk", extra='[results]\nenabled = false\ninterval = "1m"\n')
    d = world.daemon()

    async def scenario() -> list[bool]:
        await up(d)
        d.timer.start()
        d.background.results.plan()
        off = d.timer.planned("results") is None
        d.rt.config = replace(d.config, results_section=ResultsConfig(interval=60.0))
        d.background.results.plan()  # as a reload does
        on = d.timer.planned("results") is not None
        d.timer.remove("results")
        await d.timer.stop(lambda tasks: asyncio.sleep(0, 0))
        await down(d)
        return [off, on]

    assert asyncio.run(scenario()) == [True, True]


def test_with_the_collection_off_the_report_figures_are_kept_by_a_job_of_their_own(world: World) -> None:
    world.start("vk", extra='[results]\nenabled = false\ninterval = "1m"\n')
    d = world.daemon()

    def kept() -> list[tuple[str, int]]:
        f = delivery_figures.c
        with d.rt.db.read() as session:
            return [(r.channel, r.measured) for r in session.connection().execute(select(f.channel, f.measured))]

    async def scenario() -> list[object]:
        await up(d)
        await publish(d)
        before = kept()
        d.timer.start()
        d.background.plan()
        planned = [d.timer.planned("results") is None, d.timer.planned("figures") is not None]
        d.rt.config = replace(d.config, results_section=ResultsConfig(interval=60.0))
        d.background.plan()  # as a reload does: the results runs catch up from now on
        planned += [d.timer.planned("results") is not None, d.timer.planned("figures") is None]
        d.timer.remove("results")
        await d.timer.stop(lambda tasks: asyncio.sleep(0, 0))
        await d.background.figures.run()  # what the job runs
        await down(d)
        return [before, planned, kept()]

    assert asyncio.run(scenario()) == [[], [True, True, True, True], [("vk", 0)]]


def test_a_database_failure_ends_the_run_quietly_and_the_next_run_stores_the_readings(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.start("vk")
    d = world.daemon()
    real = results_store.record_readings
    failures = [DatabaseError("database is locked")]

    def flaky(session: Any, batch: Any) -> int:
        if failures:
            raise failures.pop()
        return real(session, batch)

    monkeypatch.setattr(results_store, "record_readings", flaky)
    caplog.set_level(logging.WARNING, logger="smm.results")

    async def scenario() -> int:
        await up(d)
        await publish(d, 2)
        world.advance(HOUR + 60)
        move(d, timedelta(seconds=HOUR + 60))
        await d.background.results.run()  # read, then not stored: the readings stay due
        stored = len(readings(d))
        move(d, timedelta(seconds=HOUR + 360))
        await d.background.results.run()
        await down(d)
        return stored

    assert asyncio.run(scenario()) == 0
    assert len(readings(d)) == 2
    assert [r.getMessage() for r in caplog.records if "the database failed" in r.getMessage()]
