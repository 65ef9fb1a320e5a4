"""End to end against the four network fakes: ``smm add``, ``smm show`` and ``smm queue`` from the CLI, ``smm run
--once`` in a subprocess, and assertions on exactly what each fake received.

The fakes run in the test process; the daemon reaches them through each channel's ``api_url`` and gets its secrets
through the environment of its subprocess only. The daemon's pacing is real (Telegram 20 posts a minute per chat,
Facebook one post per 2 s per Page, OK one post per 5 s per token), so the happy path runs once for all four
networks side by side: a text, a link, a photo and an album on each, then a fifth post that meets a token revoked
mid-queue. The other faults publish one post each.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, make_png, run_cli, write_config
from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.telegram import error_body as telegram_error
from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk
from tests.fakes.vk import error_body as vk_error
from tests.support import DaemonProcess, smm

pytestmark = pytest.mark.slow

NETWORKS = ("telegram", "vk", "facebook", "ok")
LINK = "https://example.com/articles/42"
#: (link, photo count) of the text, link, photo and album posts.
SHAPES = [(None, 0), (LINK, 0), (None, 1), (None, 2)]
#: A short reconcile delay so that ``run --once`` settles an accept-then-drop itself; a short in-call wait so that
#: a network's retry_after becomes a durable retry instead of a sleep.
FAST = '[daemon]\nreconcile_delay = "1s"\n\n[retry]\nin_call_max_wait = "0.25s"\n'


@dataclass
class Net:
    """One network's fake, its ``[[channels]]`` table, and the secrets the daemon gets through its environment."""

    kind: str
    fake: Any
    table: str
    env: dict[str, str]
    publish_key: str
    """The fault key of the call that creates the post."""
    rate_limit: Fault
    """The network's real "slow down" answer to that call, asking for a wait longer than in_call_max_wait."""
    min_wait: float
    """The least the daemon must then wait before the next attempt, in seconds."""
    limited_because: str
    revoked_because: str
    outputs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.kind

    def cli(self, config: Path, *args: str) -> CliResult:
        """Run an ``smm`` command in-process and keep what it printed, to look for leaked secrets."""
        result = run_cli(*args, config=config)
        self.outputs += [result.out, result.err]
        assert result.code == 0, result.err
        return result

    def assert_no_secret_printed(self) -> None:
        printed = "\n".join(self.outputs)
        assert [name for name, secret in self.env.items() if secret in printed] == []


def start(kind: str) -> Net:
    """Start ``kind``'s fake and describe its channel."""
    if kind == "telegram":
        tg = FakeTelegram().start()
        return Net(
            kind,
            tg,
            f'chat_id = "@testchannel"\ntoken_env = "SMM_TG_TOKEN"\napi_url = "{tg.url}"\n',
            {"SMM_TG_TOKEN": DEFAULT_TOKEN},
            "sendMessage",
            Fault.respond(429, telegram_error(429, "Too Many Requests: retry after 120", retry_after=120)),
            120,
            "Telegram flood control: retry in 120 s",
            "the bot token was rejected (revoked or mistyped): create a new one with @BotFather",
        )
    if kind == "vk":
        vk = FakeVk().start()
        return Net(
            kind,
            vk,
            f'group_id = {GROUP_ID}\ntoken_env = "SMM_VK_TOKEN"\napi_url = "{vk.url}"\n',
            {"SMM_VK_TOKEN": USER_TOKEN},
            "wall.post",
            Fault.respond(200, vk_error(6, "Too many requests per second")),
            20,  # error 6 names no wait: the adapter says 0.5 s, the daemon's backoff (30 s +- 20 %) wins
            "VK: too many requests per second on wall.post",
            "the VK token is invalid or expired (error 5",
        )
    if kind == "facebook":
        fb = FakeFacebook().start()
        usage = {fb.page_id: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 5}]}
        body = {"error": {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}}
        return Net(
            kind,
            fb,
            f'page_id = {fb.page_id}\ntoken_env = "SMM_FB_TOKEN"\napi_url = "{fb.url}"\n',
            {"SMM_FB_TOKEN": fb.token},
            "feed",
            Fault.respond(400, body, headers={"X-Business-Use-Case-Usage": json.dumps(usage)}),
            300,  # estimated_time_to_regain_access counts minutes
            f"Facebook throttled page {fb.page_id} (Graph error 32",
            f"the Facebook Page token for page {fb.page_id} must be renewed: the user changed their password",
        )
    ok = FakeOk().start()
    return Net(
        kind,
        ok,
        f'group_id = {ok.group_id}\napplication_key = "{ok.application_key}"\n'
        f'application_secret_env = "SMM_OK_SECRET"\ntoken_env = "SMM_OK_TOKEN"\napi_url = "{ok.url}"\n',
        {"SMM_OK_SECRET": ok.application_secret, "SMM_OK_TOKEN": ok.token},
        "mediatopic.post",
        Fault.respond(200, {"error_code": 8, "error_msg": "FLOOD_BLOCKED : Flood blocked", "error_data": None}),
        60,
        "OK flood control blocked the token (OK error 8",
        "the OK access token expired: get a new one",
    )


