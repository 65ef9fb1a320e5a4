"""Alerts through apprise's real code (its ``json://`` scheme) to a webhook on 127.0.0.1: what arrives, a flood
grouped into a few messages, a destination that hangs, no token in any alert or log line, and ``smm alerts test``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import store
from scheduler.alerts import Alert, AlertSender, Target, secret_url, send_bounded, send_with_apprise
from scheduler.config import load_config
from scheduler.config_alerts import ALERT_EVENTS
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from tests.conftest import run_cli, write_config
from tests.fakes.base import Fault
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk
from tests.fakes.vk import error_body as vk_error
from tests.fakes.webhook import FakeWebhook
from tests.support import DaemonProcess, captured_log, smm, wait_for

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as server:
        assert isinstance(server, FakeWebhook)
        yield server


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line (the daemon's formatter, so redacted as in production), apprise's included."""
    with captured_log(("", "apprise"), logging.DEBUG) as lines:
        yield lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failed(n: int) -> Alert:
    return Alert("delivery_failed", f"HTTP 500 from VK (attempt 8 of 8), token={TOKEN}", "vk-news", n, None)


def test_one_alert_arrives_as_apprise_json_with_the_post_channel_and_link(hook: FakeWebhook) -> None:
    async def scenario() -> None:
        sender = AlertSender([Target("hook", hook.apprise_url(), frozenset(ALERT_EVENTS))])
        sender.start()
        sender.notify(
            Alert(
                "delivery_unknown",
                "no answer: check the channel, then `smm resolve 12 --published`",
                "tg-news",
                12,
                "https://t.me/news/3",
            )
        )
        deadline = time.monotonic() + 10
        while not hook.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await sender.stop()

    asyncio.run(scenario())
    (message,) = hook.messages
    assert message["title"] == "smm: delivery in doubt"
    assert message["message"] == (
        "post 12 on tg-news: no answer: check the channel, then `smm resolve 12 --published` https://t.me/news/3"
    )
    assert message["type"] == "info"
    assert hook.calls("hook")[0].headers["user-agent"] == "smm-scheduler"


def test_a_flood_of_1000_failures_is_two_messages_and_no_token_anywhere(hook: FakeWebhook, logged: list[str]) -> None:
    clock = Clock()
    secret = "s3cr3t-webhook-key-0123456789"
    target = Target("hook", secret_url(hook.apprise_url(secret)), frozenset({"delivery_failed"}))

    async def scenario() -> None:
        sender = AlertSender([target], interval=60, monotonic=clock)
        gc.disable()  # a full collection of the whole suite's heap can take 0.5 s: it says nothing about notify
        try:
            started = time.perf_counter()
            for n in range(1000):
                sender.notify(failed(n))
            sender.notify(Alert("queue_dry", "not wanted by this destination"))
            assert time.perf_counter() - started < 0.5  # notify only queues
        finally:
            gc.enable()
        await sender.pump()  # the first message goes at once: the whole burst so far
        for n in range(1000, 2000):
            sender.notify(failed(n))
        await sender.pump()  # within the minute: nothing
        assert len(hook.messages) == 1
        clock.now += 60
        await sender.pump()

    asyncio.run(scenario())
    first, second = hook.messages
    assert first["title"] == second["title"] == "smm: 1,000 alerts"
    assert first["message"].startswith("1,000 deliveries failed:\n- post 0 on vk-news: HTTP 500 from VK")
    assert first["message"].endswith("- and 995 more")
    assert "post 1000 on vk-news" in second["message"]
    for text in [*(m["message"] for m in hook.messages), *logged]:
        assert TOKEN not in text and TOKEN.split(":")[1] not in text
        assert secret not in text
    assert "token=[REDACTED]" in first["message"]
    assert any("/hook/[REDACTED]" in line for line in logged), "apprise logged no URL: the check above checked nothing"


