"""Loading the TOML config: defaults, the example shapes, secrets, discovery, and one exact line per error.

Every error is asserted whole: ``<file>: <key>: <what is allowed>``, on one line.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import (
    Config,
    DaemonConfig,
    RetryConfig,
    find_config,
    load_config,
)
from scheduler.errors import ConfigError
from scheduler.slots import DEFAULT_SLOTS, parse_slots
from scheduler.toml_table import SecretRef

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, body: str, name: str = "config.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def load(path: Path, env: dict[str, str] | None = None) -> Config:
    return load_config(path, env=env or {})


def error_of(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert info.value.exit_code == 2
    return message


VK = '[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 123\ntoken_env = "SMM_VK_TOKEN"\n'


# -- defaults and paths -------------------------------------------------------------------------------------------


def test_an_empty_file_is_a_working_config(tmp_path: Path) -> None:
    config = load(write(tmp_path / "etc", ""))
    folder = (tmp_path / "etc").resolve()
    assert config.path == folder / "config.toml"
    assert config.database_url == f"sqlite:///{folder / 'smm.db'}"
    assert config.media_dir == folder / "media"
    assert config.timezone == ZoneInfo("UTC")
    assert config.slots == DEFAULT_SLOTS == parse_slots(["tue 10:00", "fri 10:00"])
    assert config.channels == ()
    assert config.daemon == DaemonConfig()
    assert config.retry == RetryConfig()
    assert config.warnings == ()


def test_schedule_absent_means_tuesday_and_friday_at_ten_in_every_channel(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[[channels]]\nname = "out"\nnetwork = "outbox"\n'))
    channel = config.channel("out")
    assert [str(s) for s in channel.slots] == ["tue 10:00", "fri 10:00"]
    assert channel.timezone == ZoneInfo("UTC")


def test_relative_sqlite_path_resolves_against_the_config_folder_not_the_cwd(tmp_path: Path) -> None:
    config = load(write(tmp_path / "etc", '[database]\nurl = "sqlite:///data/queue.db"\n'))
    data = (tmp_path / "etc" / "data").resolve()
    assert Path.cwd() != tmp_path / "etc"
    assert config.database_url == f"sqlite:///{data / 'queue.db'}"
    assert config.media_dir == data / "media"


def test_absolute_sqlite_path_is_kept_and_media_sits_beside_it(tmp_path: Path) -> None:
    config = load(write(tmp_path / "etc", f'[database]\nurl = "sqlite:///{tmp_path}/var/smm.db"\n'))
    assert config.database_url == f"sqlite:///{tmp_path}/var/smm.db"
    assert config.media_dir == tmp_path / "var" / "media"


def test_sqlite_url_with_a_driver_and_a_query_keeps_media_beside_the_file(tmp_path: Path) -> None:
    config = load(write(tmp_path / "etc", '[database]\nurl = "sqlite+pysqlite:///db/smm.db?timeout=5"\n'))
    folder = (tmp_path / "etc" / "db").resolve()
    assert config.database_url == f"sqlite+pysqlite:///{folder}/smm.db?timeout=5"
    assert config.media_dir == folder / "media"


def test_state_directory_overrides_the_base_folder(tmp_path: Path) -> None:
    body = '[[channels]]\nname = "out"\nnetwork = "outbox"\n'
    config = load(write(tmp_path / "etc", body), {"STATE_DIRECTORY": f"{tmp_path}/state:{tmp_path}/other"})
    assert config.database_url == f"sqlite:///{tmp_path}/state/smm.db"
    assert config.media_dir == tmp_path / "state" / "media"
    assert config.channel("out").options["path"] == f"{tmp_path}/state/outbox"


def test_media_path_and_outbox_path(tmp_path: Path) -> None:
    body = '[media]\npath = "files"\n[[channels]]\nname = "out"\nnetwork = "outbox"\npath = "/srv/outbox"\n'
    config = load(write(tmp_path / "etc", body))
    assert config.media_dir == (tmp_path / "etc" / "files").resolve()
    assert config.channel("out").options["path"] == "/srv/outbox"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://smm:pw@db:5432/smm", "postgresql+psycopg://smm:pw@db:5432/smm"),
        ("postgresql://smm@db/smm", "postgresql+psycopg://smm@db/smm"),
        ("postgres://smm@db/smm", "postgresql+psycopg://smm@db/smm"),
    ],
)
def test_postgresql_urls(tmp_path: Path, url: str, expected: str) -> None:
    config = load(write(tmp_path, f'[database]\nurl = "{url}"\n'))
    assert config.database_url == expected
    assert config.media_dir == tmp_path.resolve() / "media"


# -- schedule and channels ----------------------------------------------------------------------------------------


def test_channels_inherit_the_schedule_or_override_it(tmp_path: Path) -> None:
    body = """
