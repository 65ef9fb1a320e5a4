"""The real daemon against the four fakes while they misbehave at random: 5xx answers, rate limits, answers slower
than the channel's one-second timeout, connections dropped before and after the network applied the request, and
one token revoked mid-run. It runs until every delivery is terminal; then nothing is lost, nothing is published
twice, Telegram's in-doubt deliveries are held as ``unknown`` (on_uncertain = "hold"), the revoked channel's
deliveries failed with what to do and the channel needs attention, and everything else is published.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.config import load_config
from scheduler.db import Database
from scheduler.models import Delivery, Post
from tests.conftest import run_cli, write_config
from tests.fakes.base import FakeRequest, FakeResponse
from tests.reliability.chaos import Chaos, target_of
from tests.reliability.harness import TERMINAL, Networks, queue_posts
from tests.support import DaemonProcess, smm

pytestmark = pytest.mark.slow

SEED = 20261126
POSTS_PER_CHANNEL = 3
#: The channel whose token is revoked, and the first of its posts that meets the revoked token.
REVOKED, REVOKED_FROM = "vk1", 1
#: The reconcile delay must outlast how late a slow request can still land (here 1.5 s against a 1 s timeout).
SETTINGS = """
[daemon]
tick = "0.2s"
reconcile_delay = "2.5s"
late_grace = "1d"
shutdown_grace = "5s"
lease = "3s"
[retry]
max_attempts = 100
in_call_attempts = 2
in_call_max_wait = "0.5s"
backoff_base = "0.2s"
backoff_cap = "1s"
"""


def revoke_on(networks: Networks, channel: str, post: int) -> None:
    """Revoke ``channel``'s VK token just before the wall.post of its post number ``post`` arrives."""
    index = int(channel.removeprefix("vk"))
    token = networks.env[f"VK_TOKEN_{index}"]
    marker = f"post {post} on {channel}"
    fake = networks.vk
    handle = fake.handle

    def hooked(request: FakeRequest) -> FakeResponse:
        if fake.fault_key(request) == "wall.post" and marker in request.params.get("message", ""):
            fake.revoke_token(token)
        return handle(request)

    setattr(fake, "handle", hooked)  # noqa: B010 - an instance hook


def deliveries(config: Path) -> list[tuple[str, str, str, str | None]]:
    """(text, channel, status, last_error) of every delivery."""
    db = Database(load_config(config).database_url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(Post.text, Delivery.channel, Delivery.status, Delivery.last_error).join(
                    Delivery, Delivery.post_id == Post.id
                )
            ).all()
            return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        db.dispose()


def test_random_network_faults_lose_nothing_and_publish_nothing_twice(tmp_path: Path, sqlite_url: str) -> None:
    networks = Networks(per_network=3)
    try:
        body = networks.config_body().replace('timeout = "3s"', 'timeout = "1s"')
        body = body.replace('network = "telegram"\n', 'network = "telegram"\non_uncertain = "hold"\n')
        config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top=SETTINGS)
        texts = queue_posts(config, networks, 0, per_channel=POSTS_PER_CHANNEL)
        assert len(texts) == len(networks.channels) * POSTS_PER_CHANNEL

        chaos = Chaos(random.Random(SEED), probability=0.4, slow_seconds=1.5, per_target=2, per_target_on={"vk": 3})
        revoked_group = 100 + int(REVOKED.removeprefix("vk"))
        chaos.spared.add(f"wall:-{revoked_group}")  # its deliveries must meet the revoked token, not a fault
        for name in ("telegram", "vk", "facebook", "ok"):
            chaos.attach(getattr(networks, name), name)
        revoke_on(networks, REVOKED, REVOKED_FROM)

        started = time.monotonic()
        with DaemonProcess(config, env=networks.env) as daemon:
            while True:
                rows = deliveries(config)
                if all(status in TERMINAL for _, _, status, _ in rows):
                    break
                if time.monotonic() - started > 35:
                    waiting = [r for r in rows if r[2] not in TERMINAL]
                    pytest.fail(f"not terminal after 35 s: {waiting}\n{chaos.summary()}\n{daemon.log[-5000:]}")
                time.sleep(0.2)
            assert daemon.stop() == 0
        log = daemon.log
        took = time.monotonic() - started
        doctor = smm("doctor", config=config, env=networks.env)
    finally:
        networks.stop()

    print(f"settled in {took:.1f}s; faults injected: {chaos.summary()}")
    # Every kind of fault of every network was exercised (else the run proves less than it claims).
    for name in ("telegram", "vk", "facebook", "ok"):
        expected = {"server_error", "slow", "drop_before", "drop_after"} | ({"rate_limit"} if name != "ok" else set())
        assert chaos.kinds(name) == expected, (name, chaos.summary())

    copies = networks.copies()
    network_of = dict(networks.channels)
    statuses: Counter[tuple[str, str]] = Counter()
    for text, channel, status, error in rows:
        network = network_of[channel]
        statuses[(network, status)] += 1
        assert copies[text] <= 1, f"published {copies[text]} times: {text!r}"
        if channel == REVOKED and int(text.split()[3]) >= REVOKED_FROM:
            assert status == "failed", (text, status, error)
            assert error is not None and "the VK token is invalid or expired (error 5" in error
            assert "get a new user token" in error
            assert copies[text] == 0
        elif status == "unknown":
            # Only Telegram, which cannot be read back, holds in-doubt deliveries; each says how to settle it.
            assert network == "telegram", (text, error)
            assert error is not None and "smm resolve" in error and "cannot be read back" in error
        else:
            assert (status, copies[text]) == ("published", 1), (text, status, error)
    # Something was in doubt on Telegram (a slow answer or a dropped connection there can only end as unknown).
    assert statuses[("telegram", "unknown")] >= 1, statuses

    queue = run_cli("queue", config=config)
    assert queue.code == 0, queue.err
    flagged = [line for line in queue.out.splitlines() if line.startswith(f"! channel '{REVOKED}' needs attention")]
    assert len(flagged) == 1 and "the VK token is invalid or expired" in flagged[0], queue.out
    assert [line for line in queue.out.splitlines() if "needs attention" in line] == flagged
    # doctor fails the revoked channel only, with the network's reason and the last publish error.
    assert doctor.returncode == 1
    failing = [line.split()[1] for line in doctor.stdout.splitlines() if line.startswith("FAIL")]
    assert failing == [REVOKED], doctor.stdout
    assert "last publish error: the VK token is invalid or expired" in doctor.stdout

    # No bug surfaced: no traceback, no worker died, no adapter raised outside its error mapping.
    for sign in ("Traceback", "unexpected error in its worker", "unexpected error; treating"):
        assert sign not in log, log[-5000:]
    printed = log + queue.out + queue.err + doctor.stdout + doctor.stderr + json.dumps(rows)
    assert [name for name, secret in networks.env.items() if secret in printed] == []


