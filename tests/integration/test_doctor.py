"""``smm doctor`` against the four network fakes: one line per channel, what was verified or what to fix.

Each case runs the real ``smm doctor`` in a subprocess, the secrets in its environment only, against a config with
the outbox channel and one or all of the networks (their fakes and ``[[channels]]`` tables come from
:mod:`tests.integration.test_networks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.telegram import TelegramAdapter
from tests.conftest import run_cli, write_config
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import COMMUNITY_TOKEN, GROUP_ID, USER_ID, USER_TOKEN, FakeGroup, FakeVk
from tests.integration.test_networks import NETWORKS, Net, add, channel_table, run_once, start
from tests.support import smm

pytestmark = pytest.mark.slow


@dataclass
class Doctor:
    code: int
    lines: list[str]
    printed: str

    def line(self, channel: str) -> str:
        """The line about ``channel``: ``ok    <name>  <network>: ...`` or ``FAIL  <name>  <network>: ...``."""
        found = [line for line in self.lines if re.match(rf"(ok  |FAIL)  {re.escape(channel)} +\S+: ", line)]
        assert len(found) == 1, self.printed
        return found[0]


def doctor(config: Path, env: dict[str, str], secrets: list[str]) -> Doctor:
    result = smm("doctor", config=config, env=env)
    printed = result.stdout + result.stderr
    assert [s for s in secrets if s in printed] == []
    return Doctor(result.returncode, result.stdout.splitlines(), printed)


@pytest.fixture
def nets() -> Iterator[dict[str, Net]]:
    started = {kind: start(kind) for kind in NETWORKS}
    try:
        yield started
    finally:
        for net in started.values():
            net.fake.stop()


def config_with(tmp_path: Path, sqlite_url: str, *nets: Net) -> Path:
    """The outbox channel, then ``nets``' channels, on a database with the current schema."""
    config = write_config(tmp_path / "config.toml", sqlite_url, "".join(channel_table(net) for net in nets))
    upgraded = run_cli("db", "upgrade", config=config)
    assert upgraded.code == 0, upgraded.err
    (tmp_path / "outbox").mkdir()
    return config


def test_all_channels_healthy(nets: dict[str, Net], tmp_path: Path, sqlite_url: str) -> None:
    config = config_with(tmp_path, sqlite_url, *nets.values())
    env = {name: value for net in nets.values() for name, value in net.env.items()}
    result = doctor(config, env, list(env.values()))

    assert result.code == 0, result.printed
    assert [line for line in result.lines if not line.startswith(("ok  ", " "))] == [], result.printed
    assert result.line("outbox") == f"ok    outbox    outbox: folder {tmp_path / 'outbox'} is writable"
    assert result.line("telegram") == "ok    telegram  telegram: bot @smm_test_bot can post in @testchannel"
    assert result.line("vk") == "ok    vk        vk: user 1001 is an editor of club45 and can post"
    assert result.line("facebook").startswith(
        "ok    facebook  facebook: facebook page 1000000001 (Test Page): the token is a valid Page token for it "
        "(GET /me); pages_manage_posts and pages_read_engagement are granted (GET /me/permissions)"
    )
    assert result.line("ok").startswith(
        "ok    ok        ok: ok group 70000000000001 (Test Group): token and signature valid for Test Admin "
        "(500000000001) (users.getCurrentUser); GROUP_CONTENT granted, PHOTO_CONTENT granted"
    )
    assert "the user is ADMIN of it (group.getUserGroupsByIds)" in result.line("ok")

    tg: FakeTelegram = nets["telegram"].fake
    assert [tg.fault_key(r) for r in tg.requests] == [
        "getMe",
        "getChat",
        "getChatMember",
        "getChatMemberCount",
        "getChat",
    ]
    notes = [" ".join(line.split()) for line in result.lines if line.startswith(" ")]
    telegram = TelegramAdapter.unsupported["results"]
    assert notes == [
        f"results: not available: {telegram}",
        "audience: readable (850 now)",
        "comments: no discussion group is linked to the channel, so its posts take no comments",
        "results: no published post to read back yet",
        "audience: readable (1,200 now)",
        "results: no published post to read back yet",
        "audience: readable (2,400 now)",
        "results: no published post to read back yet",
        "audience: readable (3,100 now)",
    ]
    vk: FakeVk = nets["vk"].fake
    checked = ["users.get", "photos.getWallUploadServer", "account.getAppPermissions", "groups.getById"]
    assert [vk.fault_key(r) for r in vk.requests] == [*checked, "groups.getById"]
    facebook = nets["facebook"].fake
    assert [facebook.fault_key(r) for r in facebook.requests] == ["me", "permissions", "page"]
    ok: FakeOk = nets["ok"].fake
    checks = ["users.getCurrentUser", "users.hasAppPermission", "users.hasAppPermission", "group.getInfo"]
    assert sorted(ok.fault_key(r) for r in ok.requests) == sorted(
        [*checks, "group.getUserGroupsByIds", "group.getInfo"]
    )
    assert all(r.params["sig"] == ok.expected_sig(r.params, ok.token, ok.application_secret) for r in ok.requests)
    assert not any(net.fake.published for net in nets.values()), "doctor must never post"