def remote_url(net: Net, remote_id: str) -> str:
    """The public URL of a post, in the form each network documents."""
    if net.kind == "telegram":
        return f"https://t.me/testchannel/{remote_id}"
    if net.kind == "vk":
        return f"https://vk.com/wall-{GROUP_ID}_{remote_id}"
    if net.kind == "facebook":
        page, number = remote_id.split("_")
        return f"https://www.facebook.com/{page}/posts/{number}"
    return f"https://ok.ru/group/{net.fake.group_id}/topic/{remote_id}"


def channel_table(net: Net) -> str:
    return f'[[channels]]\nname = "{net.name}"\nnetwork = "{net.kind}"\n{net.table}\n'


def add(net: Net, config: Path, *args: str) -> int:
    return int(json.loads(net.cli(config, "add", *args, "--json").out)["id"])


def show(net: Net, config: Path, post_id: int) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(net.cli(config, "show", str(post_id), "--json").out)
    return view


def delivery(net: Net, config: Path, post_id: int) -> dict[str, Any]:
    (only,) = show(net, config, post_id)["deliveries"]
    assert only["channel"] == net.name
    return only  # type: ignore[no-any-return]


def run_once(config: Path, env: dict[str, str], outputs: list[str]) -> str:
    """``smm run --once`` in a subprocess with ``env``; returns its log (also added to ``outputs``)."""
    result = smm("run", "--once", config=config, env=env)
    outputs += [result.stdout, result.stderr]
    assert result.returncode == 0, result.stderr
    return result.stderr


def on_each_request(fake: FakeServer, before: Callable[[FakeRequest], None]) -> None:
    """Call ``before(request)`` ahead of the fake's own handling of every request."""
    handle = fake.handle

    def hooked(request: FakeRequest) -> FakeResponse:
        before(request)
        return handle(request)

    fake.handle = hooked  # type: ignore[method-assign]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the happy path on four networks at once, then a token revoked mid-queue ---------------------------------------

TEXTS = {"text": "Plain text post", "link": "Read this", "photo": "One photo", "album": "Two photos"}
REVOKED = "Queued behind the others; the token is revoked just before it goes out"


@dataclass
class FourNetworks:
    nets: dict[str, Net]
    config: Path
    posts: dict[str, int]
    """Post ids by kind: text, link, photo, album, and "revoked"."""
    views: dict[str, dict[str, Any]]
    """``smm show --json`` of each post, by kind."""
    queue: str
    """What ``smm queue`` printed after the run."""
    outputs: list[str]

    def delivery(self, kind: str, network: str) -> dict[str, Any]:
        found = [d for d in self.views[kind]["deliveries"] if d["channel"] == network]
        assert len(found) == 1
        return found[0]  # type: ignore[no-any-return]


