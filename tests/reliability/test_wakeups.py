"""Every time the daemon already knows is a wake-up of its own: with a ten-minute safety tick, a post whose
connection dropped after the network took it is settled when the log says it will be, not at the next tick."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scheduler.config import load_config
from scheduler.daemon import NATIVE_INTERVAL, open_daemon
from scheduler.db import Database
from scheduler.models import Attempt, Delivery
from tests.conftest import write_config
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook
from tests.reliability.harness import Networks, queue_posts
from tests.support import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

RECONCILE_DELAY = 1.0
SETTINGS = f"""
[daemon]
tick = "10m"
reconcile_delay = "{RECONCILE_DELAY:g}s"
late_grace = "1d"
"""


def settled(config: Path) -> dict[str, tuple[str, datetime, datetime | None]]:
    """Per channel: the delivery's status, when its first attempt started and when it was published."""
    db = Database(load_config(config).database_url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(Delivery.channel, Delivery.status, func.min(Attempt.started_at), Delivery.published_at)
                .join(Attempt, Attempt.delivery_id == Delivery.id)
                .group_by(Delivery.id)
            ).all()
            return {r[0]: (r[1], r[2], r[3]) for r in rows}
    finally:
        db.dispose()


def test_an_accept_then_drop_is_settled_within_the_reconcile_delay_not_at_the_tick(
    tmp_path: Path, sqlite_url: str
) -> None:
    networks = Networks(per_network=1)
    try:
        config = write_config(
            tmp_path / "config.toml", sqlite_url, networks.config_body(), outbox=False, extra_top=SETTINGS
        )
        networks.channels = [("vk0", "vk"), ("fb0", "facebook"), ("ok0", "ok")]
        queue_posts(config, networks, 0, per_channel=1)
        networks.vk.inject("wall.post", Fault.drop_after())
        networks.facebook.inject("feed", Fault.drop_after())
        networks.ok.inject("mediatopic.post", Fault.drop_after())
        with DaemonProcess(config, env=networks.env) as daemon:
            rows = wait_for(
                lambda: (r := settled(config)) and all(s == "published" for s, _, _ in r.values()) and r,
                timeout=RECONCILE_DELAY + 8,
                what="the three posts settled",
            )
            log = daemon.log
            assert daemon.stop() == 0
        copies = networks.copies()
    finally:
        networks.stop()
    assert "post 1 to vk0: " in log and "checking the channel now" in log
    assert f"checking the channel in {RECONCILE_DELAY:g}s" in log
    for channel, (_, started, published) in rows.items():
        assert published is not None
        took = (published - started).total_seconds()
        assert took <= RECONCILE_DELAY + 2, (channel, took, log)
        if channel != "vk0":  # read back no sooner than the log said: VK resends at once with its guid
            assert took >= RECONCILE_DELAY, (channel, took, log)
    assert sorted(copies.values()) == [1, 1, 1], copies


def test_the_next_native_scheduling_run_is_a_wake_up_of_its_own(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing posts to a network that schedules them itself, and deleting there the ones cancelled since, runs
    every NATIVE_INTERVAL: an idle daemon must wake for it, not wait for the tick (a cancelled post would go out)."""
    fake = FakeFacebook().start()
    monkeypatch.setenv("FB_TOKEN", fake.token)
    body = (
        f'[[channels]]\nname = "fb"\nnetwork = "facebook"\npage_id = {fake.page_id}\ntoken_env = "FB_TOKEN"\n'
        f'api_url = "{fake.url}"\nnative_schedule = true\n'
    )
    config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top=SETTINGS)
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)  # no planned wake-up comes during the test
    elapsed = [0.0]
    daemon = open_daemon(str(config), clock=lambda: t0 + timedelta(seconds=elapsed[0]), monotonic=lambda: elapsed[0])

    async def scenario() -> None:
        await daemon.startup()
        daemon.start_timer()
        # A job of the timer of its own: the first run at start, then one every NATIVE_INTERVAL, whatever else
        # wakes the daemon (or does not).
        job = daemon.timer.scheduler.get_job("native")  # type: ignore[union-attr]
        assert job.next_run_time == t0
        assert job.trigger.interval == timedelta(seconds=NATIVE_INTERVAL)
        await daemon.background.native.job()
        first = daemon.background.native.task
        assert first is not None
        await daemon.background.native.job()  # a run still going on: no second one beside it
        assert daemon.background.native.task is first
        await first
        await daemon._shutdown()

    try:
        asyncio.run(scenario())
    finally:
        fake.stop()