def test_a_destination_that_hangs_costs_at_most_the_timeout(hook: FakeWebhook) -> None:
    hook.inject("hook", Fault.delay(5))

    async def scenario() -> tuple[str | None, float]:
        started = time.perf_counter()
        error = await send_bounded(send_with_apprise, hook.apprise_url(), "t", "b", 0.5)
        return error, time.perf_counter() - started

    error, took = asyncio.run(scenario())
    assert error is not None
    assert took < 2.0


def test_a_stop_during_a_send_waits_for_it_instead_of_dropping_it(hook: FakeWebhook) -> None:
    hook.inject("hook", Fault.delay(0.5))  # the request arrives, its answer comes 0.5 s later

    async def scenario() -> float:
        sender = AlertSender([Target("hook", hook.apprise_url(), frozenset(ALERT_EVENTS))])
        sender.start()
        sender.notify(failed(1))
        deadline = time.monotonic() + 10
        while not hook.calls("hook") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await sender.stop()
        return time.perf_counter() - started

    # The stop waited for the send's answer (a process exits next, and a send's thread with it) and did not send
    # the same alert again.
    assert asyncio.run(scenario()) >= 0.4
    assert len(hook.messages) == 1


def test_failed_sends_are_retried_then_logged_once(logged: list[str]) -> None:
    with socket.socket() as refusing:  # bound, never listening: connections are refused
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        clock = Clock()
        sender = AlertSender(
            [Target("down", f"json://127.0.0.1:{port}/hook", frozenset(ALERT_EVENTS))],
            attempts=3,
            backoff=5,
            monotonic=clock,
        )

        async def scenario() -> list[float | None]:
            waits = []
            sender.notify(failed(1))
            for _ in range(3):
                await sender.pump()
                waits.append(sender.next_due())
                clock.now += 10
            return waits

        waits = asyncio.run(scenario())
    assert waits == [5.0, 10.0, None]  # backoff 5 s, then 10 s, then dropped
    dropped = [line for line in logged if "smm.alerts" in line]
    assert len(dropped) == 1
    assert "alerts: down: dropped 1 alert after 3 failed sends: A Connection error occurred" in dropped[0]