# -- one broken channel at a time: (network, break it, what its FAIL line must say) ------------------------------


def not_an_admin(net: Net, env: dict[str, str]) -> None:
    net.fake.chats[0].bot_status = "member"


def revoked(net: Net, env: dict[str, str]) -> None:
    net.fake.revoke_token()


def community_token(net: Net, env: dict[str, str]) -> None:
    env["SMM_VK_TOKEN"] = COMMUNITY_TOKEN


def a_moderator(net: Net, env: dict[str, str]) -> None:
    net.fake.groups[GROUP_ID].managers[USER_ID] = 1


def user_token(net: Net, env: dict[str, str]) -> None:
    net.fake.add_user_token("EAAB-user-token-not-real")
    env["SMM_FB_TOKEN"] = "EAAB-user-token-not-real"


def plain_member(net: Net, env: dict[str, str]) -> None:
    net.fake.add_user("ok-member-token-not-real", "500000000002", "Plain Member", status="ACTIVE")
    env["SMM_OK_TOKEN"] = "ok-member-token-not-real"


def wrong_secret(net: Net, env: dict[str, str]) -> None:
    env["SMM_OK_SECRET"] = "WRONG-APP-SECRET-not-real"


def unset(variable: str) -> Callable[[Net, dict[str, str]], None]:
    def remove(net: Net, env: dict[str, str]) -> None:
        del env[variable]

    return remove


def unreachable(net: Net, env: dict[str, str]) -> None:
    net.fake.stop()


