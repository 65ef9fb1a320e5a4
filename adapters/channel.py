"""What a channel's adapter reads from the config and what it is built from.

The config loader reads the keys every channel has (name, network, slots, api_url, timeout, the marketing keys),
then hands the channel's table to the adapter class: :meth:`~adapters.base.Adapter.read_options` reads and checks
the network's own keys through an :class:`OptionReader` (the loader's table, whose errors name the file and the
key), and :attr:`~adapters.base.Adapter.secret_keys` names the secrets. When the daemon or ``smm doctor`` needs the
adapter, :meth:`~adapters.base.Adapter.from_config` builds it from :class:`ChannelSettings`, reusing the clients in
:class:`SharedClients`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class OptionReader(Protocol):
    """A channel's table in the config, as an adapter reads its own keys; every error names the file and the key.

    A key read through it counts as known: a key nobody reads is refused as unknown once the channel is read.
    """

    def get(self, key: str) -> Any:
        """The raw value of ``key``, or ``None`` when absent."""

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A non-empty string (stripped), ``default`` when absent."""

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        """One of ``allowed``, ``default`` when absent."""

    def error(self, key: str, message: str) -> Exception:
        """The one-line error to raise about ``key``: ``<file>: channels[<i>].<key>: <message>``."""


def show(value: Any) -> str:
    """A value as TOML would spell it, on one line (a string with a newline must not break the message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return " ".join(str(value).split())


def positive_id(table: OptionReader, key: str) -> int:
    """A required positive numeric id (a community, a Page), given as a number or a string of digits."""
    value = table.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if value is None:
        raise table.error(key, "is required: the numeric id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise table.error(key, f"{show(value)} is not a positive numeric id (without a minus sign)")
    return value


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
