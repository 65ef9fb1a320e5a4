"""Building adapters from channel configs: secrets read and registered for redaction, clients shared per API root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adapters import Adapter
from scheduler.config import ChannelConfig
from scheduler.log import register_secret

if TYPE_CHECKING:
    import httpx


class AdapterFactory:
    """Builds one adapter per channel; httpx-based adapters of one network and root share a client (and its pool)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        self._clients: dict[tuple[str, float], httpx.AsyncClient] = {}
        self._bots: dict[tuple[str, str, float], Any] = {}
        self._vk_sessions: dict[tuple[str | None, float], Any] = {}

    def secrets(self, channel: ChannelConfig) -> dict[str, str]:
        """The channel's secrets, read now (a ConfigError names the channel when one is missing)."""
        values = {name: ref.read(self._env) for name, ref in channel.secrets.items()}
        for value in values.values():
            register_secret(value)
        return values

    def _client(self, channel: ChannelConfig) -> httpx.AsyncClient:
        from adapters.http import build_client

        key = (channel.api_root, channel.timeout)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = self._clients[key] = build_client(channel.api_root, timeout=channel.timeout)
        return client

    def build(self, channel: ChannelConfig) -> Adapter:
        secrets = self.secrets(channel)
        opts: Mapping[str, Any] = channel.options
        if channel.network == "telegram":
            from adapters.telegram import TelegramAdapter, build_bot

            # The channels of one bot share its Bot object: one connection pool, one getMe.
            key = (secrets["token"], channel.api_root, channel.timeout)
            bot = self._bots.get(key)
            if bot is None:
                bot = self._bots[key] = build_bot(secrets["token"], api_url=channel.api_root, timeout=channel.timeout)
            return TelegramAdapter(
                secrets["token"],
                opts["chat_id"],
                api_url=channel.api_url,
                parse_mode=opts.get("parse_mode"),
                timeout=channel.timeout,
                bot=bot,
            )
        if channel.network == "vk":
            from adapters.vk import VkAdapter, build_session

            session_key = (channel.api_url, channel.timeout)
            session = self._vk_sessions.get(session_key)
            if session is None:
                session = self._vk_sessions[session_key] = build_session(channel.api_url, channel.timeout)
            return VkAdapter(
                secrets["token"], opts["group_id"], api_url=channel.api_url, timeout=channel.timeout, session=session
            )
        if channel.network == "facebook":
            from adapters.facebook import FacebookAdapter

            return FacebookAdapter(
                opts["page_id"], secrets["token"], client=self._client(channel), api_version=opts["api_version"]
            )
        if channel.network == "ok":
            from adapters.ok import OkAdapter

            return OkAdapter(
                opts["group_id"],
                opts["application_key"],
                secrets["application_secret"],
                secrets["token"],
                client=self._client(channel),
            )
        if channel.network == "outbox":
            from adapters.outbox import OutboxAdapter

            return OutboxAdapter(opts["path"])
        raise ValueError(f"no adapter for network {channel.network!r}")

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        for bot in self._bots.values():
            await bot.shutdown()
        self._bots.clear()
        for session in self._vk_sessions.values():
            session.close()
        self._vk_sessions.clear()
