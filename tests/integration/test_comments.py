"""The comment watch against the network fakes: posts published by ``smm run --once``, comments written on the
fakes, read by the daemon's part (:class:`scheduler.daemon.comments.CommentWatch`) built in-process, listed by
``smm comments``, and the daily digest through apprise's ``json://`` to a local webhook."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.channels import AdapterFactory
from scheduler.config import Config, load_config
from scheduler.daemon import run_daemon
from scheduler.daemon.core import Daemon, build_adapters
from scheduler.db import Database
from scheduler.store import comments as rows
from tests.conftest import run_cli, write_config
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk
from tests.fakes.vk import error_body as vk_error
from tests.fakes.webhook import FakeWebhook
from tests.support import captured_log

pytestmark = pytest.mark.slow


@dataclass
class Fakes:
    vk: FakeVk
    facebook: FakeFacebook
    ok: FakeOk
    telegram: FakeTelegram
    hook: FakeWebhook

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "SMM_VK_TOKEN": USER_TOKEN,
            "SMM_FB_TOKEN": self.facebook.token,
            "SMM_OK_SECRET": self.ok.application_secret,
            "SMM_OK_TOKEN": self.ok.token,
            "SMM_TG_TOKEN": DEFAULT_TOKEN,
            "SMM_ALERT_HOOK": self.hook.apprise_url("hooksecret-0123456789"),
        }


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    started = Fakes(FakeVk().start(), FakeFacebook().start(), FakeOk().start(), FakeTelegram().start(), FakeWebhook())
    started.hook.start()
    for name, value in started.secrets.items():
        monkeypatch.setenv(name, value)
    try:
        yield started
    finally:
        for fake in (started.vk, started.facebook, started.ok, started.telegram, started.hook):
            fake.stop()


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line of smm and apprise, formatted (so redacted) as the daemon writes them."""
    with captured_log(("smm", "apprise"), logging.INFO) as lines:
        yield lines


def configure(tmp_path: Path, db_url: str, f: Fakes, extra: str = "", telegram: str = "") -> Path:
    body = (
        f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = {GROUP_ID}\ntoken_env = "SMM_VK_TOKEN"\n'
        f'api_url = "{f.vk.url}"\n\n'
        f'[[channels]]\nname = "facebook"\nnetwork = "facebook"\npage_id = {f.facebook.page_id}\n'
        f'token_env = "SMM_FB_TOKEN"\napi_url = "{f.facebook.url}"\n\n'
        f'[[channels]]\nname = "ok"\nnetwork = "ok"\ngroup_id = {f.ok.group_id}\n'
        f'application_key = "{f.ok.application_key}"\napplication_secret_env = "SMM_OK_SECRET"\n'
        f'token_env = "SMM_OK_TOKEN"\napi_url = "{f.ok.url}"\n\n'
        f'[[channels]]\nname = "telegram"\nnetwork = "telegram"\nchat_id = "@testchannel"\n'
        f'token_env = "SMM_TG_TOKEN"\napi_url = "{f.telegram.url}"\n{telegram}\n'
        '[[alerts.destinations]]\nname = "ops"\nurl_env = "SMM_ALERT_HOOK"\nevents = ["comment_digest"]\n\n' + extra
    )
    return write_config(tmp_path / "config.toml", db_url, body, outbox=False)


def publish(config: Path) -> dict[str, tuple[int, str]]:
    """One post on every channel, published by ``smm run --once``: the post id and remote id per channel."""
    added = run_cli("add", "A post to comment on", "--now", "--json", config=config)
    assert added.code == 0, added.err
    post_id = int(json.loads(added.out)["id"])
    assert run_daemon(str(config), once=True) == 0
    shown = json.loads(run_cli("show", str(post_id), "--json", config=config).out)
    found = {d["channel"]: (post_id, d["remote_id"]) for d in shown["deliveries"]}
    assert {c for c, d in zip(found, shown["deliveries"], strict=True) if d["status"] == "published"} == set(found)
    return found


def comment_everywhere(f: Fakes, posts: dict[str, tuple[int, str]], n: int = 2) -> None:
    """``n`` comments on each post of VK, Facebook and OK."""
    f.vk.people[501] = ("Ivan", "Petrov")
    for i in range(n):
        f.vk.add_comment(-GROUP_ID, int(posts["vk"][1]), 501, f"vk comment {i}", at=f.vk.now() + i)
        f.facebook.add_comment(posts["facebook"][1], "Jane Roe", f"facebook comment {i}")
        f.ok.add_comment(posts["ok"][1], "5550001", "Olga Ivanova", f"ok comment {i}")


