"""After publishing on Telegram: the channel's audience, the comments of its discussion group (read from the bot's
updates, :mod:`adapters.telegram.updates`), and deletion. The Bot API gives no post results."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from adapters.base import Comment
from adapters.errors import NotSupported, PostTooOld

if TYPE_CHECKING:
    from telegram import Bot

    from adapters.base import Action
    from adapters.telegram.updates import CommentUpdates

#: https://core.telegram.org/bots/api#deletemessage: "A message can only be deleted if it was sent less than 48
#: hours ago." (deleteMessages applies the same limits to each message.)
DELETE_WINDOW = 48 * 3600.0


class TelegramReading:
    """The adapter's side after publishing, through its bot (``_ready``) and its error translation (``_errors``)."""

    _chat_id: str | int
    _comments: CommentUpdates | None
    """The bot's comment updates (``read_comments = true``), shared by its channels; None: comments not read."""
    _discussion: tuple[int, int, str | None] | None
    """The channel's id, its discussion group's and its username, once looked up."""

    if TYPE_CHECKING:

        async def _ready(self) -> Bot: ...

        def _errors(self, *, sending: bool, unsure: str | None = None) -> AbstractContextManager[None]: ...

        def _unsupported(self, action: Action) -> Exception: ...

    async def comments_check(self) -> str:
        """Whether the channel's comments can be read: its discussion group, the bot's place in it, its updates
        (see :func:`adapters.telegram.updates.discussion_note`)."""
        from adapters.telegram.updates import discussion_note

        bot = await self._ready()
        with self._errors(sending=False):
            return await discussion_note(bot, self._chat_id, reading=self._comments is not None)

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        """With ``read_comments = true``: the comments seen in the bot's updates on post ``remote_id`` (see
        :mod:`adapters.telegram.updates`); else :class:`NotSupported`."""
        if self._comments is None:
            raise self._unsupported("comments")
        bot = await self._ready()
        channel, _group, username = await self._discussion_group(bot)
        with self._errors(sending=False):
            await self._comments.poll(bot, {channel: username})
        return self._comments.on(channel, int(remote_id), since)

    async def _discussion_group(self, bot: Bot) -> tuple[int, int, str | None]:
        if self._discussion is None:
            with self._errors(sending=False):
                chat = await bot.get_chat(self._chat_id)
            if chat.linked_chat_id is None:
                raise NotSupported(f"no discussion group is linked to {self._chat_id}, so its posts take no comments")
            self._discussion = (chat.id, chat.linked_chat_id, chat.username)
        return self._discussion

    async def read_audience(self) -> int:
        bot = await self._ready()
        with self._errors(sending=False):
            return await bot.get_chat_member_count(self._chat_id)

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
        """Take every message of the post down: ``deleteMessage`` of a post of one message, ``deleteMessages`` of
        one of several (its album, the text after it: one request, which skips the messages already gone and
        deletes none when one may not be deleted). Refused before any request once the post is 48 hours old, which
        Telegram does not allow a bot."""
        from telegram.error import BadRequest

        ids = [int(remote_id), *(int(more) for more in more_ids)]
        one = len(ids) == 1
        what = f"message {remote_id}" if one else f"messages {', '.join(map(str, ids))}"
        age = (now - published_at).total_seconds()
        if age >= DELETE_WINDOW:
            raise PostTooOld(
                f"Telegram lets a bot delete a message only within 48 hours of posting; {what} in {self._chat_id} "
                f"{'was' if one else 'were'} posted {age / 3600:.0f} hours ago: delete {'it' if one else 'them'} "
                "by hand in the Telegram app"
            )
        bot = await self._ready()
        unsure = f"{what} may be deleted: check {self._chat_id} before deleting again"
        with self._errors(sending=True, unsure=unsure):
            if len(ids) > 1:  # at most 11 (an album of 10, a text), within the 100 deleteMessages takes
                await bot.delete_messages(self._chat_id, ids)
                return
            try:
                await bot.delete_message(self._chat_id, ids[0])
            except BadRequest as exc:
                if "message to delete not found" not in exc.message.lower():
                    raise
