"""What a channel's adapter reads from the config.

The config loader reads the keys every channel has (name, network, slots, api_url, timeout, the marketing keys),
then hands the channel's table to the adapter class: :meth:`~adapters.base.Adapter.read_options` reads and checks
the network's own keys through an :class:`OptionReader` (the loader's table, whose errors name the file and the
key), and :attr:`~adapters.base.Adapter.secret_keys` names the secrets. What an adapter is built from is in
:mod:`adapters.building`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


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
