"""Adding a network is one adapter class and one line in the registry: a ``pigeon`` network declared in this file
goes through the config, ``smm doctor``, ``smm add``, ``smm plan`` and the daemon without another edit.

The pigeon network is the outbox (posts land in a folder) under another name, with its own key (``loft``), its own
secret (``ring``) and its own limits; it is registered for each test only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters import ADAPTERS
from adapters.base import MB, Capabilities
from adapters.building import ChannelSettings, SharedClients
from adapters.channel import OptionReader, show
from adapters.outbox import OutboxAdapter
from scheduler.config import load_config
from scheduler.errors import ConfigError
from tests.conftest import run_cli, write_config

RING = "ring-7f3a9c-secret"


class PigeonAdapter(OutboxAdapter):
    """Carries short posts to a loft: a folder named by the channel's ``loft`` key, next to the config."""

    network = "pigeon"
    title = "Pigeon"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=140, max_media=1, media_types=frozenset({"image/png"}), max_media_bytes=MB
    )
    secret_keys = ("ring",)

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        loft = table.string("loft", required=True)
        assert loft is not None
        if not loft.isalnum():
            raise table.error("loft", f"{show(loft)} is not a loft's name: letters and digits")
        return {"path": str(folder / loft)}

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> PigeonAdapter:
        if channel.secrets["ring"] != RING:
            raise ValueError("the pigeon was given another ring")
        return cls(channel.options["path"])


@pytest.fixture(autouse=True)
def pigeon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ADAPTERS, "pigeon", f"{__name__}:PigeonAdapter")
    monkeypatch.setenv("SMM_RING", RING)


def config_with(tmp_path: Path, db_url: str, channel: str) -> Path:
    body = f'[[channels]]\nname = "coop"\nnetwork = "pigeon"\nring_env = "SMM_RING"\n{channel}'
    return write_config(tmp_path / "config.toml", db_url, body, outbox=False)


def test_the_config_reads_the_new_networks_keys_and_secrets(tmp_path: Path, sqlite_url: str) -> None:
    config = load_config(config_with(tmp_path, sqlite_url, 'loft = "north"\n'), env={})
    coop = config.channel("coop")
    assert (coop.network, dict(coop.options)) == ("pigeon", {"path": str(tmp_path / "north")})
    assert [(name, ref.source, ref.name) for name, ref in coop.secrets.items()] == [("ring", "env", "SMM_RING")]
    assert coop.api_root == ""  # a network without an API


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("", "channels[0].loft: is required"),
        ('loft = "a/b"\n', 'channels[0].loft: "a/b" is not a loft\'s name: letters and digits'),
        (
            'loft = "north"\nlofts = 1\n',
            "channels[0].lofts: unknown key, did you mean loft or slots? "
            "(known here: api_url, evergreen_cooldown, evergreen_fill_ahead, hashtags, late_policy, loft,",
        ),
        ('loft = "north"\nring = "x"\n', "channels[0].ring: secrets never go in the config: use ring_env"),
        (
            'loft = "north"\nnative_schedule = true\n',
            "channels[0].native_schedule: pigeon cannot schedule posts itself; only vk and facebook can",
        ),
    ],
)
def test_the_new_networks_keys_are_checked_with_one_line_errors(
    tmp_path: Path, sqlite_url: str, channel: str, error: str
) -> None:
    path = config_with(tmp_path, sqlite_url, channel)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert str(raised.value).startswith(f"{path}: {error}")
    assert "\n" not in str(raised.value)


def test_an_unregistered_network_is_refused_and_the_registry_names_the_new_one(tmp_path: Path, sqlite_url: str) -> None:
    path = write_config(
        tmp_path / "config.toml", sqlite_url, '[[channels]]\nname = "x"\nnetwork = "owl"\n', outbox=False
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert str(raised.value) == (
        f'{path}: channels[0].network: "owl" is not one of vk, telegram, facebook, ok, outbox, pigeon'
    )


def test_doctor_add_plan_and_the_daemon_work_on_the_new_network(tmp_path: Path, sqlite_url: str) -> None:
    config = config_with(tmp_path, sqlite_url, 'loft = "north"\n')
    assert run_cli("db", "upgrade", config=config).code == 0

    doctor = run_cli("doctor", config=config)
    assert doctor.code == 0, doctor
    coop = [line for line in doctor.out.splitlines() if "coop" in line]
    assert coop == [
        f"ok    coop  pigeon: folder {tmp_path / 'north'} does not exist yet; the first post creates it in {tmp_path}"
    ]

    too_long = run_cli("add", "c" * 141, "--now", config=config)
    assert (too_long.code, too_long.err.strip()) == (
        2,
        "smm: error: channel 'coop': the text is 141 characters long; pigeon allows 140",
    )

    assert run_cli("add", "coo", "--now", config=config).code == 0
    plan = json.loads(run_cli("plan", "--json", config=config).out)
    assert [(item["channel"], item["requests"]) for item in plan] == [
        ("coop", ["one pigeon post: text of 3 characters"])
    ]

    daemon = run_cli("run", "--once", config=config)
    assert daemon.code == 0, daemon
    shown = json.loads(run_cli("show", "1", "--json", config=config).out)["deliveries"][0]
    assert shown["status"] == "published"
    [folder] = [p for p in (tmp_path / "north").iterdir() if not p.name.startswith(".")]
    assert (folder / "post.txt").read_text(encoding="utf-8").startswith("coo")
    assert RING not in doctor.out + doctor.err + daemon.out + daemon.err


def test_doctor_names_the_new_networks_missing_secret(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMM_RING")
    config = config_with(tmp_path, sqlite_url, 'loft = "north"\n')
    doctor = run_cli("doctor", config=config)
    assert doctor.code == 1
    assert (
        "FAIL  coop  pigeon: channel 'coop': channels[0].ring_env: environment variable SMM_RING is not set"
        in doctor.out
    )
