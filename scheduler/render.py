"""From a queued post to exactly what one channel receives, and checking it against the channel's limits.

The same :func:`render` runs when a post is queued (to validate it), in ``smm plan`` (to show it) and in the
daemon (to send it), so what was checked is what is sent. Rendering, in order:

1. the text: the post's variant for the channel's network (``--text-for``), else its main text;
2. UTM tagging (when the channel has it on): the link and every URL in the text, markup-aware
   (:mod:`scheduler.utm`);
3. the channel's branded hashtags, on a line of their own after the text, each only if the post stays within the
   channel's limits with it (those that do not fit are dropped, in order; a text that fits a Telegram caption stays
   a caption); a hashtag the text already has is not repeated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from adapters import Adapter, MediaFile, OutgoingPost
from adapters import adapter_class as _lookup
from adapters.telegram_markup import escape
from scheduler.config import ChannelConfig
from scheduler.media import StoredMedia, stored_path
from scheduler.utm import tag_text, tag_url, utm_params


class StoredPost(Protocol):
    """A stored post's content columns: a :class:`scheduler.models.Post`, or a row selecting the same columns."""

    @property
    def text(self) -> str: ...
    @property
    def link(self) -> str | None: ...
    @property
    def media(self) -> Sequence[dict[str, object]]: ...
    @property
    def category(self) -> str: ...
    @property
    def campaign(self) -> str | None: ...
    @property
    def utm_content(self) -> str | None: ...
    @property
    def variants(self) -> Mapping[str, str] | None: ...


@cache
def adapter_class(network: str) -> type[Adapter]:
    """The adapter class of ``network``, looked up once (a bulk import renders every row)."""
    return _lookup(network)


@dataclass(frozen=True)
class PostContent:
    """A post's content as stored, independent of any channel."""

    text: str
    link: str | None = None
    media: tuple[StoredMedia, ...] = ()
    category: str = "educational"
    extra: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None
    utm_content: str | None = None
    variants: Mapping[str, str] = field(default_factory=dict)
    """Per-network texts (``{"telegram": "..."}``) that replace ``text`` on that network's channels."""

    @classmethod
    def from_row(
        cls,
        text: str,
        link: str | None,
        media: Sequence[dict[str, object]],
        category: str,
        *,
        campaign: str | None = None,
        utm_content: str | None = None,
        variants: Mapping[str, str] | None = None,
    ) -> PostContent:
        return cls(
            text=text,
            link=link,
            media=tuple(StoredMedia.from_dict(m) for m in media),
            category=category,
            campaign=campaign,
            utm_content=utm_content,
            variants=dict(variants or {}),
        )

    @classmethod
    def from_post(cls, post: StoredPost) -> PostContent:
        """The content of a stored post, with everything render needs (campaign, variants, ...)."""
        return cls.from_row(
            post.text,
            post.link,
            post.media,
            post.category,
            campaign=post.campaign,
            utm_content=post.utm_content,
            variants=post.variants,
        )

    def text_for(self, network: str) -> str:
        """The text a channel of ``network`` gets before tagging and hashtags."""
        return self.variants.get(network, self.text)


def render(
    content: PostContent,
    channel: ChannelConfig,
    media_root: Path,
    *,
    key: str = "",
    publish_at: datetime | None = None,
) -> OutgoingPost:
    """What ``channel`` receives for ``content``."""
    media = (
        tuple(
            MediaFile(
                path=stored_path(media_root, m),
                mime=m.mime,
                size=m.size,
                width=m.width,
                height=m.height,
                name=m.name,
            )
            for m in content.media
        )
        if content.media
        else ()
    )
    text, link = content.text_for(channel.network), content.link
    if channel.utm.enabled:
        params = utm_params(channel.utm, channel.network, content.campaign, content.utm_content)
        text = tag_text(text, params, channel.parse_mode, channel.utm.domains)
        link = tag_url(link, params, channel.utm.domains) if link else link
    post = OutgoingPost(text=text, link=link, media=media, key=key, publish_at=publish_at)
    if channel.hashtags:
        post = _with_hashtags(post, channel)
    return post


def _with_hashtags(post: OutgoingPost, channel: ChannelConfig) -> OutgoingPost:
    """``post`` with as many of the channel's hashtags as fit, in order."""
    cls = adapter_class(channel.network)
    mode = channel.parse_mode
    present = {word.replace("\\", "").lower().rstrip(".,!?;:") for word in post.text.split()}
    wanted = [tag for tag in channel.hashtags if tag.lower() not in present]
    if not wanted:
        return post
    limit = _hashtag_limit(cls, post, channel.options)
    kept: list[str] = []
    for tag in wanted:
        candidate = _append(post.text, [*kept, tag], mode)
        if cls.sent_length(candidate, post.link, channel.options) <= limit:
            kept.append(tag)
    if not kept:
        return post
    return OutgoingPost(
        text=_append(post.text, kept, mode),
        link=post.link,
        media=post.media,
        key=post.key,
        publish_at=post.publish_at,
    )


def _append(text: str, tags: list[str], mode: str | None) -> str:
    line = " ".join(escape(tag, mode) for tag in tags)
    if not text.strip():
        return line
    return f"{text.rstrip()}\n\n{line}"


def _hashtag_limit(cls: type[Adapter], post: OutgoingPost, options: Mapping[str, Any]) -> int:
    """The longest text the post may have: a caption stays a caption, and nothing outgrows the network's limit."""
    caps = cls.capabilities
    if not post.media or caps.max_caption is None:
        return caps.max_text
    if caps.caption_overflow == "reject":
        return caps.max_caption
    if cls.sent_length(post.text, post.link, options) <= caps.max_caption:
        return caps.max_caption
    return caps.max_text


def problems(content: PostContent, channel: ChannelConfig, media_root: Path) -> list[str]:
    """Every reason ``content`` cannot be published on ``channel``, as messages naming the channel."""
    post = render(content, channel, media_root)
    cls = adapter_class(channel.network)
    where = f"channel {channel.name!r}"
    if channel.network in content.variants:
        where += f" (--text-for {channel.network})"
    return [f"{where}: {p.message}" for p in cls.validate(post, channel.options)]