[schedule]
timezone = "Europe/Berlin"
slots = ["mon 09:00", "thu 18:30"]

[[channels]]
name = "a"
network = "outbox"

[[channels]]
name = "b"
network = "outbox"
timezone = "America/New_York"
slots = ["daily 07:15"]
timeout = "2m"
on_uncertain = "retry"
late_policy = "skip"
"""
    config = load(write(tmp_path, body))
    assert config.timezone == ZoneInfo("Europe/Berlin")
    assert list(config.channel_names) == ["a", "b"]
    a, b = config.channel("a"), config.channel("b")
    assert (a.timezone, a.slots) == (ZoneInfo("Europe/Berlin"), parse_slots(["mon 09:00", "thu 18:30"]))
    assert (a.timeout, a.on_uncertain, a.late_policy) == (30.0, "hold", None)
    assert (b.timezone, b.slots) == (ZoneInfo("America/New_York"), parse_slots(["daily 07:15"]))
    assert (b.timeout, b.on_uncertain, b.late_policy) == (120.0, "retry", "skip")
    with pytest.raises(KeyError):
        config.channel("c")


def test_every_network_with_its_required_keys(tmp_path: Path) -> None:
    body = """
[[channels]]
name = "vk-news"
network = "vk"
group_id = 123456
token_env = "SMM_VK_TOKEN"

[[channels]]
name = "vk-str"
network = "vk"
group_id = " 654321 "
token_env = "SMM_VK_TOKEN"

[[channels]]
name = "tg-news"
network = "telegram"
chat_id = "@my_channel"
token_env = "SMM_TELEGRAM_TOKEN"

[[channels]]
name = "tg-private"
network = "telegram"
chat_id = "-1001234567890"
parse_mode = "HTML"
token_file = "/run/secrets/tg"
api_url = "http://127.0.0.1:8081/"

[[channels]]
name = "tg-int"
network = "telegram"
chat_id = -1009876543210
token_credential = "tg-token"

[[channels]]
name = "fb-page"
network = "facebook"
page_id = 1234567890
token_credential = "fb-page-token"

[[channels]]
name = "ok-group"
network = "ok"
group_id = 70000000000000
application_key = "CBAXXXXXXXXXXXXXX"
application_secret_env = "SMM_OK_APP_SECRET"
token_env = "SMM_OK_TOKEN"

