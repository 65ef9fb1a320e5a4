"""What a channel's adapter is built from, when the daemon or ``smm doctor`` needs it: :meth:`~adapters.base.Adapter.
from_config` takes the channel's :class:`ChannelSettings` and reuses the clients in :class:`SharedClients`. Not
loaded by commands that only read the config (``smm add``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ChannelSettings:
    """What an adapter is built from: the channel's checked options, its secrets (read), and where its API is."""

    options: Mapping[str, Any]
    """What :meth:`~adapters.base.Adapter.read_options` returned."""
    secrets: Mapping[str, str]
    """The values of the secrets named by :attr:`~adapters.base.Adapter.secret_keys`."""
    api_url: str | None
    """The channel's ``api_url`` as configured (``None``: the network's own)."""
    api_root: str
    """``api_url``, else the network's :attr:`~adapters.base.Adapter.default_api_root`, without a trailing slash."""
    timeout: float


class SharedClients:
    """Clients the channels of one process share (an HTTP pool per API root, a Telegram bot per token), made on
    first use and closed together.

    A key starts with a name of its kind (``"http"``, ``"telegram-bot"``), so that adapters of different networks
    never pick up each other's clients.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[Hashable, ...], tuple[Any, Callable[[Any], object]]] = {}

    def get(
        self,
        key: tuple[Hashable, ...],
        make: Callable[[], T],
        close: Callable[[T], object],
        *,
        usable: Callable[[T], bool] | None = None,
    ) -> T:
        """The client kept under ``key``; made by ``make`` when there is none yet, or when ``usable`` says the one
        kept can no longer be used. ``close`` releases it (it may return an awaitable)."""
        kept = self._items.get(key)
        if kept is not None and (usable is None or usable(kept[0])):
            client: T = kept[0]
            return client
        client = make()
        self._items[key] = (client, close)
        return client

    async def aclose(self) -> None:
        """Close every client, in the order they were made."""
        items, self._items = list(self._items.values()), {}
        for client, close in items:
            closing = close(client)
            if inspect.isawaitable(closing):
                await closing