def revoke_before(net: Net, marker: str) -> None:
    """Revoke the fake's token just before the publishing call whose parameters contain ``marker`` arrives."""

    def check(request: FakeRequest) -> None:
        if net.fake.fault_key(request) == net.publish_key and any(marker in v for v in request.params.values()):
            net.fake.revoke_token()

    on_each_request(net.fake, check)


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FourNetworks]:
    """Text, link, one photo, an album, then one more post, each queued with ``smm add --now`` on all four channels
    (one post, four deliveries); the token of every network is revoked just before that last post; one run."""
    tmp = tmp_path_factory.mktemp("four")
    nets = {kind: start(kind) for kind in NETWORKS}
    try:
        db_url = f"sqlite:///{tmp / 'smm.db'}"
        body = "".join(channel_table(net) for net in nets.values())
        config = write_config(tmp / "config.toml", db_url, body, outbox=False, extra_top=FAST)
        first, second = make_png(tmp / "first.png", 3, 2), make_png(tmp / "second.png", 2, 3)
        cli = nets["telegram"]
        posts = {
            "text": add(cli, config, TEXTS["text"], "--now"),
            "link": add(cli, config, TEXTS["link"], "--link", LINK, "--now"),
            "photo": add(cli, config, TEXTS["photo"], "--media", str(first), "--now"),
            "album": add(cli, config, TEXTS["album"], "--media", str(first), "--media", str(second), "--now"),
            "revoked": add(cli, config, REVOKED, "--now"),
        }
        for net in nets.values():
            revoke_before(net, REVOKED)
        every_secret = {k: v for net in nets.values() for k, v in net.env.items()}
        run_once(config, every_secret, cli.outputs)
        views = {kind: show(cli, config, post_id) for kind, post_id in posts.items()}
        queue = cli.cli(config, "queue").out
        yield FourNetworks(nets, config, posts, views, queue, cli.outputs)
    finally:
        for net in nets.values():
            net.fake.stop()


def test_every_post_is_published_on_every_network_and_no_secret_is_printed(four: FourNetworks) -> None:
    for kind in TEXTS:
        deliveries = four.views[kind]["deliveries"]
        assert [d["channel"] for d in deliveries] == list(NETWORKS)
        assert [d["status"] for d in deliveries] == ["published"] * 4, deliveries
        assert all(d["last_error"] is None and d["attempts"] == 1 and d["published_at"] for d in deliveries)
    printed = "\n".join(four.outputs)
    assert [name for net in four.nets.values() for name, s in net.env.items() if s in printed] == []


def test_telegram_received_text_link_photo_and_album(four: FourNetworks) -> None:
    fake: FakeTelegram = four.nets["telegram"].fake
    sent = fake.published
    assert [(m["method"], m["chat_id"], m["chat_username"]) for m in sent] == [
        ("sendMessage", -1001234567890, "testchannel"),
        ("sendMessage", -1001234567890, "testchannel"),
        ("sendPhoto", -1001234567890, "testchannel"),
        ("sendMediaGroup", -1001234567890, "testchannel"),
        ("sendMediaGroup", -1001234567890, "testchannel"),
    ]
    text, link, photo, album_first, album_second = sent
    assert (text["text"], text["link_preview_options"]) == (TEXTS["text"], None)
    assert link["text"] == f"{TEXTS['link']}\n{LINK}"
    assert link["link_preview_options"]["url"] == LINK
    assert (photo["caption"], photo["photo_count"]) == (TEXTS["photo"], 1)
    assert album_first["media_group_id"] == album_second["media_group_id"] is not None
    assert [(m["caption"], m["photo_count"]) for m in (album_first, album_second)] == [(TEXTS["album"], 1), (None, 1)]
    assert all(m["parse_mode"] is None for m in sent)
    for kind, message in (("text", text), ("link", link), ("photo", photo), ("album", album_first)):
        got = four.delivery(kind, "telegram")
        assert got["remote_id"] == str(message["message_id"])
        assert got["remote_url"] == f"https://t.me/testchannel/{message['message_id']}"