[[channels]]
name = "out"
network = "outbox"
"""
    config = load(write(tmp_path, body))
    c = {ch.name: ch for ch in config.channels}
    assert c["vk-news"].options == {"group_id": 123456}
    assert c["vk-str"].options == {"group_id": 654321}
    assert c["vk-news"].secrets == {
        "token": SecretRef("env", "SMM_VK_TOKEN", "channels[0].token_env", "channel 'vk-news'")
    }
    assert c["vk-news"].api_root == "https://api.vk.ru"
    assert c["tg-news"].options == {"chat_id": "@my_channel", "parse_mode": None, "read_comments": False}
    assert c["tg-private"].options == {"chat_id": -1001234567890, "parse_mode": "HTML", "read_comments": False}
    assert c["tg-private"].api_root == "http://127.0.0.1:8081"
    assert c["tg-private"].secrets["token"].source == "file"
    assert c["tg-int"].options["chat_id"] == -1009876543210
    assert c["tg-int"].api_root == "https://api.telegram.org"
    assert c["fb-page"].options == {"page_id": "1234567890", "api_version": "v25.0"}
    assert c["fb-page"].secrets["token"] == SecretRef(
        "credential", "fb-page-token", "channels[5].token_credential", "channel 'fb-page'"
    )
    assert c["fb-page"].api_root == "https://graph.facebook.com"
    assert c["ok-group"].options == {"group_id": "70000000000000", "application_key": "CBAXXXXXXXXXXXXXX"}
    assert set(c["ok-group"].secrets) == {"application_secret", "token"}
    assert c["ok-group"].api_root == "https://api.ok.ru"
    assert c["out"].options == {"path": str(tmp_path.resolve() / "outbox")}
    assert c["out"].secrets == {}


def test_the_example_config_loads_as_it_is(tmp_path: Path) -> None:
    example = ROOT / "config.example.toml"
    config = load(example)
    assert list(config.channel_names) == ["outbox"]
    # ... and with every commented network example switched on
    lines = example.read_text(encoding="utf-8").splitlines()
    on, in_channel = [], False
    for line in lines:
        if line.startswith("# [[channels]]"):
            in_channel = True
        if in_channel and line.startswith("# ") and not line.startswith("# #"):
            line = line[2:]
        elif not line.strip():
            in_channel = False
        on.append(line)
    config = load(write(tmp_path, "\n".join(on)))
    assert {c.network for c in config.channels} == {"outbox", "vk", "telegram", "facebook", "ok"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90", 90.0), ("1.5", 1.5), ('"30s"', 30.0), ('"15m"', 900.0), ('"2h"', 7200.0), ('"1d"', 86400.0)],
)
def test_durations(tmp_path: Path, value: str, seconds: float) -> None:
    config = load(write(tmp_path, f"[daemon]\nshutdown_grace = {value}\n[retry]\nmax_age = {value}\n"))
    assert config.daemon.shutdown_grace == seconds
    assert config.retry.max_age == timedelta(seconds=seconds)


def test_channels_that_spell_a_value_alike_share_it_and_no_others(tmp_path: Path) -> None:
    # Slot lists, durations and secret paths are parsed once per distinct spelling (agency configs repeat them).
    shared = tmp_path / "shared-token"
    shared.write_text("t")
    shared.chmod(0o640)
    rows = [
        ("Europe/Moscow", '["tue 10:00"]', '"10s"', "secrets/a", "mix_share = 0.5\n"),
        ("Asia/Tokyo", '["daily 09:30"]', '"2m"', str(shared), ""),
        ("Europe/Moscow", '["tue 10:00"]', '"10s"', str(shared), ""),
    ]
    body = "[mix]\nshare = 0.25\nwindow = 8\n" + "".join(
        f'[[channels]]\nname = "c{i}"\nnetwork = "telegram"\nchat_id = "@chan{i}x"\ntimezone = "{zone}"\n'
        f'slots = {slots}\ntimeout = {timeout}\ntoken_file = "{token}"\n{extra}'
        for i, (zone, slots, timeout, token, extra) in enumerate(rows)
    )
    path = write(tmp_path / "one", body)
    config = load(path)
    c0, c1, c2 = config.channels
    assert [str(s) for s in c0.slots] == [str(s) for s in c2.slots] == ["tue 10:00"]
    assert [str(s) for s in c1.slots] == [f"{day} 09:30" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    assert (c0.timezone, c1.timezone, c2.timezone) == (ZoneInfo("Europe/Moscow"), ZoneInfo("Asia/Tokyo"), c0.timezone)
    assert (c0.timeout, c1.timeout, c2.timeout) == (10.0, 120.0, 10.0)
    assert (c0.mix.share, c1.mix.share, c2.mix.share) == (0.5, 0.25, 0.25)
    assert c0.secrets["token"].name == str((tmp_path / "one").resolve() / "secrets" / "a")
    other = load(write(tmp_path / "two", body))
    assert other.channels[0].secrets["token"].name == str((tmp_path / "two").resolve() / "secrets" / "a")
    assert config.warnings[:2] == tuple(
        f"{path}: channels[{i}].token_file: {shared} is readable or writable by other users (mode 640): chmod 600 it"
        for i in (1, 2)
    )
    twice = body.replace('slots = ["daily 09:30"]', 'slots = ["tue 10:00", "tuesday 10:00"]')
    for _ in range(2):
        assert error_of(write(tmp_path / "bad", twice)) == (
            f'{tmp_path / "bad" / "config.toml"}: channels[1].slots: "tuesday 10:00": tue 10:00 is listed twice'
        )


def test_loading_leaves_the_cyclic_collector_as_it_found_it(tmp_path: Path) -> None:
    # Loading pauses it (a long reload in the daemon must not switch it off for good, even when the config is bad).
    good, bad = write(tmp_path, VK), write(tmp_path, "[database\n", "bad.toml")
    assert gc.isenabled()
    try:
        load(good)
        assert gc.isenabled()
        error_of(bad)
        assert gc.isenabled()
        gc.disable()
        load(good)
        error_of(bad)
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- secrets ------------------------------------------------------------------------------------------------------


def secret(tmp_path: Path, line: str, env: dict[str, str] | None = None) -> SecretRef:
    body = f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 1\n{line}\n'
    return load(write(tmp_path / "etc", body), env).channel("vk").secrets["token"]


def test_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = secret(tmp_path, 'token_env = "SMM_VK_TOKEN"')
    assert ref.read({"SMM_VK_TOKEN": "  vk1.a.TEST-not-real \n"}) == "vk1.a.TEST-not-real"
    monkeypatch.setenv("SMM_VK_TOKEN", "from-os-environ")
    assert ref.read() == "from-os-environ"
    for env in ({}, {"SMM_VK_TOKEN": "   "}):
        with pytest.raises(ConfigError) as info:
            ref.read(env)
        assert str(info.value) == "channel 'vk': channels[0].token_env: environment variable SMM_VK_TOKEN is not set"


def test_secret_from_a_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("file-token-not-real\n")
    token.chmod(0o600)
    ref = secret(tmp_path, f'token_file = "{token}"')
    assert ref.read({}) == "file-token-not-real"

    token.write_text(" \n")
    with pytest.raises(ConfigError) as info:
        ref.read({})
    assert str(info.value) == f"channel 'vk': channels[0].token_file: {token} is empty"

    token.unlink()
    with pytest.raises(ConfigError) as info:
        ref.read({})
    assert str(info.value) == f"channel 'vk': channels[0].token_file: cannot read {token}: No such file or directory"


def test_a_relative_secret_file_is_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "etc" / "secrets").mkdir(parents=True)
    (tmp_path / "etc" / "secrets" / "vk").write_text("relative-token")
    (tmp_path / "etc" / "secrets" / "vk").chmod(0o600)
    ref = secret(tmp_path, 'token_file = "secrets/vk"')
    assert Path.cwd() == tmp_path  # not the config folder
    assert ref.name == str((tmp_path / "etc").resolve() / "secrets" / "vk")
    assert ref.read({}) == "relative-token"


def test_secret_from_a_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "vk-token").write_text("credential-token\n")
    ref = secret(tmp_path, 'token_credential = "vk-token"')
    assert ref.read({"CREDENTIALS_DIRECTORY": str(creds)}) == "credential-token"
    with pytest.raises(ConfigError) as info:
        ref.read({})
    assert str(info.value) == (
        "channel 'vk': channels[0].token_credential: credential 'vk-token' needs $CREDENTIALS_DIRECTORY "
        "(set by systemd's LoadCredential=)"
    )
    with pytest.raises(ConfigError) as info:
        ref.read({"CREDENTIALS_DIRECTORY": str(tmp_path / "nowhere")})
    assert str(info.value) == (
        f"channel 'vk': channels[0].token_credential: cannot read {tmp_path}/nowhere/vk-token: "
        "No such file or directory"
    )


def test_loading_never_reads_a_secret(tmp_path: Path) -> None:
    # The token is needed only when an adapter is built: `smm add` works without it.
    ref = secret(tmp_path, f'token_file = "{tmp_path}/missing"')
    assert ref.source == "file"


def test_secret_files_others_can_read_are_warned_about(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    config_path = write(tmp_path / "etc", VK.replace('token_env = "SMM_VK_TOKEN"', f'token_file = "{token}"'))
    config_path.chmod(0o640)
    token.chmod(0o600)
    assert load(config_path).warnings == ()
    config_path.chmod(0o644)  # issue 6: a config readable by others while it names secret files
    assert load(config_path).warnings == (
        f"{config_path} is readable by other users (mode 644) and names the files that hold the secrets: "
        "chmod o-r it (640 with the service's group, or 600)",
    )
    config_path.chmod(0o640)
    token.chmod(0o640)
    assert load(config_path).warnings == (
        f"{config_path}: channels[0].token_file: {token} is readable or writable by other users (mode 640): "
        "chmod 600 it",
    )


def test_a_config_others_can_edit_is_warned_about_when_it_names_secrets(tmp_path: Path) -> None:
    config_path = write(tmp_path, VK)
    config_path.chmod(0o664)
    assert load(config_path).warnings == (
        f"{config_path} is writable by other users (mode 664), who could send the channels' secrets to another "
        "api_url: chmod go-w it",
    )
    outbox_only = write(tmp_path, '[[channels]]\nname = "out"\nnetwork = "outbox"\n', "outbox.toml")
    outbox_only.chmod(0o666)
    assert load(outbox_only).warnings == ()


# -- errors: one line each ----------------------------------------------------------------------------------------

CHANNEL = '[[channels]]\nname = "a"\nnetwork = "outbox"\n'
KNOWN_MARKETING = "hashtags, late_policy, mix, mix_share, mix_window, name, native_schedule, network, on_uncertain"
KNOWN_UTM = "utm, utm_campaign, utm_medium, utm_source"
KNOWN_OUTBOX = (
    f"api_url, evergreen_cooldown, evergreen_fill_ahead, {KNOWN_MARKETING}, path, slots, timeout, timezone, {KNOWN_UTM}"
)
KNOWN_VK = (
    f"api_url, evergreen_cooldown, evergreen_fill_ahead, group_id, {KNOWN_MARKETING}, slots, timeout, timezone, "
    f"token_credential, token_env, token_file, {KNOWN_UTM}"
)
KNOWN_ROOT = "alerts, channels, comments, daemon, database, evergreen, feeds, media, mix, results, retry, schedule, utm"


ERRORS: list[tuple[str, str]] = [
    # unknown keys, at every level, with the closest valid keys when some are close
    ("colour = 1\n", f"colour: unknown key (known here: {KNOWN_ROOT})"),
    ('"a\\nb" = 1\n', f'"a\\nb": unknown key (known here: {KNOWN_ROOT})'),
    ("[mixx]\nshare = 0.5\n", f"mixx: unknown key, did you mean mix? (known here: {KNOWN_ROOT})"),
    ("[Schedule]\n", f"Schedule: unknown key, did you mean schedule? (known here: {KNOWN_ROOT})"),
    ("[[feed]]\n", f"feed: unknown key, did you mean feeds? (known here: {KNOWN_ROOT})"),
    ("[schedule]\nzone = 1\n", "schedule.zone: unknown key, did you mean timezone? (known here: slots, timezone)"),
    ("[database]\npath = 1\n", "database.path: unknown key (known here: url)"),
    ("[media]\ndir = 1\n", "media.dir: unknown key (known here: path)"),
    (
        "[mix]\nshare = 0.5\nwindow = 1\n",
        "mix.share: 0.5 of 1 delivery rounds down to no commercial post at all: raise the share or the window "
        "(or set the share to 0 to allow no commercial post)",
    ),
    (
        "[retry]\nmax_attempt = 3\n",
        "retry.max_attempt: unknown key, did you mean max_attempts? (known here: backoff_base, backoff_cap, "
        "in_call_attempts, in_call_max_wait, max_age, max_attempts)",
    ),
    (CHANNEL + "colour = 1\n", f"channels[0].colour: unknown key (known here: {KNOWN_OUTBOX})"),
    (CHANNEL + 'token_env = "X"\n', f"channels[0].token_env: unknown key (known here: {KNOWN_OUTBOX})"),
    (VK + 'path = "x"\n', f"channels[0].path: unknown key (known here: {KNOWN_VK})"),
    (
        CHANNEL + 'utm_sorce = "x"\n',
        f"channels[0].utm_sorce: unknown key, did you mean utm_source? (known here: {KNOWN_OUTBOX})",
    ),
    (
        VK + 'tokn_file = "x"\n',
        f"channels[0].tokn_file: unknown key, did you mean token_file? (known here: {KNOWN_VK})",
    ),
    (
        CHANNEL + "mix_windw = 4\n",
        f"channels[0].mix_windw: unknown key, did you mean mix_window? (known here: {KNOWN_OUTBOX})",
    ),
    # secrets never in the file
    (
        '[[channels]]\nname = "a"\nnetwork = "vk"\ngroup_id = 1\ntoken = "123:ABC"\n',
        "channels[0].token: secrets never go in the config: use token_env, token_file or token_credential",
    ),
    (
        VK + 'token = "123:ABC"\n',
        "channels[0].token: secrets never go in the config: use token_env, token_file or token_credential",
    ),
    (
        VK.replace("vk", "ok").replace("group_id = 123", 'group_id = 1\napplication_key = "K"')
        + 'application_secret = "s3cret"\n',
        "channels[0].application_secret: secrets never go in the config: use application_secret_env, "
        "application_secret_file or application_secret_credential",
    ),
    (VK + 'token_file = "/x"\n', "channels[0].token_*: token_env and token_file both given; use one"),
    # names
    (CHANNEL + CHANNEL, 'channels[1].name: "a" is already the name of channels[0]'),
    ('[[channels]]\nnetwork = "outbox"\n', "channels[0].name: is required"),
    (
        '[[channels]]\nname = "a b"\nnetwork = "outbox"\n',
        "channels[0].name: \"a b\" must be 1-64 letters, digits, '-', '_' or '.'",
    ),
    ('[[channels]]\nname = ""\nnetwork = "outbox"\n', 'channels[0].name: must be a non-empty string, not ""'),
    # networks
    (
        '[[channels]]\nname = "a"\nnetwork = "vkontakte"\n',
        'channels[0].network: "vkontakte" is not one of vk, telegram, facebook, ok, outbox',
    ),
    (
        '[[channels]]\nname = "a"\nnetwork = 5\n',
        "channels[0].network: 5 is not one of vk, telegram, facebook, ok, outbox",
    ),
    (
        '[[channels]]\nname = "a"\n',
        "channels[0].network: is required: one of vk, telegram, facebook, ok, outbox",
    ),
    ('channels = "a"\n', "channels: must be an array of tables: [[channels]]"),
    ("channels = [1]\n", "channels[0]: must be a table"),
    # per-network required keys
    (VK.replace("group_id = 123\n", ""), "channels[0].group_id: is required: the numeric id"),
    (
        VK.replace("group_id = 123", "group_id = -123"),
        "channels[0].group_id: -123 is not a positive numeric id (without a minus sign)",
    ),
    (
        VK.replace("group_id = 123", 'group_id = "club123"'),
        'channels[0].group_id: "club123" is not a positive numeric id (without a minus sign)',
    ),
    (
        VK.replace('token_env = "SMM_VK_TOKEN"\n', ""),
        "channels[0].token_env: is required (or token_file, or token_credential)",
    ),
    (
        '[[channels]]\nname = "t"\nnetwork = "telegram"\ntoken_env = "X"\n',
        'channels[0].chat_id: is required: "@channelname" or a numeric id such as -1001234567890',
    ),
    (
        '[[channels]]\nname = "t"\nnetwork = "telegram"\nchat_id = "mychannel"\ntoken_env = "X"\n',
        'channels[0].chat_id: "mychannel" is not "@channelname" or a numeric id',
    ),
    (
        '[[channels]]\nname = "t"\nnetwork = "telegram"\nchat_id = "@c_ok"\ntoken_env = "X"\nparse_mode = "html"\n',
        'channels[0].parse_mode: "html" is not one of none, HTML, MarkdownV2',
    ),
    (
        '[[channels]]\nname = "f"\nnetwork = "facebook"\ntoken_env = "X"\n',
        "channels[0].page_id: is required: the numeric id",
    ),
    (
        '[[channels]]\nname = "f"\nnetwork = "facebook"\npage_id = 1\napi_version = "25.0"\ntoken_env = "X"\n',
        'channels[0].api_version: "25.0" is not a Graph API version such as "v25.0"',
    ),
    (
        '[[channels]]\nname = "o"\nnetwork = "ok"\ngroup_id = 1\ntoken_env = "X"\napplication_secret_env = "Y"\n',
        "channels[0].application_key: is required",
    ),
    (
        '[[channels]]\nname = "o"\nnetwork = "ok"\ngroup_id = 1\napplication_key = "K"\ntoken_env = "X"\n',
        "channels[0].application_secret_env: is required (or application_secret_file, or "
        "application_secret_credential)",
    ),
    # time zones and slots
    (
        '[schedule]\ntimezone = "Mars/Olympus"\n',
        'schedule.timezone: "Mars/Olympus" is not an IANA time zone such as "Europe/Moscow"',
    ),
    (
        '[schedule]\ntimezone = "europe/berlin"\n',
        'schedule.timezone: "europe/berlin" is not an IANA time zone such as "Europe/Moscow"',
    ),
    (
        '[schedule]\ntimezone = "../../etc/passwd"\n',
        'schedule.timezone: "../../etc/passwd" is not an IANA time zone such as "Europe/Moscow"',
    ),
    ("[schedule]\ntimezone = 3\n", "schedule.timezone: must be a non-empty string, not 3"),
    (
        CHANNEL + 'timezone = "Europe"\n',
        'channels[0].timezone: "Europe" is not an IANA time zone such as "Europe/Moscow"',
    ),
    (
        '[schedule]\nslots = ["tue 25:00"]\n',
        'schedule.slots: "tue 25:00": 25:00 is not a time of day (00:00 to 23:59)',
    ),
    ("[schedule]\nslots = []\n", "schedule.slots: at least one slot is needed"),
    (
        '[schedule]\nslots = "tue 10:00"\n',
        'schedule.slots: must be a list of slots such as ["tue 10:00", "fri 10:00"]',
    ),
    (
        CHANNEL + 'slots = ["noon 12:00"]\n',
        "channels[0].slots: \"noon 12:00\": 'noon' is not a day (mon..sun, daily, weekdays, weekends)",
    ),
    (
        CHANNEL + 'slots = ["tue 10:00", "tue 10:00"]\n',
        'channels[0].slots: "tue 10:00": tue 10:00 is listed twice',
    ),
    # durations and numbers
    (
        '[daemon]\ntick = "5 parsecs"\n',
        'daemon.tick: "5 parsecs" is not a duration such as 90, "30s", "15m", "2h" or "1d"',
    ),
    ("[daemon]\ntick = -1\n", 'daemon.tick: -1 is not a duration such as 90, "30s", "15m", "2h" or "1d"'),
    ("[daemon]\ntick = true\n", 'daemon.tick: true is not a duration such as 90, "30s", "15m", "2h" or "1d"'),
    ('[retry]\nmax_age = "1w"\n', 'retry.max_age: "1w" is not a duration such as 90, "30s", "15m", "2h" or "1d"'),
    (
        CHANNEL + 'timeout = "-5s"\n',
        'channels[0].timeout: "-5s" is not a duration such as 90, "30s", "15m", "2h" or "1d"',
    ),
    ("[retry]\nmax_attempts = 0\n", "retry.max_attempts: must be a whole number >= 1, not 0"),
    ("[retry]\nmax_attempts = 2.5\n", "retry.max_attempts: must be a whole number >= 1, not 2.5"),
    ('[daemon]\nlate_policy = "never"\n', 'daemon.late_policy: "never" is not one of publish, reslot, skip'),
    (CHANNEL + 'on_uncertain = "guess"\n', 'channels[0].on_uncertain: "guess" is not one of hold, retry'),
    # api_url
    (CHANNEL + 'api_url = "ftp://example.org"\n', 'channels[0].api_url: "ftp://example.org" is not an http(s) URL'),
    (CHANNEL + 'api_url = "http://"\n', 'channels[0].api_url: "http://" is not an http(s) URL'),
    (CHANNEL + 'api_url = "api.telegram.org"\n', 'channels[0].api_url: "api.telegram.org" is not an http(s) URL'),
    # sections that are not tables
    ("database = 5\n", "database: must be a table"),
    ('database = ""\n', "database: must be a table"),
    ("schedule = []\n", "schedule: must be a table"),
    ("daemon = false\n", "daemon: must be a table"),
    # database URLs
    (
        '[database]\nurl = "mysql://db/smm"\n',
        'database.url: "mysql://db/smm" is not a sqlite:/// or postgresql+psycopg:// URL',
    ),
    (
        '[database]\nurl = "sqlite://smm.db"\n',
        'database.url: "sqlite://smm.db" is not a SQLite URL such as "sqlite:///smm.db"',
    ),
    (
        '[database]\nurl = "sqlite:///:memory:"\n',
        'database.url: "sqlite:///:memory:" names no database file (the queue would be lost); '
        'use e.g. "sqlite:///smm.db"',
    ),
    (
        '[database]\nurl = "sqlite:///"\n',
        'database.url: "sqlite:///" names no database file (the queue would be lost); use e.g. "sqlite:///smm.db"',
    ),
    ('[database]\nurl = ""\n', 'database.url: must be a non-empty string, not ""'),
    # a value with a line break stays on one line
    (
        '[[channels]]\nname = "a"\nnetwork = "vk\\nx"\n',
        'channels[0].network: "vk\\nx" is not one of vk, telegram, facebook, ok, outbox',
    ),
]


@pytest.mark.parametrize(("body", "message"), ERRORS, ids=[f"{i}-{m.split(':')[0]}" for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_file_the_key_and_what_is_allowed(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    assert error_of(path) == f"{path}: {message}"


# -- finding and reading the file ---------------------------------------------------------------------------------


def test_discovery_order(tmp_path: Path) -> None:
    explicit = write(tmp_path / "a", "")
    from_env = write(tmp_path / "b", "")
    write(tmp_path, "")  # ./config.toml (the tests run in tmp_path)
    env = {"SMM_CONFIG": str(from_env)}
    assert find_config(explicit, env) == explicit
    assert find_config(None, env) == from_env
    assert find_config(None, {}) == Path("config.toml")
    assert load_config(None, env={}).path == (tmp_path / "config.toml").resolve()
    assert load_config(str(explicit), env=env).path == explicit.resolve()


def test_smm_config_pointing_nowhere_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    write(tmp_path, "")
    missing = tmp_path / "missing.toml"
    assert error_of(None, {"SMM_CONFIG": str(missing)}) == f"{missing}: no such file"


def test_no_config_anywhere(tmp_path: Path) -> None:
    if Path("/etc/smm-scheduler/config.toml").exists():
        pytest.skip("this machine has /etc/smm-scheduler/config.toml")
    (tmp_path / "config.toml").mkdir()  # a folder named config.toml is not a config
    assert error_of(None) == (
        "no config file: pass --config PATH, set $SMM_CONFIG, or create ./config.toml "
        "(config.example.toml is a working start)"
    )


def test_a_relative_path_is_reported_as_given(tmp_path: Path) -> None:
    write(tmp_path, "colour = 1\n", "mine.toml")
    assert error_of(Path("mine.toml")).startswith("mine.toml: colour: unknown key")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("dir", "is a directory, not a config file"),
        (b"a = \n", "invalid TOML: Invalid value (at line 1, column 5)"),
        (b'[database]\nurl = "sqlite:///caf\xe9.db"\n', "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    path = tmp_path / "config.toml"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    assert error_of(path) == f"{path}: {message}"


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'\xef\xbb\xbf[schedule]\ntimezone = "Europe/Berlin"\n')
    assert load(path).timezone == ZoneInfo("Europe/Berlin")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.chmod(0)
    assert error_of(path) == f"{path}: cannot read: Permission denied"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_file_without_read_permission_as_root_without_dac_override(tmp_path: Path) -> None:
    # Root reads anything; without the capabilities that let it ignore file modes, it is refused like anyone.
    path = write(tmp_path, "")
    path.chmod(0)
    dropped = "-dac_override,-dac_read_search"
    result = subprocess.run(
        [
            "setpriv",
            f"--bounding-set={dropped}",
            "--",
            sys.executable,
            "-m",
            "scheduler",
            "--config",
            str(path),
            "queue",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"smm: error: {path}: cannot read: Permission denied"


@pytest.mark.parametrize(
    "tail",
    ["[database\n", "x = {y = 1,}\n", "a = {b = 1,\n c = 2}\n", 'a = "\\e"\n', "t = 10:00\n"],
    ids=["broken", "toml-1.1-trailing-comma", "toml-1.1-multiline-table", "toml-1.1-escape", "toml-1.1-time"],
)
def test_a_big_config_parses_as_the_standard_library_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    # From COMPILED_TOML_FROM characters on, the compiled parser (tomli) reads the file: same config, same errors,
    # and the same TOML version (1.0), so that trimming a big config never makes it invalid.
    from scheduler import config as config_module

    body = "".join(VK.replace('"vk"\nnetwork', f'"vk{i}"\nnetwork') for i in range(600))
    assert len(body) >= config_module.COMPILED_TOML_FROM
    big, bad = write(tmp_path, body), write(tmp_path, body + tail, "bad.toml")
    fast, fast_error = load(big), error_of(bad)
    monkeypatch.setattr(config_module, "COMPILED_TOML_FROM", 10**9)
    assert load(big) == fast and len(fast.channels) == 600
    assert error_of(bad) == fast_error
    assert ": invalid TOML: " in fast_error and "(at line 3001, column " in fast_error


def test_only_a_big_config_imports_the_compiled_parser(tmp_path: Path) -> None:
    small = write(tmp_path, VK)
    big = write(tmp_path, VK + "#" * 40_000 + "\n", "big.toml")
    for path, compiled in ((small, False), (big, True)):
        code = f"import sys\nfrom scheduler.config import load_config\nload_config({str(path)!r}, env={{}})\n"
        code += "print('tomli' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, str(compiled)), done.stderr