class Watch:
    """A daemon's comment watch built from its parts, on the config's channels (closed by :meth:`close`)."""

    def __init__(self, config: Config) -> None:
        self.daemon = Daemon(config, Database(config.database_url), AdapterFactory(), load=lambda: config)
        self.rt = self.daemon.rt
        self.rt.adapters, self.rt.broken = build_adapters(self.daemon.factory, config)

    async def read(self) -> int:
        return await self.daemon.background.comments.read(datetime.now(UTC))

    async def close(self) -> None:
        for adapter in self.rt.adapters.values():
            await adapter.aclose()
        await self.daemon.factory.aclose()
        self.daemon.release()


def read_once(config: Config, times: int = 1) -> list[int]:
    async def scenario() -> list[int]:
        watch = Watch(config)
        try:
            return [await watch.read() for _ in range(times)]
        finally:
            await watch.close()

    return asyncio.run(scenario())


def stored(db_url: str) -> list[rows.StoredComment]:
    with Database(db_url).read() as session:
        return rows.listed(session, since=None, channel=None, seen_too=True)


def undigested(db_url: str) -> int:
    """How many stored comments no digest has taken yet."""
    with Database(db_url).read() as session:
        return len(session.execute(rows.comments.select().where(rows.comments.c.digest.is_(None))).all())


def test_comments_of_every_network_are_stored_once_across_reads_and_restarts(
    tmp_path: Path, db_url: str, fakes: Fakes, logged: list[str]
) -> None:
    config_path = configure(tmp_path, db_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts)
    config = load_config(config_path)

    assert read_once(config, times=2) == [6, 0]
    assert read_once(config) == [0]  # a restart reads them again, and stores nothing twice

    found = stored(db_url)
    authors = {"vk": "Ivan Petrov", "facebook": "Jane Roe", "ok": "Olga Ivanova"}
    expected = [(name, author, f"{name} comment {i}") for name, author in authors.items() for i in range(2)]
    assert sorted((c.channel, c.author, c.text) for c in found) == sorted(expected)
    vk = [c for c in found if c.channel == "vk"]
    assert {c.url for c in vk} == {f"https://vk.com/wall-{GROUP_ID}_{posts['vk'][1]}?reply={c.remote_id}" for c in vk}
    assert all(c.post_id == posts["vk"][0] for c in found)
    # Telegram cannot be read: said once per daemon, however many reads.
    telegram = [line for line in logged if "comments on channel telegram are not read" in line]
    assert len(telegram) == 2, telegram  # two daemons (the second read_once is a restart)
    assert "discussion group" in telegram[0]
    for line in logged:
        assert all(secret not in line for secret in fakes.secrets.values())


def test_smm_comments_lists_the_new_ones_newest_first_then_only_what_came_since(
    tmp_path: Path, db_url: str, fakes: Fakes
) -> None:
    config_path = configure(tmp_path, db_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts, n=1)
    config = load_config(config_path)
    read_once(config)

    first = run_cli("comments", "--json", config=config_path)
    assert first.code == 0, first.err
    listed = json.loads(first.out)
    assert len(listed) == 3 and all(c["new"] for c in listed)
    times = [datetime.fromisoformat(c["written_at"].replace("Z", "+00:00")) for c in listed]
    assert times == sorted(times, reverse=True)
    assert {c["network"] for c in listed} == {"vk", "facebook", "ok"}
    assert run_cli("comments", "--json", config=config_path).out.strip() == "[]"  # shown: no longer new

    fakes.facebook.add_comment(posts["facebook"][1], "Late Reader", "a later comment")
    read_once(config)
    text = run_cli("comments", config=config_path)
    assert text.code == 0, text.err
    assert "Late Reader" in text.out and "a later comment" in text.out and "vk comment" not in text.out
    assert f"post {posts['facebook'][0]}" in text.out
    every = json.loads(run_cli("comments", "--all", "--json", "--channel", "vk", config=config_path).out)
    assert [(c["channel"], c["new"]) for c in every] == [("vk", False)]


