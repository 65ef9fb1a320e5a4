"""Comments on a Telegram channel's posts, from the bot's updates (``read_comments = true`` on the channel).

A channel's comments live in its linked discussion group: Telegram forwards each channel post there
(``is_automatic_forward``, its ``forward_origin`` naming the channel and the post's ``message_id``), and a comment is
a message of the group replying to that forward (``reply_to_message``) or, deeper in the thread, carrying its id as
``message_thread_id``. The Bot API cannot read a chat's history: a bot only gets new messages as updates, and only
those it may see (an admin of the group, or privacy mode off). :class:`CommentUpdates`, one per bot (the channels of
a bot share it), fetches them with ``getUpdates`` (never more than once per :data:`MIN_POLL` seconds) and keeps the
comments of each channel post for :data:`KEEP` seconds; an update is confirmed by the next ``getUpdates``, so
updates fetched before a restart come again (Telegram keeps them 24 hours). A webhook set on the bot, or another
program polling it, takes the updates: ``getUpdates`` answers 409 Conflict, and comments cannot be read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from adapters.base import Comment
from adapters.errors import NotSupported

if TYPE_CHECKING:
    from telegram import Bot, Message

MIN_POLL = 30.0
"""Seconds between two fetches of the bot's updates: the reads of a run's posts share one."""
KEEP = 15 * 86400.0
"""Seconds a comment is kept in memory after it was written (longer than ``[comments] days``' default)."""
PAGE = 100
"""Updates per getUpdates call (the Bot API's maximum)."""


class CommentUpdates:
    """The comments one bot has seen in the discussion groups of its channels, by (channel id, post id)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.offset: int | None = None
        self.polled = float("-inf")
        self.roots: dict[tuple[int, int], tuple[int, int]] = {}  # (group, forward id) -> (channel, post id)
        self.comments: dict[tuple[int, int], dict[int, Comment]] = {}
        self.lock = asyncio.Lock()

    async def poll(self, bot: Bot, links: dict[int, str | None]) -> None:
        """Fetch the new updates, unless fetched within :data:`MIN_POLL` s. ``links``: each channel id's public
        username (None: private), for the comments' links."""
        from telegram.error import Conflict

        async with self.lock:
            if self.monotonic() - self.polled < MIN_POLL:
                return
            while True:
                try:
                    updates = await bot.get_updates(
                        offset=self.offset, limit=PAGE, timeout=0, allowed_updates=["message"]
                    )
                except Conflict as exc:
                    raise NotSupported(
                        f"the bot's updates are taken elsewhere ({exc.message}): comments are read from them only by "
                        "a bot that no webhook and no other program uses"
                    ) from exc
                for update in updates:
                    self.offset = update.update_id + 1
                    if update.message is not None:
                        self._seen(update.message, links)
                if len(updates) < PAGE:
                    break
            self.polled = self.monotonic()
            self._forget(datetime.now(UTC).timestamp() - KEEP)

    def on(self, channel: int, post: int, since: datetime) -> list[Comment]:
        """The comments seen on ``post`` of ``channel`` written at or after ``since``, oldest first."""
        found = self.comments.get((channel, post), {}).values()
        return sorted((c for c in found if c.created_at >= since), key=lambda c: c.created_at)

    def _seen(self, message: Message, links: dict[int, str | None]) -> None:
        from telegram import MessageOriginChannel

        group = message.chat.id
        origin = message.forward_origin
        if message.is_automatic_forward and isinstance(origin, MessageOriginChannel):
            self.roots[(group, message.message_id)] = (origin.chat.id, origin.message_id)
            return
        replied = message.reply_to_message
        if replied is not None and replied.is_automatic_forward:
            self._seen(replied, links)
        root = message.message_thread_id or (replied.message_id if replied is not None else None)
        post = self.roots.get((group, root)) if root is not None else None
        if post is None:
            return
        channel, post_id = post
        author = message.sender_chat.title if message.sender_chat is not None else None
        if author is None and message.from_user is not None:
            author = message.from_user.full_name
        username = links.get(channel)
        if username:
            url: str | None = f"https://t.me/{username}/{post_id}?comment={message.message_id}"
        else:
            url = f"https://t.me/c/{str(channel).removeprefix('-100')}/{post_id}?comment={message.message_id}"
        self.comments.setdefault(post, {})[message.message_id] = Comment(
            str(message.message_id),
            author or "",
            message.text or message.caption or "",
            message.date.astimezone(UTC),
            url,
        )

    def _forget(self, before: float) -> None:
        for key, found in list(self.comments.items()):
            kept = {i: c for i, c in found.items() if c.created_at.timestamp() >= before}
            if kept:
                self.comments[key] = kept
            else:
                del self.comments[key]


async def discussion_note(bot: Bot, chat_id: str | int, *, reading: bool) -> str:
    """What ``smm doctor`` says about a channel's comments: its discussion group (getChat ``linked_chat_id``), the
    bot's place in it (getChatMember: it sees the comments as an admin, privacy mode hides them from a member) and,
    with ``reading`` (``read_comments = true``), whether its updates are free (getWebhookInfo)."""
    from telegram.error import BadRequest, Forbidden

    linked = (await bot.get_chat(chat_id)).linked_chat_id
    if linked is None:
        return "no discussion group is linked to the channel, so its posts take no comments"
    name = f"@{bot.username}"
    try:
        group = await bot.get_chat(linked)
        status = (await bot.get_chat_member(linked, bot.id)).status
    except (BadRequest, Forbidden):  # a private group the bot is not in: "chat not found"
        label, status = str(linked), "left"
    else:
        label = f"@{group.username}" if group.username else f"{group.title or 'group'} ({group.id})"
    admin = status in ("administrator", "creator")
    if status in ("left", "kicked"):
        place = f"bot {name} is not a member"
    elif admin or bot.can_read_all_group_messages:
        place = f"bot {name} is {'an admin' if admin else 'a member with privacy mode off'}"
    else:
        place = f"bot {name} is a member, but privacy mode hides the comments from it: make it an admin"
    if not reading:
        return (
            f"discussion group {label}: {place}; comments are not read (read_comments = true on the channel reads them)"
        )
    if status in ("left", "kicked"):
        return f"discussion group {label}: {place}: add it as an admin to read the comments"
    if not (admin or bot.can_read_all_group_messages):
        return f"discussion group {label}: {place} (or turn privacy mode off with @BotFather)"
    webhook = (await bot.get_webhook_info()).url
    if webhook:
        return f"discussion group {label}: a webhook set on bot {name} takes its updates: comments are not read"
    return f"discussion group {label}: comments are read from bot {name}'s updates"
