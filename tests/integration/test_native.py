"""Native pre-scheduling: posts handed to VK and Facebook ahead of time, then checked, deleted or moved there."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler import native, store
from scheduler.channels import AdapterFactory
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.publisher import Publisher, apply_late_policy
from scheduler.ratelimit import Limiter
from scheduler.service import cancel_post, reschedule_post, show_post
from tests.conftest import write_config
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.vk import USER_ID, USER_TOKEN, FakeGroup, FakeVk
from tests.support import smm


class Clock:
    """The daemon's clock and the fakes' clock, moved together."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.offset


class World:
    def __init__(self, tmp_path: Path, db_url: str, network: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = Clock()
        if network == "facebook":
            self.fake: Any = FakeFacebook().start()
            monkeypatch.setattr("tests.fakes.facebook.time", self.clock)
            body = (
                f'[[channels]]\nname = "ch"\nnetwork = "facebook"\npage_id = {self.fake.page_id}\n'
                f'token_env = "TOKEN"\napi_url = "{self.fake.url}"\nnative_schedule = true\n'
            )
            self.env = {"TOKEN": self.fake.token}
        else:
            self.fake = FakeVk(user_tokens={USER_TOKEN: USER_ID}, community_tokens={}, groups=[FakeGroup(45)]).start()
            monkeypatch.setattr(self.fake, "now", self.clock.time)
            body = (
                f'[[channels]]\nname = "ch"\nnetwork = "vk"\ngroup_id = 45\ntoken_env = "TOKEN"\n'
                f'api_url = "{self.fake.url}"\nnative_schedule = true\n'
            )
            self.env = {"TOKEN": USER_TOKEN}
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        top = '[daemon]\nreconcile_delay = "1s"\n[retry]\nin_call_attempts = 1\n'
        self.config_path = write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=top)
        self.config = load_config(self.config_path)
        self.channel = self.config.channel("ch")
        self.db = Database(self.config.database_url)
        self.db.check_schema()
        self.factory = AdapterFactory()
        self.adapter = self.factory.build(self.channel)
        if network == "vk":
            self.adapter.rps_delay = 0  # type: ignore[attr-defined]
        self.publisher = Publisher(self.config, self.db_call, Limiter(), self.clock, self.clock.monotonic)
        self.loop = asyncio.new_event_loop()  # one loop for the whole test: the HTTP clients keep their pools

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def db_call(self, fn: Any, *args: Any) -> Any:
        with self.db.write() as session:
            return fn(session, *args)

    def sync(self, fn: Any, *args: Any) -> Any:
        with self.db.write() as session:
            return fn(session, *args)

    def add(self, minutes: float) -> int:
        at = (self.clock() + timedelta(minutes=minutes)).replace(microsecond=0).isoformat()
        view = add_post(self.config, self.db, NewPost(text=f"planned {minutes}", channels=["ch"], at=at), self.clock())
        return int(view["id"])

    def arm(self) -> list[int]:
        now = self.clock()
        ids = self.sync(store.arm_candidates, ["ch"], now + timedelta(minutes=15), now + timedelta(days=29), 20)
        for delivery_id in ids:
            claim = self.sync(store.claim_for_arming, delivery_id, now, "me", timedelta(minutes=5))
            assert claim is not None
            self.run(native.arm(self.publisher, claim, self.adapter, self.channel))
        return list(ids)

    def work(self) -> None:
        """What a worker does when the channel has something due: claim and publish (or verify)."""
        while (claim := self.sync(store.claim, "ch", self.clock(), "me", timedelta(minutes=5))) is not None:
            self.run(self.publisher.publish(claim, self.adapter, self.channel))

    def delivery(self, post_id: int) -> dict[str, Any]:
        return show_post(self.db, post_id)["deliveries"][0]

    def row(self, post_id: int) -> Any:
        from scheduler.models import Delivery

        with self.db.read() as session:
            return session.query(Delivery).filter(Delivery.post_id == post_id).one()

    def live(self) -> list[dict[str, Any]]:
        return [p for p in self.fake.published if not p["deleted"]]

    def close(self) -> None:
        self.run(self.factory.aclose())
        self.loop.close()
        self.fake.stop()
        self.db.dispose()


