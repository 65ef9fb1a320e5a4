"""Quotas known ahead: a VK community takes 50 wall posts a day; the excess is deferred, never rejected."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from adapters.base import Quota
from scheduler import timeline
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.models import Delivery, Status
from scheduler.quota import plan
from scheduler.store import queued_per_channel
from scheduler.store.quota import defer_over_quota
from tests.conftest import write_config
from tests.fakes.vk import USER_ID, USER_TOKEN, FakeGroup, FakeVk
from tests.fakes.webhook import FakeWebhook
from tests.support import smm

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_plan_moves_only_the_excess_to_when_the_window_has_room() -> None:
    used = [at(-60), at(-30)]  # two posts in the last hour
    upcoming = [(1, at(0)), (2, at(10)), (3, at(20))]
    moves = plan(used, upcoming, limit=3, window=DAY)
    # One slot is left today; post 2 waits for the post of -60 min to leave the window, post 3 for -30 min.
    assert moves == [(2, at(-60) + DAY + timedelta(seconds=1)), (3, at(-30) + DAY + timedelta(seconds=1))]


def test_plan_keeps_order_and_never_moves_earlier() -> None:
    upcoming = [(i, at(i)) for i in range(60)]
    moves = dict(plan([], upcoming, limit=50, window=DAY))
    assert sorted(moves) == list(range(50, 60))
    times = [moves.get(i, at(i)) for i in range(60)]
    assert times == sorted(times)
    assert all(moves[i] >= at(i) for i in moves)
    assert moves[50] == at(0) + DAY + timedelta(seconds=1)


def test_plan_within_the_quota_moves_nothing() -> None:
    assert plan([at(-10)], [(1, at(0)), (2, at(5))], limit=3, window=DAY) == []


def _vk_config(tmp_path: Path, db_url: str, fake_url: str, extra: str = "") -> Path:
    body = f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 45\ntoken_env = "VK_TOKEN"\napi_url = "{fake_url}"\n'
    return write_config(tmp_path / "config.toml", db_url, body + extra, outbox=False)


def _seed(db: Database, now: datetime, published: int, queued: int) -> None:
    with db.write() as session:
        for i in range(published):
            post_id = timeline.insert_post(
                session,
                text=f"old {i}",
                link=None,
                category="news",
                media=[],
                now=now,
                plan=[("vk", "vk", now - timedelta(hours=20), False)],
            )
            session.execute(
                update(Delivery)
                .where(Delivery.post_id == post_id)
                .values(status=Status.PUBLISHED.value, published_at=now - timedelta(hours=20) + timedelta(minutes=i))
            )
        for i in range(queued):
            timeline.insert_post(
                session,
                text=f"new {i}",
                link=None,
                category="news",
                media=[],
                now=now,
                plan=[("vk", "vk", now, False)],
            )


def test_defer_over_quota_marks_the_excess_with_a_note(tmp_path: Path, db_url: str) -> None:
    config = load_config(_vk_config(tmp_path, db_url, "http://127.0.0.1:9"))
    db = Database(config.database_url)
    db.check_schema()
    now = datetime.now(UTC).replace(microsecond=0)
    _seed(db, now, published=48, queued=5)
    with db.write() as session:
        deferred = defer_over_quota(session, "vk", Quota("vk-group:45", 50, 86400), now, "vk (vk-group:45)")
    assert [d.post_id for d in deferred] == [51, 52, 53]
    with db.read() as session:
        rows = session.query(Delivery).filter(Delivery.status == Status.QUEUED).order_by(Delivery.id).all()
        waiting = [r for r in rows if r.next_attempt_at > now]
        assert len(waiting) == 3
        assert [r.next_attempt_at for r in waiting] == [d.goes_at for d in deferred]
        assert all(r.note and r.note.startswith("deferred: vk (vk-group:45) takes 50 posts per day") for r in waiting)
        # The first deferred post goes out when the oldest of the day's posts leaves the 24-hour window.
        assert min(r.next_attempt_at for r in waiting) == now - timedelta(hours=20) + DAY + timedelta(seconds=1)
        # The queue summary tells when the last deferred post will really go, not the due time it missed.
        count, first, last = queued_per_channel(session, ["vk"])["vk"]
        assert count == 5 and first == now
        assert last == max(r.next_attempt_at for r in waiting)
    db.dispose()


def test_the_daemon_defers_instead_of_provoking_error_214(tmp_path: Path, sqlite_url: str) -> None:
    group = FakeGroup(45, managers={USER_ID: 3})
    fake = FakeVk(user_tokens={USER_TOKEN: USER_ID}, community_tokens={}, groups=[group], limits=True).start()
    try:
        config_path = _vk_config(tmp_path, sqlite_url, fake.url)
        db = Database(load_config(config_path).database_url)
        db.check_schema()
        now = datetime.now(UTC)
        _seed(db, now, published=48, queued=4)
        for i in range(48):  # the community already has those 48 posts today, as the fake sees it
            group.posts.append(time.time() - 20 * 3600 + i * 60)
        result = smm("run", "--once", config=config_path, env={"VK_TOKEN": USER_TOKEN})
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("deferred: vk (vk-group:45) takes 50 posts per day") == 2
        assert len(fake.published) == 2
        with db.read() as session:
            new = session.query(Delivery).filter(Delivery.post_id > 48).all()
            assert sorted(d.status for d in new) == ["published", "published", "queued", "queued"]
            assert all(d.last_error is None for d in new)  # nothing was refused by VK (error 214)
            assert sum(1 for d in new if d.note and d.note.startswith("deferred:")) == 2
        db.dispose()
    finally:
        fake.stop()


def test_a_deferral_is_a_quota_deferred_alert_naming_the_post_and_channel_once(tmp_path: Path, sqlite_url: str) -> None:
    group = FakeGroup(45, managers={USER_ID: 3})
    fake = FakeVk(user_tokens={USER_TOKEN: USER_ID}, community_tokens={}, groups=[group], limits=True).start()
    try:
        with FakeWebhook() as hook:
            assert isinstance(hook, FakeWebhook)
            destination = '[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\nevents = ["quota_deferred"]\n'
            config_path = _vk_config(tmp_path, sqlite_url, fake.url, destination)
            db = Database(load_config(config_path).database_url)
            db.check_schema()
            now = datetime.now(UTC)
            _seed(db, now, published=48, queued=4)  # posts 1-48 published, 49-52 queued: 51 and 52 wait
            db.dispose()
            for i in range(48):
                group.posts.append(time.time() - 20 * 3600 + i * 60)
            env = {"VK_TOKEN": USER_TOKEN, "SMM_ALERT_HOOK": hook.apprise_url()}
            result = smm("run", "--once", config=config_path, env=env)
            assert result.returncode == 0, result.stderr
            said = [line.removeprefix("- ") for m in hook.messages for line in m["message"].splitlines()]
    finally:
        fake.stop()
    deferred = [line for line in said if "deferred" in line and line.startswith("post ")]
    assert [line.split(":")[0] for line in deferred] == ["post 51 on vk", "post 52 on vk"]
    for line in deferred:
        # The channel is named once, by the alert; the quota by its scope; the times as every message shows them.
        assert re.fullmatch(
            r"post 5[12] on vk: deferred: vk-group:45 takes 50 posts per day; due \d{4}-\d\d-\d\d \d\d:\d\d UTC, "
            r"goes out at \d{4}-\d\d-\d\d \d\d:\d\d UTC when the window has room",
            line,
        ), line
    # The log line and the delivery's note stay as they were.
    assert result.stderr.count("post 51 to vk: deferred: vk (vk-group:45) takes 50 posts per day") == 1