def test_vk_received_text_link_photo_and_album(four: FourNetworks) -> None:
    fake: FakeVk = four.nets["vk"].fake
    posts = {p["message"]: p for p in fake.published}
    assert sorted(posts) == sorted(TEXTS.values())
    assert all(p["owner_id"] == -GROUP_ID and p["from_group"] for p in posts.values())
    assert posts[TEXTS["text"]]["attachments"] == []
    assert posts[TEXTS["link"]]["attachments"] == [LINK]
    photos = posts[TEXTS["photo"]]["attachments"] + posts[TEXTS["album"]]["attachments"]
    assert len(photos) == len(set(photos)) == 3
    assert all(re.fullmatch(rf"photo-{GROUP_ID}_\d+", a) for a in photos)
    assert len(posts[TEXTS["album"]]["attachments"]) == 2
    assert len(fake.uploads) == 3
    guids = [p["guid"] for p in posts.values()]
    assert all(guids) and len(set(guids)) == 4
    for kind, message in TEXTS.items():
        got = four.delivery(kind, "vk")
        post_id = posts[message]["post_id"]
        assert (got["remote_id"], got["remote_url"]) == (str(post_id), f"https://vk.com/wall-{GROUP_ID}_{post_id}")


def test_facebook_received_text_link_photo_and_album(four: FourNetworks) -> None:
    fake: FakeFacebook = four.nets["facebook"].fake
    posts = {p["message"]: p for p in fake.published}
    assert sorted(posts) == sorted(TEXTS.values())
    assert {p["page"] for p in posts.values()} == {fake.page_id}
    assert [(posts[m]["link"], posts[m]["photos"]) for m in TEXTS.values()] == SHAPES
    album = posts[TEXTS["album"]]["attached_media"]
    assert len(album) == 2 and all(fake.photos[i]["published"] is False for i in album)
    assert {r.headers.get("authorization") for r in fake.requests} == {f"Bearer {fake.token}"}
    assert not [r for r in fake.requests if "access_token" in r.params]
    for kind, message in TEXTS.items():
        got = four.delivery(kind, "facebook")
        page, number = posts[message]["id"].split("_")
        assert got["remote_id"] == posts[message]["id"]
        assert got["remote_url"] == f"https://www.facebook.com/{page}/posts/{number}"


def test_ok_received_text_link_photo_and_album_with_accepted_signatures(four: FourNetworks) -> None:
    fake: FakeOk = four.nets["ok"].fake
    topics = {t["text"]: t for t in fake.published}
    assert sorted(topics) == sorted(TEXTS.values())
    assert {(t["gid"], t["uid"]) for t in topics.values()} == {(fake.group_id, "500000000001")}
    assert [(topics[m]["link"], topics[m]["photos"]) for m in TEXTS.values()] == SHAPES
    calls = [r for r in fake.requests if r.path == "/fb.do"]
    methods = Counter(r.params["method"] for r in calls)
    assert methods == {"photosV2.getUploadUrl": 2, "mediatopic.post": 5}  # the fifth is refused: the token is revoked
    for call in calls:
        assert call.params["sig"] == fake.expected_sig(call.params, fake.token, fake.application_secret)
        assert call.method == "POST" and "access_token" not in call.query
    for kind, message in TEXTS.items():
        got = four.delivery(kind, "ok")
        topic = topics[message]["id"]
        assert (got["remote_id"], got["remote_url"]) == (topic, f"https://ok.ru/group/{fake.group_id}/topic/{topic}")