@pytest.fixture(params=["facebook", "vk"])
def world(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    w = World(tmp_path, sqlite_url, request.param, monkeypatch)
    yield w
    w.close()


def scheduled_time(world: World, record: dict[str, Any]) -> int:
    return int(record.get("scheduled_publish_time") or record.get("publish_date"))


def test_a_post_is_handed_over_then_recorded_as_published_by_the_network(world: World) -> None:
    post_id = world.add(60)
    assert world.arm() != []
    row = world.row(post_id)
    assert row.status == "queued" and row.native_id and row.note.startswith("scheduled on ")
    (record,) = world.live()
    assert scheduled_time(world, record) == int(row.due_at.timestamp())
    world.work()  # not due yet: nothing happens
    assert world.row(post_id).status == "queued"
    world.clock.offset += 61 * 60  # the network published it; a minute later the daemon checks
    world.work()
    delivery = world.delivery(post_id)
    assert delivery["status"] == "published" and delivery["remote_url"]
    assert len(world.live()) == 1  # never sent twice
    assert world.row(post_id).native_id is None


def test_cancel_deletes_the_post_on_the_network(world: World) -> None:
    post_id = world.add(60)
    world.arm()
    cancel_post(world.db, post_id, world.clock())
    world.run(native.delete_stale(world.publisher, {"ch": world.adapter}))
    assert world.live() == []
    row = world.row(post_id)
    assert (row.status, row.native_id) == ("cancelled", None)
    assert "deleted there: the delivery was cancelled" in row.note


def test_reschedule_moves_the_post_on_the_network(world: World) -> None:
    post_id = world.add(60)
    world.arm()
    later = (world.clock() + timedelta(hours=5)).replace(microsecond=0)
    reschedule_post(world.config, world.db, post_id, later.isoformat(), world.clock())
    world.run(native.delete_stale(world.publisher, {"ch": world.adapter}))
    assert world.live() == []
    world.arm()
    (record,) = world.live()
    assert scheduled_time(world, record) == int(later.timestamp())


def test_a_post_deleted_on_the_network_fails_with_the_reason(world: World) -> None:
    post_id = world.add(60)
    world.arm()
    world.fake.published[-1]["deleted"] = True
    world.clock.offset += 61 * 60
    world.work()
    delivery = world.delivery(post_id)
    assert delivery["status"] == "failed"
    assert "is gone there" in delivery["last_error"] and f"smm retry {post_id}" in delivery["last_error"]


def test_an_unclear_hand_over_is_found_among_the_scheduled_posts(world: World) -> None:
    post_id = world.add(60)
    world.fake.inject("feed" if isinstance(world.fake, FakeFacebook) else "wall.post", Fault.drop_after())
    world.arm()
    assert world.row(post_id).status == "publishing"
    world.clock.offset += 2
    for delivery_id in world.sync(store.expired_leases, world.clock(), set()):
        claim = world.sync(store.take_over, delivery_id, world.clock(), "me", timedelta(minutes=5))
        world.run(world.publisher.reconcile(claim, world.adapter, world.channel))
    row = world.row(post_id)
    assert row.status == "queued" and row.native_id is not None
    assert len(world.live()) == 1


def test_late_policy_leaves_a_handed_over_post_to_the_network(world: World) -> None:
    post_id = world.add(60)
    world.arm()
    world.clock.offset += 3 * 3600  # the daemon was down when the post was due
    cutoff = world.clock() - world.config.daemon.late_grace
    assert world.sync(apply_late_policy, world.config, cutoff, world.clock(), set()) == []
    world.work()
    assert world.delivery(post_id)["status"] == "published"


def test_native_schedule_is_refused_where_the_network_cannot(tmp_path: Path) -> None:
    body = (
        '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@chan"\ntoken_env = "T"\nnative_schedule = true\n'
    )
    config = write_config(tmp_path / "config.toml", "sqlite:///x.db", body, outbox=False)
    result = smm("queue", config=config)
    assert result.returncode == 2
    assert (
        "channels[0].native_schedule: telegram cannot schedule posts itself; only vk and facebook can" in result.stderr
    )


def test_the_daemon_hands_posts_over(tmp_path: Path, sqlite_url: str) -> None:
    fake = FakeFacebook().start()
    try:
        body = (
            f'[[channels]]\nname = "fb"\nnetwork = "facebook"\npage_id = {fake.page_id}\ntoken_env = "TOKEN"\n'
            f'api_url = "{fake.url}"\nnative_schedule = true\n'
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False)
        at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
        assert smm("add", "handed over", "--at", at, config=config).returncode == 0
        result = smm("run", "--once", config=config, env={"TOKEN": fake.token})
        assert result.returncode == 0, result.stderr
        assert "post 1 handed to fb" in result.stderr
        assert len(fake.published) == 1 and fake.published[0]["scheduled_publish_time"]
        queue = smm("queue", config=config)
        assert "scheduled on facebook for" in queue.stdout
    finally:
        fake.stop()
