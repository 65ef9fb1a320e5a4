"""Building adapters from channel configs: secrets read and registered for redaction, clients shared per API root.

How a network's adapter is built is the adapter's (:meth:`~adapters.base.Adapter.from_config`); this factory reads
the channel's secrets and keeps the clients its channels share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from adapters import Adapter, adapter_class
from adapters.building import ChannelSettings, SharedClients
from scheduler.config import ChannelConfig
from scheduler.log import register_secret


class AdapterFactory:
    """Builds one adapter per channel; adapters of one network and API root share their clients (and pools)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        self._shared = SharedClients()

    def secrets(self, channel: ChannelConfig) -> dict[str, str]:
        """The channel's secrets, read now (a ConfigError names the channel when one is missing)."""
        values = {name: ref.read(self._env) for name, ref in channel.secrets.items()}
        for value in values.values():
            register_secret(value)
        return values

    def build(self, channel: ChannelConfig) -> Adapter:
        """The channel's adapter (a ConfigError when a secret cannot be read)."""
        settings = ChannelSettings(
            options=channel.options,
            secrets=self.secrets(channel),
            api_url=channel.api_url,
            api_root=channel.api_root,
            timeout=channel.timeout,
        )
        return adapter_class(channel.network).from_config(settings, self._shared)

    async def aclose(self) -> None:
        """Close the clients the adapters shared."""
        await self._shared.aclose()