def test_chaos_spares_what_it_is_told_to(tmp_path: Path) -> None:
    """The injector itself: probability 1 faults every publishing request of a target, up to the cap, and none of a
    spared target or of a read."""
    from tests.fakes.base import FakeRequest as Request

    chaos = Chaos(random.Random(1), probability=1.0, per_target=2)
    networks = Networks(per_network=1)
    try:
        chaos.spared.add("wall:-100")
        chaos.attach(networks.telegram, "telegram")
        chaos.attach(networks.vk, "vk")
        tg = networks.telegram
        faults = []
        for _ in range(3):
            request = Request("POST", "/botX/sendMessage", {}, {}, b"", {"chat_id": "@c", "text": "t"})
            tg.fault_key(request)
            faults.append(tg._next_fault("sendMessage"))
        assert [f is not None for f in faults] == [True, True, False]
        read = Request("POST", "/botX/getChat", {}, {}, b"", {"chat_id": "@c"})
        tg.fault_key(read)
        assert tg._next_fault("getChat") is None
        spared = Request("POST", "/method/wall.post", {}, {}, b"", {"owner_id": "-100", "message": "m"})
        networks.vk.fault_key(spared)
        assert networks.vk._next_fault("wall.post") is None
        assert target_of("vk", spared) == "wall:-100"
        assert [i.text for i in chaos.injected] == ["t", "t"]
    finally:
        networks.stop()


def test_an_http_429_from_any_network_is_a_rate_limit_not_a_failure(tmp_path: Path, sqlite_url: str) -> None:
    from tests.fakes.base import Fault

    networks = Networks(per_network=1)
    try:
        config = write_config(
            tmp_path / "config.toml", sqlite_url, networks.config_body(), outbox=False, extra_top=SETTINGS
        )
        networks.channels = [("vk0", "vk"), ("fb0", "facebook"), ("ok0", "ok")]
        queue_posts(config, networks, 0, per_channel=1)
        too_many = Fault.respond(429, b"<html>429 Too Many Requests</html>", headers={"Retry-After": "1"})
        networks.vk.inject("wall.post", too_many)
        networks.facebook.inject("feed", too_many)
        networks.ok.inject("mediatopic.post", too_many)
        result = smm("run", "--once", config=config, env=networks.env)
        assert result.returncode == 0, result.stderr
    finally:
        networks.stop()
    outcome = {channel: (status, error) for _, channel, status, error in deliveries(config)}
    assert {channel: status for channel, (status, _) in outcome.items()} == dict.fromkeys(
        ("vk0", "fb0", "ok0"), "queued"
    ), outcome


def test_a_token_revoked_while_a_post_is_in_doubt_flags_the_channel(tmp_path: Path, sqlite_url: str) -> None:
    from tests.fakes.base import Fault

    networks = Networks(per_network=1)
    fake = networks.facebook
    try:
        config = write_config(
            tmp_path / "config.toml",
            sqlite_url,
            networks.config_body(),
            outbox=False,
            extra_top=SETTINGS.replace('reconcile_delay = "2.5s"', 'reconcile_delay = "0.3s"'),
        )
        networks.channels = [("fb0", "facebook")]
        queue_posts(config, networks, 0, per_channel=1)
        handle = fake.handle

        def taken_then_revoked(request: FakeRequest) -> FakeResponse:
            response = handle(request)
            if request.method == "POST" and fake.fault_key(request) == "feed":
                fake.revoke_token(networks.env["FB_TOKEN_0"])
            return response

        setattr(fake, "handle", taken_then_revoked)  # noqa: B010 - an instance hook
        fake.inject("feed", Fault.drop_after())
        result = smm("run", "--once", config=config, env=networks.env)
        assert result.returncode == 0, result.stderr
        assert "could not read fb0 back: the Facebook Page token for page 5000000000 must be renewed" in result.stderr
        assert len(fake.published) == 1
    finally:
        networks.stop()
    ((_, channel, status, _),) = deliveries(config)
    assert (channel, status) == ("fb0", "publishing")  # still in doubt: right, the post may exist
    queue = run_cli("queue", config=config)
    assert "! channel 'fb0' needs attention: the Facebook Page token for page 5000000000 must be renewed" in queue.out
