"""From a queued post to exactly what one channel receives, and checking it against the channel's limits.

The same :func:`render` runs when a post is queued (to validate it), in ``smm plan`` (to show it) and in the
daemon (to send it), so what was checked is what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters import MediaFile, OutgoingPost, adapter_class
from scheduler.config import ChannelConfig
from scheduler.media import StoredMedia


@dataclass(frozen=True)
class PostContent:
    """A post's content as stored, independent of any channel."""

    text: str
    link: str | None = None
    media: tuple[StoredMedia, ...] = ()
    category: str = "educational"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, text: str, link: str | None, media: list[Any], category: str) -> PostContent:
        return cls(
            text=text,
            link=link,
            media=tuple(StoredMedia.from_dict(m) for m in media),
            category=category,
        )


def render(
    content: PostContent,
    channel: ChannelConfig,
    media_root: Path,
    *,
    key: str = "",
    publish_at: datetime | None = None,
) -> OutgoingPost:
    """What ``channel`` receives for ``content``."""
    media = tuple(
        MediaFile(
            path=media_root / m.sha256[:2] / f"{m.sha256}{m.ext}",
            mime=m.mime,
            size=m.size,
            width=m.width,
            height=m.height,
        )
        for m in content.media
    )
    return OutgoingPost(text=content.text, link=content.link, media=media, key=key, publish_at=publish_at)


def problems(content: PostContent, channel: ChannelConfig, media_root: Path) -> list[str]:
    """Every reason ``content`` cannot be published on ``channel``, as messages naming the channel."""
    post = render(content, channel, media_root)
    cls = adapter_class(channel.network)
    return [f"channel {channel.name!r}: {p.message}" for p in cls.validate(post, channel.options)]
