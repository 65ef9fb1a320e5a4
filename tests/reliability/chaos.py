"""A random fault injector for the network fakes: each publishing request fails, with some probability, in one of
the ways real networks fail (a 5xx, the network's rate-limit answer, an answer slower than the client's timeout, a
connection dropped before or after the request was applied).

:meth:`Chaos.attach` hooks a running fake: scripted faults (``FakeServer.inject``) still come first; otherwise a
request whose fault key is one of the network's publishing keys (and whose HTTP method is ``method``) may fail.
The first faults on each network go through every kind once, in random order and without a throw of the dice, so
a short run exercises them all; after that a request fails with ``probability``, in a kind drawn at random.
``per_target`` caps the faults per target (a chat, a wall, a Page, a group), so the run ends in bounded time
whatever the dice say.

The hook relies on how :class:`~tests.fakes.base.FakeServer` dispatches a request: it computes the request's fault
key, then asks ``_next_fault(key)``, both in the thread that serves that request.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeRequest, FakeServer, Fault
from tests.fakes.telegram import error_body as telegram_error
from tests.fakes.vk import error_body as vk_error

#: Each kind of fault, as a factory of the fault for one network (given how slow "slow" is).
FaultFactory = Callable[[float], Fault]

_COMMON: dict[str, FaultFactory] = {
    "slow": lambda seconds: Fault.delay(seconds),
    "drop_before": lambda _: Fault.drop_before(),
    "drop_after": lambda _: Fault.drop_after(),
}

#: The faults of each network, in its own wire format.
FAULTS: dict[str, dict[str, FaultFactory]] = {
    "telegram": {
        "server_error": lambda _: Fault.respond(502, telegram_error(502, "Bad Gateway")),
        "rate_limit": lambda _: Fault.respond(
            429, telegram_error(429, "Too Many Requests: retry after 1", retry_after=1)
        ),
        **_COMMON,
    },
    "vk": {
        "server_error": lambda _: Fault.respond(500, b"<html><body>500 Internal Server Error</body></html>"),
        "rate_limit": lambda _: Fault.respond(200, vk_error(6, "Too many requests per second")),
        **_COMMON,
    },
    "facebook": {
        "server_error": lambda _: Fault.respond(
            500,
            {
                "error": {
                    "message": "An unexpected error has occurred. Please retry your request later.",
                    "type": "OAuthException",
                    "code": 2,
                    "is_transient": True,
                    "fbtrace_id": "AchaosTrace",
                }
            },
        ),
        # Error 32 without usage headers: no wait is named, so the daemon's own backoff applies.
        "rate_limit": lambda _: Fault.respond(
            400, {"error": {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}}
        ),
        **_COMMON,
    },
    # OK's rate-limit answer (error 8, FLOOD_BLOCKED) makes the adapter wait 60 s: too long for a run of seconds.
    "ok": {
        "server_error": lambda _: Fault.respond(502, b"<html><body>502 Bad Gateway</body></html>"),
        **_COMMON,
    },
}

#: The request that creates a post on each network, and who it targets (the cap on faults counts per target).
PUBLISH_KEYS: dict[str, tuple[str, ...]] = {
    "telegram": ("sendMessage", "sendPhoto", "sendMediaGroup"),
    "vk": ("wall.post",),
    "facebook": ("feed", "photos"),
    "ok": ("mediatopic.post",),
}


def target_of(network: str, request: FakeRequest) -> str:
    """The chat, wall, Page or group a publishing request is for."""
    params = request.params
    if network == "telegram":
        return f"chat:{params.get('chat_id', '?')}"
    if network == "vk":
        return f"wall:{params.get('owner_id', '?')}"
    if network == "facebook":
        parts = [p for p in request.path.split("/") if p]
        return f"page:{parts[1] if len(parts) > 1 else '?'}"
    return f"group:{params.get('gid', '?')}"


@dataclass
class Injected:
    network: str
    target: str
    kind: str
    text: str
    """What the faulted request was publishing (its text or caption), to trace a delivery back to its faults."""


@dataclass
class Chaos:
    """Random faults in the publishing requests of several fakes."""

    rng: random.Random
    probability: float = 0.4
    slow_seconds: float = 1.5
    per_target: int = 2
    per_target_on: dict[str, int] = field(default_factory=dict)
    """A different cap for some networks, by name."""
    spared: set[str] = field(default_factory=set)
    """Targets (as :func:`target_of` names them) that never get a fault."""
    injected: list[Injected] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)
    _untried: dict[str, list[str]] = field(default_factory=dict)
    _per_target: Counter[str] = field(default_factory=Counter)

    def attach(self, fake: FakeServer, network: str, *, method: str = "POST") -> None:
        """Start injecting faults into ``fake``'s publishing requests."""
        kinds = list(FAULTS[network])
        self.rng.shuffle(kinds)
        self._untried[network] = kinds
        keys = set(PUBLISH_KEYS[network])
        original_key = fake.fault_key
        original_next = fake._next_fault
        local = self._local

        def fault_key(request: FakeRequest) -> str:
            key = original_key(request)
            local.request = request
            return key

        def next_fault(key: str) -> Fault | None:
            scripted = original_next(key)
            request: FakeRequest | None = getattr(local, "request", None)
            local.request = None
            if scripted is not None or request is None or key not in keys or request.method != method:
                return scripted
            return self._draw(network, request)

        setattr(fake, "fault_key", fault_key)  # noqa: B010 - instance hooks, the fake's class is untouched
        setattr(fake, "_next_fault", next_fault)  # noqa: B010

    def _draw(self, network: str, request: FakeRequest) -> Fault | None:
        target = target_of(network, request)
        with self._lock:
            cap = self.per_target_on.get(network, self.per_target)
            if target in self.spared or self._per_target[target] >= cap:
                return None
            untried = self._untried[network]
            if not untried and self.rng.random() >= self.probability:
                return None
            kind = untried.pop() if untried else self.rng.choice(list(FAULTS[network]))
            self._per_target[target] += 1
            text = request.params.get("text") or request.params.get("message") or request.params.get("caption")
            self.injected.append(Injected(network, target, kind, text or _ok_text(request)))
        return FAULTS[network][kind](self.slow_seconds)

    def kinds(self, network: str) -> set[str]:
        """The kinds of fault injected so far on ``network``."""
        with self._lock:
            return {i.kind for i in self.injected if i.network == network}

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            counts: dict[str, Counter[str]] = {}
            for item in self.injected:
                counts.setdefault(item.network, Counter())[item.kind] += 1
        return {network: dict(c) for network, c in sorted(counts.items())}


def _ok_text(request: FakeRequest) -> str:
    """The text block of an OK ``mediatopic.post`` (its text hides inside the JSON ``attachment``)."""
    import json

    try:
        media: list[dict[str, Any]] = json.loads(request.params.get("attachment", ""))["media"]
    except (ValueError, KeyError, TypeError):
        return ""
    return "".join(str(b.get("text", "")) for b in media if isinstance(b, dict) and b.get("type") == "text")