def test_smm_alerts_test_reports_each_destination_and_fails_when_one_does(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        monkeypatch.setenv("SMM_ALERT_GOOD", hook.apprise_url("hooksecret-123456789"))
        monkeypatch.setenv("SMM_ALERT_BAD", f"json://127.0.0.1:{port}/hook/badsecret-123456789")
        body = (
            '[[alerts.destinations]]\nname = "good"\nurl_env = "SMM_ALERT_GOOD"\n'
            '[[alerts.destinations]]\nname = "refusing"\nurl_env = "SMM_ALERT_BAD"\n'
            '[[alerts.destinations]]\nname = "unset"\nurl_env = "SMM_ALERT_UNSET"\n'
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, body)
        result = run_cli("alerts", "test", config=config)
    assert result.code == 1
    assert result.out.splitlines() == [
        "good      ok",
        "refusing  A Connection error occurred sending JSON notification to 127.0.0.1.",
        "unset     alerts.destinations[2].url_env: environment variable SMM_ALERT_UNSET is not set",
    ]
    assert hook.messages[0]["title"] == "smm: test alert"
    assert "secret" not in result.out + result.err
    assert not (tmp_path / "smm.db").exists()


def test_smm_alerts_test_prints_one_line_per_destination_and_leaves_apprises_lines_to_the_verbose_log(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        monkeypatch.setenv("SMM_ALERT_BAD", "json://")
        monkeypatch.setenv("SMM_ALERT_DOWN", f"json://127.0.0.1:{refusing.getsockname()[1]}/hook")
        body = (
            '[[alerts.destinations]]\nname = "bad"\nurl_env = "SMM_ALERT_BAD"\n'
            '[[alerts.destinations]]\nname = "down"\nurl_env = "SMM_ALERT_DOWN"\n'
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, body)
        result = run_cli("alerts", "test", config=config)
        verbose = run_cli("alerts", "test", "-v", config=config)
    assert result.code == verbose.code == 1
    assert result.out.splitlines() == [
        "bad   not a URL apprise can send to (check its scheme and parts)",
        "down  A Connection error occurred sending JSON notification to 127.0.0.1.",
    ]
    assert result.err == ""
    assert verbose.out == result.out
    assert "ERROR apprise: Unparseable JSON URL" in verbose.err
    assert "WARNING apprise: A Connection error occurred" in verbose.err


def test_smm_alerts_test_exits_0_when_every_destination_got_it(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_ALERT_GOOD", hook.apprise_url())
    body = '[[alerts.destinations]]\nname = "good"\nurl_env = "SMM_ALERT_GOOD"\n'
    result = run_cli("alerts", "test", config=write_config(tmp_path / "config.toml", sqlite_url, body))
    assert (result.code, result.out) == (0, "good  ok\n")
    assert len(hook.messages) == 1


def test_smm_alerts_test_without_destinations_is_a_user_error(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    result = run_cli("alerts", "test", config=config)
    assert result.code == 2
    assert result.err == f"smm: error: {config}: no alert destinations: add an [[alerts.destinations]] table\n"


def test_the_daemon_alerts_a_failed_delivery_and_its_channel_and_sends_them_before_it_stops(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url("daemonsecret-123456789"))
    body = (
        f'[[channels]]\nname = "blocked"\nnetwork = "outbox"\npath = "{blocked}"\n'
        '[[alerts.destinations]]\nname = "ops"\nurl_env = "SMM_ALERT_HOOK"\n'
        'events = ["delivery_failed", "channel_attention"]\n'
    )
    config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False)
    assert run_cli("add", "hello", "--now", config=config).code == 0
    hook.inject("hook", Fault.delay(0.5))  # still sending when run --once is done: the stop waits for it
    result = run_cli("run", "--once", config=config)
    assert result.code == 0, result.err
    said = "\n\n".join(m["message"] for m in hook.messages)
    assert "post 1 on blocked: cannot write to the outbox" in said
    assert "(after fixing it: smm retry 1)" in said
    assert "blocked: cannot write to the outbox" in said and "(smm doctor checks it)" in said
    assert "daemonsecret" not in said + result.err


@pytest.mark.parametrize("batch", [100, 6], ids=["all read", "more than a read"])
def test_a_start_after_an_unclean_stop_is_an_alert(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """The alert names the first posts and counts them all, past the deliveries read at once (``LOOK_BATCH``)."""
    monkeypatch.setattr("scheduler.daemon.lifecycle.LOOK_BATCH", batch)
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
    body = '[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\nevents = ["unclean_start"]\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, body, extra_top='[daemon]\nreconcile_delay = "1s"\n')
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    now = datetime.now(UTC)
    for n in range(7):
        add_post(cfg, db, NewPost(text=f"claimed {n}, then the daemon died", channels=["outbox"], now=True), now)
    with db.write() as session:
        for _ in range(7):
            assert store.claim(session, "outbox", now, "dead-daemon", timedelta(seconds=0)) is not None
    db.dispose()
    result = run_cli("run", "--once", config=config)
    assert result.code == 0, result.err
    (message,) = hook.messages
    assert message["title"] == "smm: start after an unclean stop"
    assert message["message"] == (
        "7 deliveries were being published when a daemon stopped (post 1 on outbox, post 2 on outbox, "
        "post 3 on outbox, post 4 on outbox, post 5 on outbox and 2 more); checking each before anything is sent again"
    )
    # The log line stays as it was: the count, then what the daemon does.
    assert "7 deliveries were being published when a daemon stopped; checking each" in result.err


def test_a_queue_that_runs_dry_is_an_alert_from_the_summary(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
    body = '[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\nevents = ["queue_dry"]\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, body)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M+00:00")
    assert run_cli("add", "the last post queued", "--at", tomorrow, config=config).code == 0
    assert run_cli("run", "--once", config=config).code == 0
    (message,) = hook.messages
    assert message["title"] == "smm: queue runs dry"
    assert message["message"].startswith("outbox: the queue runs dry after ")  # the channel, named once
    assert message["message"].endswith(", within 7 days; queue more posts to keep the cadence")


def test_sighup_starts_sending_to_destinations_added_to_the_config(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    channel = f'[[channels]]\nname = "blocked"\nnetwork = "outbox"\npath = "{blocked}"\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, channel, outbox=False)
    env = {"SMM_ALERT_HOOK": hook.apprise_url("reloadsecret-123456789")}
    with DaemonProcess(config, env=env) as daemon:
        daemon.wait_ready()
        config.write_text(
            config.read_text() + '[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\nevents = ["delivery_failed"]\n'
        )
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"config reloaded")
        assert smm("add", "after the reload", "--now", config=config).returncode == 0
        wait_for(lambda: hook.messages, timeout=10, what="an alert after the reload")
        assert daemon.stop() == 0
        log = daemon.log
    (message,) = hook.messages
    assert message["message"].startswith("post 1 on blocked: cannot write to the outbox")
    assert "reloadsecret" not in log


def test_a_hung_destination_holds_the_stop_no_longer_than_shutdown_grace(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
    body = (
        f'[[channels]]\nname = "blocked"\nnetwork = "outbox"\npath = "{blocked}"\n'
        '[alerts]\ntimeout = "30s"\n[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\n'
    )
    config = write_config(
        tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top='[daemon]\nshutdown_grace = "1s"\n'
    )
    assert run_cli("add", "hello", "--now", config=config).code == 0
    hook.inject("hook", *[Fault.delay(20)] * 5)
    started = time.perf_counter()
    result = run_cli("run", "--once", config=config)
    took = time.perf_counter() - started
    assert result.code == 0, result.err
    assert took < 4.0, result.err
    assert "alerts: stopping before" in result.err


@pytest.fixture
def vk() -> Iterator[FakeVk]:
    fake = FakeVk().start()
    try:
        yield fake
    finally:
        fake.stop()


def vk_config(tmp_path: Path, db_url: str, vk: FakeVk, events: str, extra_top: str = "") -> Path:
    body = (
        f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = {GROUP_ID}\ntoken_env = "SMM_VK_TOKEN"\n'
        f'api_url = "{vk.url}"\n'
        f'[[alerts.destinations]]\nname = "ops"\nurl_env = "SMM_ALERT_HOOK"\nevents = [{events}]\n'
    )
    return write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=extra_top)


def test_a_refused_deletion_is_an_alert_with_the_posts_link(
    hook: FakeWebhook, vk: FakeVk, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_VK_TOKEN", USER_TOKEN)
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
    config = vk_config(tmp_path, sqlite_url, vk, '"delivery_failed"')
    assert run_cli("add", "to be taken down", "--now", config=config).code == 0
    assert run_cli("run", "--once", config=config).code == 0
    (delivery,) = json.loads(run_cli("show", "1", "--json", config=config).out)["deliveries"]
    assert delivery["status"] == "published" and delivery["remote_url"]
    assert run_cli("delete", "1", config=config).code == 0
    vk.inject("wall.delete", Fault.respond(200, vk_error(100, "One of the parameters specified was missing")))
    result = run_cli("run", "--once", config=config)
    assert result.code == 0, result.err
    (message,) = hook.messages
    assert message["title"] == "smm: delivery failed"
    assert message["message"].startswith("post 1 on vk: not deleted: VK rejected a parameter of wall.delete")
    assert message["message"].endswith(f" {delivery['remote_url']}")


def test_a_delivery_the_daemon_cannot_settle_is_a_delivery_unknown_alert_with_the_resolve_line(
    hook: FakeWebhook, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as telegram:
        assert isinstance(telegram, FakeTelegram)
        monkeypatch.setenv("SMM_TG_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
        body = (
            f'[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@testchannel"\n'
            f'token_env = "SMM_TG_TOKEN"\napi_url = "{telegram.url}"\n'
            '[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\nevents = ["delivery_unknown"]\n'
        )
        top = '[daemon]\nreconcile_delay = "1s"\n'
        config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top=top)
        assert run_cli("add", "did it go out?", "--now", config=config).code == 0
        telegram.inject("sendMessage", Fault.drop_after())  # sent, and the answer lost: Telegram cannot be read back
        result = run_cli("run", "--once", config=config)
    assert result.code == 0, result.err
    (delivery,) = json.loads(run_cli("show", "1", "--json", config=config).out)["deliveries"]
    assert delivery["status"] == "unknown"
    (message,) = hook.messages
    assert message["title"] == "smm: delivery in doubt"
    assert message["message"].startswith("post 1 on tg: the outcome is unknown and telegram cannot be read back: ")
    assert "then run `smm resolve 1 --published [--url URL]` or `smm resolve 1 --retry`" in message["message"]
    assert DEFAULT_TOKEN not in message["message"] and DEFAULT_TOKEN.split(":")[1] not in message["message"]


def test_a_delivery_that_ran_out_of_retries_is_a_delivery_failed_alert(
    hook: FakeWebhook, vk: FakeVk, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_VK_TOKEN", USER_TOKEN)
    monkeypatch.setenv("SMM_ALERT_HOOK", hook.apprise_url())
    config = vk_config(
        tmp_path, sqlite_url, vk, '"delivery_failed"', "[retry]\nmax_attempts = 2\nin_call_attempts = 1\n"
    )
    assert run_cli("add", "VK is down today", "--now", config=config).code == 0
    vk.inject("wall.post", *[Fault.respond(200, vk_error(10, "Internal server error"))] * 2)
    assert run_cli("run", "--once", config=config).code == 0
    assert hook.messages == []  # attempt 1 of 2: a retry is planned, nobody needs to act yet
    assert run_cli("reschedule", "1", "--now", config=config).code == 0
    result = run_cli("run", "--once", config=config)
    assert result.code == 0, result.err
    assert len(vk.calls("wall.post")) == 2
    (message,) = hook.messages
    assert message["title"] == "smm: delivery failed"
    assert message["message"] == (
        "post 1 on vk: VK failed on wall.post (error 10: Internal server error); retry later; gave up after "
        "2 attempts. Check the network and the channel, then: smm retry 1"
    )


def test_a_hung_destination_does_not_delay_a_post(hook: FakeWebhook, tmp_path: Path, sqlite_url: str) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    body = (
        f'[[channels]]\nname = "blocked"\nnetwork = "outbox"\npath = "{blocked}"\n'
        '[alerts]\ntimeout = "30s"\n[[alerts.destinations]]\nurl_env = "SMM_ALERT_HOOK"\n'
    )
    config = write_config(tmp_path / "config.toml", sqlite_url, body, extra_top='[daemon]\nshutdown_grace = "1s"\n')
    hook.inject("hook", *[Fault.delay(25)] * 5)  # never answers within the 30 s the test may last
    with DaemonProcess(config, env={"SMM_ALERT_HOOK": hook.apprise_url()}) as daemon:
        daemon.wait_ready()
        assert (
            smm("add", "fails, and the alert about it hangs", "--now", "--channel", "blocked", config=config).returncode
            == 0
        )
        wait_for(lambda: hook.calls("hook"), timeout=15, what="the alert's send to reach the hung destination")
        added = smm("add", "due now", "--now", "--channel", "outbox", "--json", config=config)
        assert added.returncode == 0, added.stderr
        post = json.loads(added.stdout)["id"]

        def published() -> dict[str, str] | None:
            shown = json.loads(smm("show", str(post), "--json", config=config).stdout)
            (delivery,) = shown["deliveries"]
            return delivery if delivery["status"] == "published" else None

        delivery = wait_for(published, timeout=20, what="the post due now to be published")
        assert daemon.stop() == 0
    late = datetime.fromisoformat(delivery["published_at"]) - datetime.fromisoformat(delivery["due_at"])
    assert late < timedelta(seconds=10), late  # the alert's send, hung for 25 s, took none of it
    assert len(hook.calls("hook")) == 1  # still hanging when the post went out