def test_smm_comments_since_lists_and_marks_only_what_was_written_since(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    fakes.vk.people[501] = ("Ivan", "Petrov")
    early = time.time() - 40 * 60  # before the post went out, within the hour a read looks back
    fakes.vk.add_comment(-GROUP_ID, int(posts["vk"][1]), 501, "vk, 40 min ago", at=early)
    fakes.vk.add_comment(-GROUP_ID, int(posts["vk"][1]), 501, "vk, just now")
    fakes.facebook.add_comment(posts["facebook"][1], "Jane Roe", "facebook, 40 min ago", at=early)
    fakes.facebook.add_comment(posts["facebook"][1], "Jane Roe", "facebook, just now")
    read_once(load_config(config_path))

    def texts(*args: str) -> list[str]:
        result = run_cli("comments", "--json", *args, config=config_path)
        assert result.code == 0, result.err
        return sorted(c["text"] for c in json.loads(result.out))

    assert texts("--since", "20m", "--channel", "vk") == ["vk, just now"]
    assert texts("--since", "20m") == ["facebook, just now"]  # the one above was shown: no longer new
    assert texts() == ["facebook, 40 min ago", "vk, 40 min ago"]  # what --since left out was still new
    half_an_hour_ago = (datetime.now(UTC) - timedelta(minutes=30)).isoformat(timespec="seconds")
    assert texts("--all", "--since", half_an_hour_ago) == ["facebook, just now", "vk, just now"]
    assert len(texts("--all")) == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--channel", "nope"], "--channel: no channel named 'nope'"),
        (["--since", "yesterday-ish"], "--since"),
    ],
)
def test_smm_comments_refuses_bad_input_in_one_line(
    tmp_path: Path, sqlite_url: str, args: list[str], message: str
) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    result = run_cli("comments", *args, config=config)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_a_network_error_is_read_again_at_the_next_interval_and_a_missing_right_said_once(
    tmp_path: Path, sqlite_url: str, fakes: Fakes, logged: list[str]
) -> None:
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts, n=1)
    config = load_config(config_path)
    fakes.vk.inject("wall.getComments", Fault.respond(200, vk_error(10, "Internal server error")))
    fakes.facebook.permissions.remove("pages_read_engagement")

    async def scenario() -> list[int]:
        watch = Watch(config)
        try:
            return [await watch.read() for _ in range(3)]
        finally:
            await watch.close()

    assert asyncio.run(scenario()) == [1, 1, 0]  # OK's at once; VK's at the next read; Facebook's never
    vk_failed = [line for line in logged if "reading comments on channel vk failed" in line]
    assert len(vk_failed) == 1 and "trying again at the next interval" in vk_failed[0]
    assert len(fakes.vk.calls("wall.getComments")) == 3  # no retry storm: the failed read, then one per interval
    refused = [line for line in logged if "comments on channel facebook are not read" in line]
    assert len(refused) == 1 and "pages_read_engagement" in refused[0]
    assert {c.channel for c in stored(sqlite_url)} == {"vk", "ok"}


def test_every_page_of_a_read_counts_in_the_tokens_window_as_publishing_does(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    """A post with 250 comments takes three wall.getComments on VK's 3-a-second token: the two pages past the one
    the read was paced for are recorded in the token's window, so a publish waits for them instead of meeting
    error 6."""
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    fakes.vk.people[501] = ("Ivan", "Petrov")
    for i in range(250):
        fakes.vk.add_comment(-GROUP_ID, int(posts["vk"][1]), 501, f"vk comment {i}", at=fakes.vk.now() + i)
    counted: list[float] = []

    async def scenario() -> int:
        watch = Watch(load_config(config_path))
        limiter = watch.daemon.limiter
        per_request = {x.scope for x in watch.rt.adapters["vk"].rate_limits() if x.unit == "request"}
        record = limiter.sent

        def sent(limits: Any, now: float, units: dict[str, float] | None = None) -> Any:
            counted.extend((units or {}).get(x.scope, 1.0) for x in limits if x.scope in per_request)
            return record(limits, now, units)

        limiter.sent = sent  # type: ignore[method-assign]
        try:
            return await watch.read()
        finally:
            await watch.close()

    assert asyncio.run(scenario()) == 250
    requests = len(fakes.vk.calls("wall.getComments"))
    assert requests == 3 and sum(counted) == requests


def test_a_post_deleted_on_the_network_is_skipped_and_the_others_are_read(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts, n=1)
    fakes.ok.delete(posts["ok"][1])
    assert read_once(load_config(config_path), times=2) == [2, 0]
    assert {c.channel for c in stored(sqlite_url)} == {"vk", "facebook"}
    assert len(fakes.ok.calls("discussions.getComments")) == 1  # a post found gone is not asked about again


def test_the_daily_digest_names_posts_channels_and_links_and_takes_each_comment_once(
    tmp_path: Path, sqlite_url: str, fakes: Fakes, logged: list[str]
) -> None:
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts)
    fakes.vk.add_comment(-GROUP_ID, int(posts["vk"][1]), 501, f"my token is {USER_TOKEN}")
    config = load_config(config_path)

    async def scenario() -> None:
        watch = Watch(config)
        sender = watch.daemon.alerts
        sender.start()
        try:
            assert await watch.read() == 7
            await watch.daemon.background.comments.digest()
            await watch.daemon.background.comments.digest()  # nothing new: no message
            deadline = time.monotonic() + 10
            while not fakes.hook.messages and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await sender.stop()
        finally:
            await watch.close()

    asyncio.run(scenario())
    (message,) = fakes.hook.messages
    post = posts["vk"][0]
    assert message["title"] == "smm: comment digest"
    headline, *lines = message["message"].splitlines()
    assert headline == f"7 new comments: post {post} on facebook (2), ok (2), vk (3)"
    assert len(lines) == 7
    assert any(f"https://vk.com/wall-{GROUP_ID}_{posts['vk'][1]}?reply=" in line for line in lines)
    assert any("Jane Roe: facebook comment 0 https://www.facebook.com/" in line for line in lines)
    for text in [message["message"], *logged]:
        assert USER_TOKEN not in text and "hooksecret-0123456789" not in text
    assert undigested(sqlite_url) == 0