@pytest.mark.parametrize("kind", NETWORKS)
def test_a_token_revoked_mid_queue_fails_that_delivery_and_flags_the_channel(four: FourNetworks, kind: str) -> None:
    net = four.nets[kind]
    failed = four.delivery("revoked", kind)
    assert failed["status"] == "failed"
    assert net.revoked_because in failed["last_error"]
    assert (failed["remote_id"], failed["remote_url"], failed["published_at"]) == (None, None, None)
    assert REVOKED not in json.dumps(net.fake.published)
    assert f"! channel '{kind}' needs attention: " in four.queue
    flagged = next(line for line in four.queue.splitlines() if f"channel '{kind}' needs attention" in line)
    assert net.revoked_because in flagged


# -- the other faults, one network at a time -------------------------------------------------------------------------


@pytest.fixture(params=NETWORKS)
def net(request: pytest.FixtureRequest) -> Iterator[Net]:
    started = start(request.param)
    try:
        yield started
    finally:
        started.fake.stop()


def one_network_config(net: Net, tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "config.toml", db_url, channel_table(net), outbox=False, extra_top=FAST)


def test_a_rate_limit_longer_than_the_in_call_wait_queues_the_delivery_again(
    net: Net, tmp_path: Path, sqlite_url: str
) -> None:
    config = one_network_config(net, tmp_path, sqlite_url)
    post = add(net, config, "Slow down", "--now")
    net.fake.inject(net.publish_key, net.rate_limit)
    before = datetime.now(UTC)
    run_once(config, net.env, net.outputs)

    queued = delivery(net, config, post)
    assert queued["status"] == "queued"
    assert queued["attempts"] == 1
    assert net.limited_because in queued["last_error"]
    assert parse_time(queued["next_attempt_at"]) >= before + timedelta(seconds=net.min_wait)
    assert len(net.fake.calls(net.publish_key)) == 1
    assert net.fake.published == []
    net.assert_no_secret_printed()


