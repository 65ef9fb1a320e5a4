"""The adapter factory: each adapter built by its own class from the channel's config, its secrets registered for
redaction, and the clients its channels can share made once and closed together."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from adapters.facebook import FacebookAdapter
from adapters.ok import OkAdapter
from adapters.outbox import OutboxAdapter
from adapters.telegram import TelegramAdapter
from adapters.vk import VkAdapter
from scheduler.channels import AdapterFactory
from scheduler.config import load_config
from scheduler.log import redact
from tests.conftest import write_config

ENV = {"TG_A": "111:bot-a-token", "TG_B": "222:bot-b-token", "VK": "vk-user-token", "FB": "fb-page-token"}
ENV |= {"OK_SECRET": "ok-app-secret", "OK_TOKEN": "ok-user-token"}

CHANNELS = """
[[channels]]
name = "tg1"
network = "telegram"
chat_id = "@one_channel"
token_env = "TG_A"
parse_mode = "HTML"

[[channels]]
name = "tg2"
network = "telegram"
chat_id = -1001234567890
token_env = "TG_A"

[[channels]]
name = "tg3"
network = "telegram"
chat_id = "@three_channel"
token_env = "TG_B"

[[channels]]
name = "vk1"
network = "vk"
group_id = 45
token_env = "VK"

[[channels]]
name = "vk2"
network = "vk"
group_id = "46"
token_env = "VK"

[[channels]]
name = "fb1"
network = "facebook"
page_id = 1000000001
token_env = "FB"

[[channels]]
name = "fb2"
network = "facebook"
page_id = 1000000002
token_env = "FB"
api_version = "v24.0"

[[channels]]
name = "ok1"
network = "ok"
group_id = 7
application_key = "CBAKEY"
application_secret_env = "OK_SECRET"
token_env = "OK_TOKEN"
"""


def test_each_network_builds_its_adapters_and_shares_its_clients(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "config.toml", "sqlite:///smm.db", CHANNELS), env=ENV)
    factory = AdapterFactory(env=ENV)
    built = {channel.name: factory.build(channel) for channel in config.channels}

    tg1, tg2, tg3 = built["tg1"], built["tg2"], built["tg3"]
    assert isinstance(tg1, TelegramAdapter) and isinstance(tg2, TelegramAdapter) and isinstance(tg3, TelegramAdapter)
    assert (tg1.chat_id, tg1.parse_mode, tg2.chat_id, tg2.parse_mode) == ("@one_channel", "HTML", -1001234567890, None)
    assert tg1._bot is tg2._bot and tg1._bot is not tg3._bot  # one Bot per token
    vk1, vk2 = built["vk1"], built["vk2"]
    assert isinstance(vk1, VkAdapter) and isinstance(vk2, VkAdapter)
    assert (vk1.group_id, vk2.group_id) == (45, 46)
    assert vk1._session is vk2._session
    fb1, fb2, ok1 = built["fb1"], built["fb2"], built["ok1"]
    assert isinstance(fb1, FacebookAdapter) and isinstance(fb2, FacebookAdapter) and isinstance(ok1, OkAdapter)
    assert (fb1.page_id, fb1._version, fb2.page_id, fb2._version) == ("1000000001", "v25.0", "1000000002", "v24.0")
    assert fb1._client is fb2._client and fb1._client is not ok1._client  # one pool per API root
    assert (str(fb1._client.base_url), str(ok1._client.base_url)) == ("https://graph.facebook.com", "https://api.ok.ru")
    assert isinstance(
        factory.build(load_config(write_config(tmp_path / "o.toml", "sqlite:///o.db"), env={}).channels[0]),
        OutboxAdapter,
    )

    assert [secret for secret in ENV.values() if secret in redact(" ".join(ENV.values()))] == []

    asyncio.run(factory.aclose())
    assert fb1._client.is_closed and ok1._client.is_closed
    fb_again = factory.build(config.channel("fb1"))
    assert isinstance(fb_again, FacebookAdapter) and not fb_again._client.is_closed
    asyncio.run(factory.aclose())


def test_reading_a_config_of_every_network_loads_no_client_library(tmp_path: Path) -> None:
    # The config asks each network's adapter class for its keys; `smm add` must stay free of the client libraries.
    path = write_config(tmp_path / "config.toml", "sqlite:///smm.db", CHANNELS)
    code = (
        "import sys\n"
        "from scheduler.config import load_config\n"
        f"config = load_config({str(path)!r}, env={{}})\n"
        "assert {c.network for c in config.channels} == {'telegram', 'vk', 'facebook', 'ok', 'outbox'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('telegram', 'vk_api', 'httpx', 'requests')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_the_markup_of_a_channels_texts_and_the_api_messages_name_are_its_adapters_data(tmp_path: Path) -> None:
    # The core asks the adapter class: only Telegram's options set a markup, and each network names its own API.
    config = load_config(write_config(tmp_path / "config.toml", "sqlite:///smm.db", CHANNELS), env=ENV)
    assert [(c.name, c.parse_mode) for c in config.channels if c.parse_mode] == [("tg1", "HTML")]
    assert VkAdapter.markup({"parse_mode": "HTML"}) is None and TelegramAdapter.markup({"parse_mode": None}) is None
    assert TelegramAdapter.api_title == "the Bot API" and OutboxAdapter.api_title == ""
