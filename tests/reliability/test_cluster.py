"""Several daemons on one PostgreSQL: 3 daemons, 1,000 deliveries over 50 channels, one daemon killed mid-run.
Every delivery is published exactly once and none is lost; the work spreads over the daemons by lease group."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scheduler import timeline
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.models import Delivery, Status
from tests.conftest import write_config
from tests.fakes.vk import FakeGroup, FakeVk
from tests.support import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

VK_CHANNELS = 45
OUTBOX_CHANNELS = 5
PER_CHANNEL = 20
SETTINGS = """
[daemon]
tick = "0.5s"
lease = "3s"
reconcile_delay = "1s"
late_grace = "1d"
[retry]
max_attempts = 50
backoff_base = "0.5s"
backoff_cap = "2s"
"""


def counts(db: Database) -> Counter[str]:
    with db.read() as session:
        return Counter(dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()))


def test_three_daemons_share_the_work_and_survive_a_kill(tmp_path: Path, postgres_url: str) -> None:
    db_url = postgres_url  # several daemons share one PostgreSQL; SQLite allows one daemon per file
    tokens = {f"vk1.a.cluster-{i}-not-real": 3000 + i for i in range(VK_CHANNELS)}
    fake = FakeVk(
        user_tokens=tokens,
        community_tokens={},
        groups=[FakeGroup(200 + i, managers={3000 + i: 3}) for i in range(VK_CHANNELS)],
    ).start()
    env = {f"VK_{i}": token for i, token in enumerate(tokens)}
    body = "".join(
        f'[[channels]]\nname = "vk{i}"\nnetwork = "vk"\ngroup_id = {200 + i}\ntoken_env = "VK_{i}"\n'
        f'api_url = "{fake.url}"\ntimeout = "3s"\n'
        for i in range(VK_CHANNELS)
    ) + "".join(
        f'[[channels]]\nname = "out{i}"\nnetwork = "outbox"\npath = "{tmp_path / f"outbox{i}"}"\n'
        for i in range(OUTBOX_CHANNELS)
    )
    config_path = write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=SETTINGS)
    config = load_config(config_path)
    db = Database(config.database_url)
    db.check_schema()
    now = datetime.now(UTC)
    with db.write() as session:
        for channel in config.channels:
            for j in range(PER_CHANNEL):
                timeline.insert_post(
                    session,
                    text=f"post {j} on {channel.name}",
                    link=None,
                    category="news",
                    media=[],
                    now=now,
                    plan=[(channel.name, channel.network, now, False)],
                )
    total = len(config.channels) * PER_CHANNEL
    assert total == 1000

    daemons = [DaemonProcess(config_path, env=env, log_path=tmp_path / f"daemon{i}.log") for i in range(3)]
    try:
        for daemon in daemons:
            daemon.wait_ready(30)
        wait_for(lambda: counts(db)[Status.PUBLISHED] >= 150, timeout=30, what="150 posts published")
        victim = daemons[1]
        victim.signal(signal.SIGKILL)
        victim.proc.wait(10)
        started = time.monotonic()
        wait_for(
            lambda: counts(db)[Status.PUBLISHED] == total,
            timeout=120,
            interval=0.2,
            what=f"all {total} published: {counts(db)}",
        )
        drained = time.monotonic() - started
        for daemon in (daemons[0], daemons[2]):
            assert daemon.stop() == 0
    finally:
        for daemon in daemons:
            daemon.kill()
        fake.stop()

    copies = Counter(record["message"] for record in fake.published if not record["deleted"])
    outbox = [p.name for i in range(OUTBOX_CHANNELS) for p in (tmp_path / f"outbox{i}").iterdir() if p.name != ".keys"]
    assert counts(db) == Counter({Status.PUBLISHED: total})
    assert len(copies) == VK_CHANNELS * PER_CHANNEL and max(copies.values()) == 1
    # No half-written folder of the killed daemon is left either (its retry removes it).
    assert [name for name in outbox if name.startswith(".")] == []
    assert len(outbox) == OUTBOX_CHANNELS * PER_CHANNEL
    logs = [d.log for d in daemons]
    published_by = [log.count("published post ") for log in logs]
    assert all(n > 0 for n in published_by), published_by
    assert "now publishing lease group" in logs[0] + logs[2]
    print(f"published by daemon: {published_by}; drained {drained:.1f}s after the kill")
    db.dispose()
