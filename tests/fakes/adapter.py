"""An in-memory adapter for dispatch tests: records what it was asked to publish and fails as scripted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from adapters.base import MB, Adapter, Capabilities, OutgoingPost, PublishResult, RateLimit
from adapters.building import ChannelSettings, SharedClients
from adapters.errors import PublishError, ReadBackUnsupported


class FakeAdapter(Adapter):
    """Publishes into a list. ``script`` holds errors (or None for success) consumed one per publish."""

    network = "outbox"
    title = "outbox"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=1000, max_media=4, media_types=frozenset({"image/png"}), max_media_bytes=MB
    )

    def __init__(
        self,
        *,
        can_read_back: bool = True,
        idempotent_window: float | None = None,
        limits: tuple[RateLimit, ...] = (),
    ) -> None:
        self.published: list[OutgoingPost] = []
        self.script: list[PublishError | Callable[[OutgoingPost], PublishError | None] | None] = []
        self.read_back: list[PublishError | None] = []
        self.attempts = 0
        self._limits = limits
        # Instance attributes shadow the class-level declarations for this fake.
        self.can_read_back = can_read_back  # type: ignore[misc]
        self.idempotent_window = idempotent_window  # type: ignore[misc]

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> FakeAdapter:
        return cls()

    async def publish(self, post: OutgoingPost) -> PublishResult:
        self.attempts += 1
        step = self.script.pop(0) if self.script else None
        if callable(step) and not isinstance(step, PublishError):
            step = step(post)
        if isinstance(step, PublishError) and not getattr(step, "applied", False):
            raise step
        self.published.append(post)
        if isinstance(step, PublishError):
            raise step
        return PublishResult(remote_id=str(len(self.published)), remote_url=f"fake://{len(self.published)}")

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        if not self.can_read_back:
            raise ReadBackUnsupported("fake cannot read back")
        if self.read_back:
            failure = self.read_back.pop(0)
            if failure is not None:
                raise failure
        for i, sent in enumerate(self.published, start=1):
            if sent.key == post.key:
                return PublishResult(remote_id=str(i), remote_url=f"fake://{i}")
        return None

    async def check(self) -> str:
        return "fake is fine"

    def rate_limits(self) -> tuple[RateLimit, ...]:
        return self._limits


def applied(error: PublishError) -> PublishError:
    """Mark ``error`` as raised after the post was stored (an accepted-then-dropped request)."""
    error.applied = True  # type: ignore[attr-defined]
    return error
