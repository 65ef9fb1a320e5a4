"""One adapter per network, behind the interface in :mod:`adapters.base`.

The registry maps a network name to the adapter class's import path, so that looking up a network's limits does
not import every client library. A network lives in its module: its limits, config keys, secrets, construction,
preview and doctor check are its adapter class's. Adding one is a new module and one line in :data:`ADAPTERS`.
"""

from __future__ import annotations

import functools
from importlib import import_module

from adapters.base import (
    Adapter,
    Capabilities,
    Comment,
    MediaFile,
    OutgoingPost,
    PostResults,
    Problem,
    PublishResult,
    Quota,
    RateLimit,
)
from adapters.errors import UnknownNetwork

ADAPTERS: dict[str, str] = {
    "vk": "adapters.vk:VkAdapter",
    "telegram": "adapters.telegram:TelegramAdapter",
    "facebook": "adapters.facebook:FacebookAdapter",
    "ok": "adapters.ok:OkAdapter",
    "outbox": "adapters.outbox:OutboxAdapter",
}

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Capabilities",
    "Comment",
    "MediaFile",
    "OutgoingPost",
    "PostResults",
    "Problem",
    "PublishResult",
    "Quota",
    "RateLimit",
    "UnknownNetwork",
    "adapter_class",
]


def adapter_class(network: str) -> type[Adapter]:
    """The adapter class registered for ``network``."""
    try:
        target = ADAPTERS[network]
    except KeyError:
        raise UnknownNetwork(f"unknown network {network!r}; known: {', '.join(ADAPTERS)}") from None
    return _load(target)


@functools.cache
def _load(target: str) -> type[Adapter]:
    # Looked up once per channel when the config is read: an agency's config has thousands of channels.
    module_name, _, class_name = target.partition(":")
    cls = getattr(import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter")
    return cls
