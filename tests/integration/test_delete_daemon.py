"""Deletions carried out by the real daemon: ``smm run --once`` after ``smm delete``, a deletion that fell due
while no daemon ran (done at start, logged), and two daemons on one PostgreSQL that never both delete a post."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from scheduler.config import load_config
from scheduler.db import Database
from scheduler.models import Delivery, Status
from scheduler.service import show_post
from tests.conftest import run_cli, write_config
from tests.fakes.base import Fault
from tests.fakes.vk import FakeGroup, FakeVk
from tests.support import DaemonProcess, outbox_folders, smm, wait_for

pytestmark = pytest.mark.slow


def test_run_once_deletes_and_a_deletion_missed_while_down_is_done_at_start(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url)
    outbox = tmp_path / "outbox"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ids = [
        int(json.loads(run_cli("add", "post", "--now", *more, "--json", config=config).out)["id"])
        for more in ((), ("--expire-at", tomorrow))
    ]
    assert smm("run", "--once", config=config).returncode == 0
    assert len(outbox_folders(outbox)) == 2
    # smm delete with no daemon running: the request waits for the next run.
    result = run_cli("delete", str(ids[0]), config=config)
    assert result.code == 0 and "smm run --once" in result.out
    # The second post's expiry passed two hours ago, while no daemon ran (its time moved back, as the clock moved on).
    db = Database(load_config(config).database_url)
    with db.write() as session:
        session.execute(
            update(Delivery).where(Delivery.post_id == ids[1]).values(delete_at=datetime.now(UTC) - timedelta(hours=2))
        )
    run = smm("run", "--once", config=config)
    assert run.returncode == 0, run.stderr
    log = run.stdout + run.stderr
    assert f"post {ids[1]} on outbox was due for deletion at" in log and "while no daemon ran" in log
    assert f"deleted post {ids[0]} on outbox" in log and f"deleted post {ids[1]} on outbox" in log
    assert outbox_folders(outbox) == []
    assert [show_post(db, i)["deliveries"][0]["status"] for i in ids] == ["deleted", "deleted"]
    db.dispose()


def test_two_daemons_on_postgresql_never_both_delete_a_post(tmp_path: Path, postgres_url: str) -> None:
    channels = 6
    tokens = {f"vk1.a.delete-{i}-not-real": 4000 + i for i in range(channels)}
    fake = FakeVk(
        user_tokens=tokens,
        community_tokens={},
        groups=[FakeGroup(300 + i, managers={4000 + i: 3}) for i in range(channels)],
    ).start()
    env = {f"VK_{i}": token for i, token in enumerate(tokens)}
    body = "".join(
        f'[[channels]]\nname = "vk{i}"\nnetwork = "vk"\ngroup_id = {300 + i}\ntoken_env = "VK_{i}"\n'
        f'api_url = "{fake.url}"\ntimeout = "3s"\n'
        for i in range(channels)
    )
    top = '[daemon]\ntick = "0.3s"\nlease = "3s"\nreconcile_delay = "1s"\n'
    config = write_config(tmp_path / "config.toml", postgres_url, body, outbox=False, extra_top=top)
    db = Database(load_config(config).database_url)
    db.check_schema(create=True)
    posts = [int(json.loads(run_cli("add", f"sale {i}", "--now", "--json", config=config).out)["id"]) for i in range(3)]
    daemons = [DaemonProcess(config, env=env, log_path=tmp_path / f"daemon{i}.log") for i in range(2)]
    try:
        for daemon in daemons:
            daemon.wait_ready(30)

        def statuses() -> Counter[str]:
            return Counter(d["status"] for p in posts for d in show_post(db, p)["deliveries"])

        wait_for(lambda: statuses()[Status.PUBLISHED] == 3 * channels, timeout=60, what="all published")
        # Slow deletions, and one answer lost: both daemons look at the same rows while they are in flight.
        fake.inject("wall.delete", Fault.delay(0.5), Fault.drop_after(), Fault.delay(0.5))
        for post_id in posts:
            assert run_cli("delete", str(post_id), config=config).code == 0
        wait_for(lambda: statuses()[Status.DELETED] == 3 * channels, timeout=60, interval=0.2, what="all deleted")
        for daemon in daemons:
            assert daemon.stop() == 0
    finally:
        for daemon in daemons:
            daemon.kill()
        fake.stop()
    deletes = Counter((c.params["owner_id"], c.params["post_id"]) for c in fake.calls("wall.delete"))
    assert len(deletes) == 3 * channels and max(deletes.values()) == 1, deletes
    assert all(record["deleted"] for record in fake.published)
    logs = [d.log for d in daemons]
    assert sum(log.count("deleted post ") for log in logs) == 3 * channels
    db.dispose()
