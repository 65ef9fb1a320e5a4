"""TelegramAdapter: validation, preview, publishing, the doctor check, the audience and deletion."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from adapters.base import (
    MB,
    Adapter,
    Capabilities,
    OutgoingPost,
    Problem,
    PublishResult,
    RateLimit,
    read_text,
    token_fingerprint,
)
from adapters.channel import show
from adapters.errors import AmbiguousError, AuthError, PermanentError, PublishError
from adapters.telegram.client import DEFAULT_API_URL, build_bot
from adapters.telegram.errors import telegram_errors
from adapters.telegram.reading import DELETE_WINDOW, TelegramReading
from adapters.telegram_markup import compose, markup_problems, normalize_parse_mode
from adapters.telegram_markup import visible_length as markup_length

if TYPE_CHECKING:
    from telegram import Bot, Message
    from telegram.request import BaseRequest

    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader
    from adapters.telegram.updates import CommentUpdates

_CHAT_ID = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+")
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class TelegramAdapter(TelegramReading, Adapter):
    """Posts to one Telegram channel (or group) as a bot that is an admin there with the right to post."""

    network = "telegram"
    title = "Telegram"
    api_title = "the Bot API"
    capabilities = Capabilities(
        max_text=4096,
        max_caption=1024,
        caption_overflow="split",
        max_media=10,
        media_types=frozenset(_EXTENSIONS),
        max_media_bytes=10 * MB,
        max_side_sum=10000,
        max_aspect_ratio=20,
        delete_window=DELETE_WINDOW,
    )
    secret_keys = ("token",)
    unsupported: ClassVar[Mapping[str, str]] = {
        "results": (
            "the Telegram Bot API gives a bot no view, reaction or forward counts of channel posts: smm records "
            "the channel's member count (getChatMemberCount) and no post results for Telegram"
        ),
        "comments": (
            "comments on a Telegram channel live in its linked discussion group, and the Bot API cannot read a "
            "chat's history (a bot only receives new messages as updates): set read_comments = true on the channel "
            "to read them from the bot's updates, if no webhook and no other program uses the bot and it is an "
            "admin of the discussion group, else read them in the Telegram app"
        ),
    }
    default_api_root = DEFAULT_API_URL

    def __init__(
        self,
        token: str,
        chat_id: str | int,
        *,
        api_url: str | None = None,
        parse_mode: str | None = None,
        timeout: float = 30.0,
        request: BaseRequest | None = None,
        bot: Bot | None = None,
        comments: CommentUpdates | None = None,
    ) -> None:
        """``request`` (a PTB request object) or ``bot`` (from :func:`build_bot`, shared by the channels of one bot:
        one connection pool and one getMe) may be passed in; the adapter then leaves them open on :meth:`aclose`."""
        if not token:
            raise ValueError("the Telegram bot token is empty")
        self._token = token
        self._chat_id: str | int = chat_id
        self._api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.parse_mode = normalize_parse_mode(parse_mode)
        self._timeout = timeout
        self._request = request
        self._bot: Bot | None = bot
        self._owns_bot = bot is None
        self._ready_lock = asyncio.Lock()
        self._limits: tuple[RateLimit, ...] | None = None
        #: The bot's comment updates (``read_comments = true``), shared by its channels; None: comments not read.
        self._comments = comments
        self._discussion: tuple[int, int, str | None] | None = None  # the channel's id, its group's, its username

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        chat = table.get("chat_id")
        chat_id: str | int
        if isinstance(chat, int) and not isinstance(chat, bool):
            chat_id = chat
        elif isinstance(chat, str) and _CHAT_ID.fullmatch(chat.strip()):
            chat = chat.strip()
            chat_id = int(chat) if chat.lstrip("-").isdigit() else chat
        elif chat is None:
            raise table.error("chat_id", 'is required: "@channelname" or a numeric id such as -1001234567890')
        else:
            raise table.error("chat_id", f'{show(chat)} is not "@channelname" or a numeric id')
        mode = table.choice("parse_mode", ("none", "HTML", "MarkdownV2"), "none")
        read_comments = table.get("read_comments")
        if read_comments is not None and not isinstance(read_comments, bool):
            raise table.error("read_comments", f"must be true or false, not {show(read_comments)}")
        return {
            "chat_id": chat_id,
            "parse_mode": None if mode == "none" else mode,
            "read_comments": bool(read_comments),
        }

    @classmethod
    def markup(cls, options: Mapping[str, Any]) -> str | None:
        mode = options.get("parse_mode")
        return str(mode) if mode else None

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> TelegramAdapter:
        token = channel.secrets["token"]
        # The channels of one bot share its Bot object: one connection pool, one getMe.
        bot = shared.get(
            ("telegram-bot", token, channel.api_root, channel.timeout),
            lambda: build_bot(token, api_url=channel.api_root, timeout=channel.timeout),
            lambda bot: bot.shutdown(),
        )
        comments = None
        if channel.options.get("read_comments"):
            from adapters.telegram.updates import CommentUpdates

            comments = shared.get(("telegram-updates", token, channel.api_root), CommentUpdates, _nothing_to_close)
        return cls(
            token,
            channel.options["chat_id"],
            api_url=channel.api_url,
            parse_mode=channel.options.get("parse_mode"),
            timeout=channel.timeout,
            bot=bot,
            comments=comments,
        )

    @classmethod
    def sent_length(cls, text: str, link: str | None, options: Mapping[str, Any]) -> int:
        # The link goes at the end of the text (compose), where it counts.
        return cls.visible_length(compose(text, link, options.get("parse_mode")), options)

    @property
    def chat_id(self) -> str | int:
        """The chat posted to (the new id after a migration to a supergroup)."""
        return self._chat_id

    # -- validation ------------------------------------------------------------------------------------------

    @classmethod
    def visible_length(cls, text: str, options: Mapping[str, Any]) -> int:
        try:
            mode = normalize_parse_mode(options.get("parse_mode"))
        except ValueError:
            mode = None
        return markup_length(text, mode)

    @classmethod
    def extra_problems(cls, post: OutgoingPost, options: Mapping[str, Any]) -> list[Problem]:
        try:
            mode = normalize_parse_mode(options.get("parse_mode"))
        except ValueError as exc:
            return [Problem(str(exc))]
        found = markup_problems(post.text, post.link, mode, cls.capabilities.max_text, media=bool(post.media))
        return [Problem(message) for message in found]

    @classmethod
    def preview(cls, post: OutgoingPost, options: Mapping[str, Any] | None = None) -> list[str]:
        """The Bot API calls :meth:`publish` makes for ``post``: a photo or an album (with the text as its caption
        when it fits), then a text message when there are no photos or the text is too long for a caption."""
        options = options or {}
        try:
            mode = normalize_parse_mode(options.get("parse_mode"))
        except ValueError:
            mode = None
        chat = options.get("chat_id", "the chat")
        text = compose(post.text, post.link, mode)
        length = markup_length(text, mode)
        long_text = length > (cls.capabilities.max_caption or 0)
        caption = None if long_text or not text.strip() else text
        style = f", parse_mode {mode}" if mode else ""
        linked = ", with the link on its own line at the end" if text != post.text else ""
        calls: list[str] = []
        names = ", ".join(item.path.name for item in post.media)
        about = f"caption of {length} characters{linked}{style}" if caption else "no caption"
        if len(post.media) == 1:
            calls.append(f"sendPhoto to {chat}: {names}, {about}")
        elif post.media:
            on_first = f"{about} on the first photo" if caption else about
            calls.append(f"sendMediaGroup to {chat}: album of {len(post.media)} photos ({names}), {on_first}")
        if not post.media or long_text:
            preview = f", link preview of {post.link}" if post.link else ""
            calls.append(f"sendMessage to {chat}: text of {length} characters{linked}{style}{preview}")
        return calls

    # -- publishing ------------------------------------------------------------------------------------------

    async def publish(self, post: OutgoingPost) -> PublishResult:
        from telegram import InputMediaPhoto, LinkPreviewOptions

        bot = await self._ready()
        text = compose(post.text, post.link, self.parse_mode)
        preview = LinkPreviewOptions(url=post.link) if post.link else None
        photos = [
            (await asyncio.to_thread(_read, item.path), _filename(item.path.name, item.mime)) for item in post.media
        ]
        length = await read_text(text, self.visible_length, text, {"parse_mode": self.parse_mode})
        long_text = length > (self.capabilities.max_caption or 0)
        caption = None if long_text or not text.strip() else text
        mode = self.parse_mode
        steps: list[tuple[str, Callable[[str | int], Awaitable[Sequence[Message]]]]] = []

        async def message(chat: str | int) -> Sequence[Message]:
            return [await bot.send_message(chat, text, parse_mode=mode, link_preview_options=preview)]

        async def photo(chat: str | int) -> Sequence[Message]:
            data, name = photos[0]
            return [await bot.send_photo(chat, data, caption=caption, parse_mode=mode, filename=name)]

        async def album(chat: str | int) -> Sequence[Message]:
            media = [InputMediaPhoto(data, filename=name) for data, name in photos]
            return await bot.send_media_group(chat, media, caption=caption, parse_mode=mode)

        if len(photos) == 1:
            steps.append(("the photo", photo))
        elif photos:
            steps.append((f"the album of {len(photos)} photos", album))
        if not photos or long_text:
            steps.append(("the text message", message))

        warnings: list[str] = []
        sent: list[Message] = []
        for what, step in steps:
            try:
                with self._errors(sending=True):
                    sent.extend(await self._migrating(step, warnings))
            except PublishError as exc:
                if not sent:
                    raise
                raise AmbiguousError(
                    f"partly published in {self._chat_id}: {steps[0][0]} was posted as message "
                    f"{sent[0].message_id} ({sent[0].link or 'no link'}), then {what} failed: {exc}. "
                    "Do not resend the whole post: post the rest by hand or delete the first part and retry"
                ) from exc
        more = tuple(str(m.message_id) for m in sent[1:])
        return PublishResult(str(sent[0].message_id), sent[0].link, tuple(warnings), more_ids=more)

    async def _migrating(
        self, step: Callable[[str | int], Awaitable[Sequence[Message]]], warnings: list[str]
    ) -> Sequence[Message]:
        from telegram.error import ChatMigrated

        try:
            return await step(self._chat_id)
        except ChatMigrated as exc:
            old, self._chat_id = self._chat_id, exc.new_chat_id
            warnings.append(
                f"Telegram chat {old} became supergroup {exc.new_chat_id}: set chat_id = {exc.new_chat_id} in the "
                "config (this process already posts there)"
            )
            return await step(self._chat_id)

    async def check(self) -> str:
        bot = await self._ready()
        with self._errors(sending=False):
            chat = await bot.get_chat(self._chat_id)
            member = await bot.get_chat_member(self._chat_id, bot.id)
        label = f"@{chat.username}" if chat.username else f"{chat.title or 'chat'} ({chat.id})"
        name = f"@{bot.username}"
        fix = f"add {name} to {label} as an admin with the right to post messages"
        status = member.status
        if status == "creator":
            return f"bot {name} can post in {label} (it is the owner)"
        if status == "administrator":
            if chat.type == "channel" and not getattr(member, "can_post_messages", False):
                raise AuthError(
                    f"bot {name} is an admin of {label} without the right to post messages: enable "
                    "'Post messages' in its admin rights"
                )
            return f"bot {name} can post in {label}"
        if status == "member" and chat.type != "channel":
            return f"bot {name} can post in {label} (as a member)"
        if status == "restricted" and chat.type != "channel" and getattr(member, "can_send_messages", False):
            return f"bot {name} can post in {label} (as a restricted member)"
        if status == "kicked":
            raise AuthError(f"bot {name} was banned from {label}: unban it and {fix}")
        raise AuthError(f"bot {name} cannot post in {label} (it is {status}): {fix}")

    def rate_limits(self) -> tuple[RateLimit, ...]:
        # Asked several times per post: built once per chat id (a group's id changes when it becomes a supergroup).
        if self._limits is None or self._limits[0].scope != f"telegram-chat:{self._chat_id}":
            self._limits = (
                RateLimit(f"telegram-chat:{self._chat_id}", 20, 60),
                RateLimit(f"telegram-bot:{token_fingerprint(self._token)}", 30, 1),
            )
        return self._limits

    async def aclose(self) -> None:
        if self._bot is not None and self._owns_bot:
            bot, self._bot = self._bot, None
            await bot.shutdown()

    # -- plumbing --------------------------------------------------------------------------------------------

    async def _ready(self) -> Bot:
        """The bot, built and initialized (getMe) on first use."""
        async with self._ready_lock:
            if self._bot is None:
                self._bot = build_bot(self._token, api_url=self._api_url, timeout=self._timeout, request=self._request)
            with self._errors(sending=False):
                await self._bot.initialize()
            return self._bot

    def _errors(self, *, sending: bool, unsure: str | None = None) -> AbstractContextManager[None]:
        return telegram_errors(lambda: self._chat_id, self._token, sending=sending, unsure=unsure)


def _filename(name: str, mime: str) -> str:
    """Telegram tells images apart by the upload's file extension."""
    extension = _EXTENSIONS.get(mime, ".jpg")
    stem, dot, suffix = name.rpartition(".")
    if dot and f".{suffix.lower()}" in (extension, ".jpeg" if extension == ".jpg" else extension):
        return name
    return f"{stem or name}{extension}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PermanentError(f"cannot read media file {path}: {exc.strerror or exc}") from exc


async def _nothing_to_close(_: CommentUpdates) -> None:
    """The comment updates hold no connection (the bot's is closed with it)."""