def test_the_digest_waits_while_its_destination_cannot_be_read_and_follows_a_reload(
    tmp_path: Path, sqlite_url: str, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = configure(tmp_path, sqlite_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts, n=1)
    readable = load_config(config_path)
    config_path.write_text(config_path.read_text().replace('"SMM_ALERT_HOOK"', '"SMM_ALERT_UNSET"'))
    monkeypatch.delenv("SMM_ALERT_UNSET", raising=False)
    unreadable = load_config(config_path)  # the config wants a digest; the sender cannot send it anywhere

    async def scenario() -> tuple[int, int]:
        watch = Watch(unreadable)
        watch.daemon.load = lambda: readable
        watch.daemon.alerts.start()
        try:
            assert await watch.read() == 3
            await watch.daemon.background.comments.digest()
            waiting = undigested(sqlite_url)
            await watch.daemon.reload()  # SIGHUP: the destination's URL can be read now, by a new sender
            await watch.daemon.background.comments.digest()
            deadline = time.monotonic() + 10
            while not fakes.hook.messages and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await watch.daemon.alerts.stop()
            return waiting, undigested(sqlite_url)
        finally:
            await watch.close()

    assert asyncio.run(scenario()) == (3, 0)
    (message,) = fakes.hook.messages
    assert message["message"].startswith(f"3 new comments: post {posts['vk'][0]} on facebook (1), ok (1), vk (1)")


def test_a_digest_whose_destination_goes_while_it_takes_the_comments_gives_them_back(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    """A SIGHUP may swap the sender while the digest writes: what it took waits for the next digest, not lost."""
    config_path = configure(tmp_path, sqlite_url, fakes)
    comment_everywhere(fakes, publish(config_path), n=1)
    answers = iter([True, False])  # wanted when the digest starts; gone once the comments are taken

    async def scenario() -> None:
        watch = Watch(load_config(config_path))
        watch.daemon.rt.alert_wanted = lambda event: next(answers)
        try:
            assert await watch.read() == 3
            await watch.daemon.background.comments.digest()
        finally:
            await watch.close()

    asyncio.run(scenario())
    assert fakes.hook.messages == []
    assert undigested(sqlite_url) == 3


def test_two_daemons_on_postgresql_store_and_digest_each_comment_once(
    tmp_path: Path, postgres_url: str, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = configure(tmp_path, postgres_url, fakes)
    posts = publish(config_path)
    comment_everywhere(fakes, posts, n=3)
    config = load_config(config_path)
    alerts: list[Any] = []

    async def scenario() -> list[int]:
        watches = [Watch(config), Watch(config)]
        for watch in watches:
            watch.rt.alert = alerts.append
            await watch.daemon.membership.join(datetime.now(UTC))
        try:
            # The worst case: both think they own every channel (a lease group changing hands mid-read).
            for watch in watches:
                monkeypatch.setattr(watch.daemon.membership, "may_read", _always)
            counts = list(await asyncio.gather(*(w.read() for w in watches)))
            await asyncio.gather(*(w.daemon.background.comments.digest() for w in watches))
            return counts
        finally:
            for watch in watches:
                await watch.daemon.membership.leave()
                await watch.close()

    counts = asyncio.run(scenario())
    assert sum(counts) == 9
    assert len(stored(postgres_url)) == 9
    digested = [line for alert in alerts for line in alert.details]
    assert len(digested) == 9 and len(set(digested)) == 9


async def _always(name: str) -> bool:
    return True


def test_the_daemon_plans_the_reads_and_the_digest_as_timer_jobs_unless_disabled(
    tmp_path: Path, sqlite_url: str, fakes: Fakes
) -> None:
    async def planned(extra: str) -> tuple[datetime | None, datetime | None]:
        config = load_config(configure(tmp_path, sqlite_url, fakes, extra))
        watch = Watch(config)
        try:
            watch.daemon.start_timer()
            return watch.daemon.timer.planned("comments"), watch.daemon.timer.planned("comment_digest")
        finally:
            await watch.daemon.timer.stop(lambda tasks: asyncio.sleep(0, 0))
            await watch.close()

    before = datetime.now(UTC)
    reads, digest = asyncio.run(planned('[comments]\ndigest_at = "09:30"\n'))
    assert reads is not None and before < reads <= datetime.now(UTC) + timedelta(seconds=60)
    assert digest is not None and digest.astimezone(UTC).strftime("%H:%M") == "09:30"  # [schedule] zone: UTC
    assert asyncio.run(planned("[comments]\nenabled = false\n")) == (None, None)


def link_discussion_group(tg: FakeTelegram, *, bot_status: str = "administrator") -> int:
    """The fake channel's discussion group (the bot an admin of it by default); returns its id."""
    group = tg.add_chat(-1009876543210, "testchat", title="Test chat", type="supergroup", bot_status=bot_status)
    group.linked_chat_id = tg.chats[0].id
    tg.chats[0].linked_chat_id = group.id
    return group.id


def test_telegram_comments_are_read_from_the_bots_updates_when_the_channel_asks_for_it(
    tmp_path: Path, db_url: str, fakes: Fakes, logged: list[str]
) -> None:
    tg = fakes.telegram
    group = link_discussion_group(tg)
    config_path = configure(tmp_path, db_url, fakes, telegram="read_comments = true\n")
    post_id, remote = publish(config_path)["telegram"]
    forward = tg.forward_to_discussion("@testchannel", int(remote))
    first = tg.comment(group, forward, "Maria Ivanova", "Where can I buy it?")
    tg.comment(group, forward, "Shop Team", "In our shop", reply_to=first)
    config = load_config(config_path)

    assert read_once(config) == [2]
    tg.comment(group, forward, "Maria Ivanova", "Thanks!")
    assert read_once(config) == [1]  # a restart: the confirmed updates do not come again, the new one does

    found = sorted((c for c in stored(db_url) if c.channel == "telegram"), key=lambda c: c.id)
    assert [(c.author, c.text, c.post_id) for c in found] == [
        ("Maria Ivanova", "Where can I buy it?", post_id),
        ("Shop Team", "In our shop", post_id),
        ("Maria Ivanova", "Thanks!", post_id),
    ]
    assert found[0].url == f"https://t.me/testchannel/{remote}?comment={first}"
    assert len(tg.calls("getUpdates")) == 2  # one a read: the posts of a read share it
    assert json.loads(tg.calls("getUpdates")[0].params["allowed_updates"]) == ["message"]
    assert not [line for line in logged if "comments on channel telegram are not read" in line]


def test_telegram_comments_need_a_bot_nobody_else_polls_and_that_may_see_the_group(
    tmp_path: Path, sqlite_url: str, fakes: Fakes, logged: list[str]
) -> None:
    tg = fakes.telegram
    group = link_discussion_group(tg, bot_status="member")  # privacy mode on: it sees no comment
    config_path = configure(tmp_path, sqlite_url, fakes, telegram="read_comments = true\n")
    _, remote = publish(config_path)["telegram"]
    forward = tg.forward_to_discussion("@testchannel", int(remote))
    tg.comment(group, forward, "Maria Ivanova", "Hello?")
    config = load_config(config_path)
    assert read_once(config) == [6 * 0]  # nothing on the other networks either: no comments there

    tg.webhook = "https://example.com/hook"
    assert read_once(config, times=2) == [0, 0]
    conflict = [line for line in logged if "comments on channel telegram are not read" in line]
    assert len(conflict) == 1 and "the bot's updates are taken elsewhere" in conflict[0]
    assert stored(sqlite_url) == []