BROKEN = {
    "telegram bot not an admin": (
        "telegram",
        not_an_admin,
        "telegram: bot @smm_test_bot cannot post in @testchannel (it is member): add @smm_test_bot to @testchannel "
        "as an admin with the right to post messages",
    ),
    "telegram token revoked": (
        "telegram",
        revoked,
        "telegram: the bot token was rejected (revoked or mistyped): create a new one with @BotFather",
    ),
    "vk community token": (
        "vk",
        community_token,
        "vk: a community token was given; wall.post needs a community admin's user token (scopes wall,photos,offline) "
        "(error 27",
    ),
    "vk user not an editor": (
        "vk",
        a_moderator,
        "vk: user 1001 is a moderator of club45, who cannot post as the community: make them an editor or an "
        "administrator of club45",
    ),
    "facebook user token": (
        "facebook",
        user_token,
        "facebook: this is not a Page token for page 1000000001: it belongs to 'Test User' (id 2000000001); use the "
        "Page access token from GET /{user-id}/accounts",
    ),
    "ok user not an admin": (
        "ok",
        plain_member,
        "ok: the OK user Plain Member (500000000002) cannot post in group 70000000000001: status ACTIVE; make them "
        "an administrator, moderator or editor of the group",
    ),
    "ok application secret wrong": (
        "ok",
        wrong_secret,
        "ok: the request signature was rejected: a bug in smm-scheduler or a wrong application_secret (OK error 104",
    ),
    "facebook token variable unset": (
        "facebook",
        unset("SMM_FB_TOKEN"),
        "facebook: channel 'facebook': channels[1].token_env: environment variable SMM_FB_TOKEN is not set",
    ),
    "ok secret variable unset": (
        "ok",
        unset("SMM_OK_SECRET"),
        "ok: channel 'ok': channels[1].application_secret_env: environment variable SMM_OK_SECRET is not set",
    ),
    "vk api unreachable": ("vk", unreachable, "vk: could not connect to VK for users.get; nothing was sent"),
    "telegram api unreachable": ("telegram", unreachable, "telegram: could not connect to Telegram ("),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_channel_fails_with_what_to_fix(case: str, tmp_path: Path, sqlite_url: str) -> None:
    kind, breaks, expected = BROKEN[case]
    net = start(kind)
    try:
        config = config_with(tmp_path, sqlite_url, net)
        env = dict(net.env)
        breaks(net, env)
        result = doctor(config, env, [*net.env.values(), *env.values()])
    finally:
        net.fake.stop()

    assert result.code == 1, result.printed
    assert re.fullmatch(r"ok    outbox +outbox: folder \S+ is writable", result.line("outbox"))
    assert re.match(rf"FAIL  {kind} +{re.escape(expected)}", result.line(kind)), result.printed
    assert [line for line in result.lines if line.startswith("FAIL")] == [result.line(kind)], result.printed


def test_a_channel_flagged_by_a_failed_publish_shows_its_last_error(tmp_path: Path, sqlite_url: str) -> None:
    tg = start("telegram")
    try:
        config = config_with(tmp_path, sqlite_url, tg)
        add(tg, config, "Sent with a revoked token", "--channel", "telegram", "--now")
        tg.fake.revoke_token()
        run_once(config, tg.env, tg.outputs)
        rejected = "the bot token was rejected (revoked or mistyped): create a new one with @BotFather"

        broken = doctor(config, tg.env, list(tg.env.values()))
        assert broken.code == 1
        at = broken.lines.index(broken.line("telegram"))
        assert broken.lines[at].startswith("FAIL  telegram  telegram: ")
        assert broken.lines[at + 1].strip().startswith(f"last publish error: {rejected}")

        tg.fake.tokens.add(tg.env["SMM_TG_TOKEN"])  # a new token, as far as the fake can tell
        fixed = doctor(config, tg.env, list(tg.env.values()))
        assert fixed.code == 0, fixed.printed
        at = fixed.lines.index(fixed.line("telegram"))
        assert fixed.lines[at] == "ok    telegram  telegram: bot @smm_test_bot can post in @testchannel"
        assert fixed.lines[at + 1].strip().startswith(f"last publish error: {rejected}")
        assert fixed.lines[fixed.lines.index(fixed.line("outbox")) + 1] == fixed.lines[at], "outbox is not flagged"
    finally:
        tg.fake.stop()
    tg.assert_no_secret_printed()


def test_communities_sharing_one_vk_token_stay_under_its_rate_limit(tmp_path: Path, sqlite_url: str) -> None:
    """One admin's user token for three communities: VK allows 3 requests/s per token, the fake enforces it."""
    vk = FakeVk(groups=[FakeGroup(45), FakeGroup(46), FakeGroup(47)], limits=True).start()
    try:
        body = "".join(
            f'[[channels]]\nname = "vk{g}"\nnetwork = "vk"\ngroup_id = {g}\ntoken_env = "SMM_VK_TOKEN"\n'
            f'api_url = "{vk.url}"\n\n'
            for g in (45, 46, 47)
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, body)
        assert run_cli("db", "upgrade", config=config).code == 0
        result = doctor(config, {"SMM_VK_TOKEN": USER_TOKEN}, [USER_TOKEN])
    finally:
        vk.stop()
    assert result.code == 0, result.printed
    for group in (45, 46, 47):
        assert result.line(f"vk{group}").endswith(f"vk: user {USER_ID} is an editor of club{group} and can post")


def test_doctor_checks_the_channels_even_with_the_database_down(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", "postgresql+psycopg://smm@127.0.0.1:1/smm")
    result = doctor(config, {}, [])
    assert result.code == 1
    assert result.line("outbox") == (
        f"ok    outbox  outbox: folder {tmp_path / 'outbox'} does not exist yet; the first post creates it in "
        f"{tmp_path}"
    )
    assert any(line.startswith("FAIL  database") and "unavailable" in line for line in result.lines), result.printed


def test_doctor_changes_nothing_and_fails_on_any_line_that_is_not_ok(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    outbox = tmp_path / "outbox"
    before = sorted(tmp_path.iterdir())

    result = run_cli("doctor", config=config)
    assert result.code == 1, result
    assert result.out.splitlines() == [
        f"warn  database: no database at {tmp_path / 'smm.db'} yet: nothing was queued with this config "
        f"({config}); `smm add` creates it",
        f"ok    outbox  outbox: folder {outbox} does not exist yet; the first post creates it in {tmp_path}",
    ]
    assert sorted(tmp_path.iterdir()) == before  # neither the database nor the outbox folder

    assert run_cli("add", "hello", config=config).code == 0
    ready = run_cli("doctor", config=config)
    assert (ready.code, ready.err) == (0, ""), ready
    assert not outbox.exists()
    outbox.mkdir()
    ready = run_cli("doctor", config=config)
    assert ready.code == 0 and f"ok    outbox  outbox: folder {outbox} is writable\n" in ready.out, ready
    assert list(outbox.iterdir()) == []

    outbox.rmdir()
    outbox.write_text("a file where the folder should be")
    broken = run_cli("doctor", config=config)
    assert broken.code == 1, broken
    assert f"FAIL  outbox  outbox: cannot write to the outbox {outbox}: Not a directory; " in broken.out


def test_a_config_warning_is_a_line_that_is_not_ok(tmp_path: Path, sqlite_url: str) -> None:
    tg = start("telegram")
    try:
        config = config_with(tmp_path, sqlite_url, tg)
        config.chmod(0o664)
        result = doctor(config, tg.env, list(tg.env.values()))
    finally:
        tg.fake.stop()
    assert result.code == 1, result.printed
    assert [line for line in result.lines if not line.startswith(("ok  ", " "))] == [
        f"warn  config: {config} is writable by other users (mode 664), who could send the channels' secrets to "
        "another api_url: chmod go-w it"
    ], result.printed


@pytest.mark.parametrize(
    "bot_status, username, reading, webhook, says",
    [
        (
            "administrator",
            "testchat",
            False,
            False,
            "discussion group @testchat: bot @smm_test_bot is an admin; comments "
            "are not read (read_comments = true on the channel reads them)",
        ),
        (
            "left",
            None,
            False,
            False,
            "discussion group -1009876543210: bot @smm_test_bot is not a member; comments are not read",
        ),
        (
            "administrator",
            None,
            True,
            False,
            "discussion group Test chat (-1009876543210): comments are read from bot @smm_test_bot's updates",
        ),
        (
            "member",
            "testchat",
            True,
            False,
            "discussion group @testchat: bot @smm_test_bot is a member, but privacy "
            "mode hides the comments from it: make it an admin (or turn privacy mode off with @BotFather)",
        ),
        (
            "left",
            "testchat",
            True,
            False,
            "discussion group @testchat: bot @smm_test_bot is not a member: add it as an admin to read the comments",
        ),
        (
            "administrator",
            "testchat",
            True,
            True,
            "discussion group @testchat: a webhook set on bot @smm_test_bot takes its updates: comments are not read",
        ),
    ],
)
def test_doctor_says_whether_a_telegram_channels_comments_can_be_read(
    tmp_path: Path, sqlite_url: str, bot_status: str, username: str | None, reading: bool, webhook: bool, says: str
) -> None:
    net = start("telegram")
    try:
        tg: FakeTelegram = net.fake
        group = tg.add_chat(-1009876543210, username, title="Test chat", type="supergroup", bot_status=bot_status)
        group.linked_chat_id = tg.chats[0].id
        tg.chats[0].linked_chat_id = group.id
        tg.webhook = "https://example.com/hook" if webhook else None
        if reading:
            net.table += "read_comments = true\n"
        result = doctor(config_with(tmp_path, sqlite_url, net), net.env, list(net.env.values()))
    finally:
        tg.stop()
    assert result.code == 0, result.printed  # a note: the channel itself is fine
    (note,) = [line.strip() for line in result.lines if line.strip().startswith("comments: ")]
    assert note.startswith(f"comments: {says}")


def test_doctor_says_whether_each_channels_results_and_audience_can_be_read(
    nets: dict[str, Net], tmp_path: Path, sqlite_url: str
) -> None:
    # Published first; then Facebook's token loses read_insights: publishing still works (doctor's own line is ok),
    # the views cannot be read back, which a person must fix (warn, exit 1).
    vk, facebook, telegram = nets["vk"], nets["facebook"], nets["telegram"]
    config = config_with(tmp_path, sqlite_url, vk, facebook, telegram)
    env = {name: value for net in (vk, facebook, telegram) for name, value in net.env.items()}
    add(vk, config, "Read me back", "--now")
    run_once(config, env, [])
    facebook.fake.permissions = tuple(p for p in facebook.fake.permissions if p != "read_insights")
    result = doctor(config, env, list(env.values()))
    assert result.code == 1, result.printed
    lines = [" ".join(line.split()) for line in result.lines]
    assert not [line for line in lines if line.startswith("FAIL")], result.printed
    post = vk.fake.published[0]["post_id"]
    assert [line for line in lines if line.startswith(f"results: readable (post {post}: views ")], result.printed
    warned = [line for line in lines if line.startswith("warn")]
    assert len(warned) == 1 and "read_insights" in warned[0], result.printed
    page_post = facebook.fake.published[0]["id"]
    assert warned[0].startswith(f"warn results: readable (post {page_post}: views -, likes ")
    assert f"results: not available: {TelegramAdapter.unsupported['results']}" in lines
    for members in ("850", "1,200", "2,400"):
        assert f"audience: readable ({members} now)" in lines, result.printed