def test_vk_resends_a_rate_limited_post_with_the_same_guid(tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: queued, rate limited, queued again, moved to now, published once."""
    vk = start("vk")
    try:
        config = one_network_config(vk, tmp_path, db_url)
        post = add(vk, config, "Same guid every time", "--now")
        vk.fake.inject("wall.post", vk.rate_limit)
        run_once(config, vk.env, vk.outputs)
        assert delivery(vk, config, post)["status"] == "queued"
        vk.cli(config, "reschedule", str(post), "--now")
        run_once(config, vk.env, vk.outputs)

        published = delivery(vk, config, post)
        assert (published["status"], published["attempts"], published["last_error"]) == ("published", 2, None)
        first, second = vk.fake.calls("wall.post")
        assert first.params["guid"] == second.params["guid"] == vk.fake.published[0]["guid"]
        assert len(vk.fake.published) == 1
        assert published["remote_url"] == f"https://vk.com/wall-{GROUP_ID}_{vk.fake.published[0]['post_id']}"
        vk.assert_no_secret_printed()
    finally:
        vk.fake.stop()


@pytest.mark.parametrize("net", ["vk", "facebook", "ok"], indirect=True)
def test_accepted_then_dropped_is_found_on_the_network_and_published_once(
    net: Net, tmp_path: Path, sqlite_url: str
) -> None:
    config = one_network_config(net, tmp_path, sqlite_url)
    post = add(net, config, "Accepted, then the connection dropped", "--now")
    net.fake.inject(net.publish_key, Fault.drop_after())
    log = run_once(config, net.env, net.outputs)

    settled = delivery(net, config, post)
    assert settled["status"] == "published", log
    assert len(net.fake.published) == 1
    assert len(net.fake.calls(net.publish_key)) == 1
    assert settled["remote_url"] == remote_url(net, settled["remote_id"])
    (attempt,) = show(net, config, post)["deliveries"][0]["history"]
    assert attempt["outcome"] == "published"
    assert attempt["error"] == "found on the network after an unclear outcome"
    net.assert_no_secret_printed()


@pytest.mark.parametrize("net", ["telegram"], indirect=True)
def test_telegram_accepted_then_dropped_is_unknown_until_resolved(net: Net, tmp_path: Path, sqlite_url: str) -> None:
    config = one_network_config(net, tmp_path, sqlite_url)
    post = add(net, config, "Did it go out?", "--now")
    net.fake.inject("sendMessage", Fault.drop_after())
    run_once(config, net.env, net.outputs)

    unknown = delivery(net, config, post)
    assert unknown["status"] == "unknown"
    assert "telegram cannot be read back: check telegram for this post around " in unknown["last_error"]
    assert f"smm resolve {post} --published" in unknown["last_error"]
    assert len(net.fake.published) == len(net.fake.calls("sendMessage")) == 1
    assert "channel 'telegram': 1 delivery in doubt" in net.cli(config, "queue").out

    net.cli(config, "resolve", str(post), "--published")
    settled = delivery(net, config, post)
    assert settled["status"] == "published" and settled["published_at"] is not None
    net.assert_no_secret_printed()


# -- run --once stops when its work is done ------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["facebook"], indirect=True)
def test_run_once_exits_right_after_its_last_post(net: Net, tmp_path: Path, sqlite_url: str) -> None:
    """No pacing wait (Facebook: 2 s per Page) after the last post: the worker sees nothing due and stops."""
    config = one_network_config(net, tmp_path, sqlite_url)
    add(net, config, "The only post", "--now")
    result = smm("run", "--once", "--log-format", "json", config=config, env=net.env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    at = {e["msg"].split(" ")[0]: parse_time(e["ts"]) for e in events if e["msg"].startswith(("published", "stopped"))}
    assert (at["stopped"] - at["published"]).total_seconds() < 1.0


@pytest.mark.parametrize("net", ["telegram"], indirect=True)
def test_run_once_does_not_sleep_through_a_rate_limit(net: Net, tmp_path: Path, sqlite_url: str) -> None:
    config = one_network_config(net, tmp_path, sqlite_url)
    first = add(net, config, "Rate limited", "--now")
    second = add(net, config, "Due right behind it", "--now")
    net.fake.inject(net.publish_key, net.rate_limit)
    with DaemonProcess(config, "--once", env=net.env) as daemon:
        daemon.wait_log("retry scheduled")
        try:
            code = daemon.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pytest.fail("smm run --once is still running 3 s after Telegram asked it to wait 120 s")
        assert code == 0
    assert [delivery(net, config, p)["status"] for p in (first, second)] == ["queued", "queued"]
    assert net.fake.published == []


@pytest.mark.parametrize("net", ["telegram"], indirect=True)
def test_sigterm_stops_the_daemon_at_once_while_a_channel_is_paused(net: Net, tmp_path: Path, sqlite_url: str) -> None:
    daemon_table = FAST.replace("[daemon]\n", '[daemon]\nshutdown_grace = "3s"\n')
    config = write_config(
        tmp_path / "config.toml", sqlite_url, channel_table(net), outbox=False, extra_top=daemon_table
    )
    add(net, config, "Rate limited", "--now")
    add(net, config, "Due right behind it", "--now")
    net.fake.inject(net.publish_key, net.rate_limit)
    with DaemonProcess(config, env=net.env) as daemon:
        daemon.wait_log("retry scheduled")
        daemon.signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert daemon.stop() == 0
        took = time.monotonic() - stopping
    assert "did not finish within shutdown_grace" not in daemon.log
    assert took < 2.0


@pytest.mark.parametrize("net", ["vk"], indirect=True)
def test_the_run_summary_counts_only_published_posts(net: Net, tmp_path: Path, sqlite_url: str) -> None:
    config = one_network_config(net, tmp_path, sqlite_url)
    add(net, config, "Rate limited", "--now")
    net.fake.inject(net.publish_key, net.rate_limit)
    result = smm("run", "--once", config=config, env=net.env)
    assert result.returncode == 0, result.stderr
    assert "retry scheduled" in result.stderr
    assert "stopped (0 posts published this run)" in result.stderr
