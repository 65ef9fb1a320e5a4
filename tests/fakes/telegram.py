"""A fake Telegram Bot API server that python-telegram-bot can talk to over real HTTP.

Point a bot at it with ``Bot(token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")`` (or
``TelegramAdapter(token, chat, api_url=fake.url)``). Requests are ``POST /bot<token>/<method>``, form-encoded with
nested objects as JSON strings, multipart when files are uploaded, exactly as PTB sends them. Answers are
``{"ok": true, "result": ...}`` or an HTTP status with ``{"ok": false, "error_code", "description", "parameters"}``.

What the fake knows: a set of valid bot tokens (the bot's id is the token's numeric prefix, as on Telegram), chats
(:class:`FakeChat`: channels by default, with the bot's status and its right to post), sequential message ids per
chat, and optional real flood limits (``limits=True``). Every message sent is recorded in :attr:`FakeTelegram.published`
as a dict with the keys ``chat_id, chat_username, method, message_id, media_group_id, text, caption, parse_mode,
link_preview_options, photo_count, photo_bytes, deleted, time``.

Helpers for tests: :func:`error_body` (a Bot API error for ``Fault.respond``), :func:`make_png` and
:func:`make_jpeg` (tiny valid images without Pillow) and :func:`image_info` (type and size of an image).
"""

from __future__ import annotations

import html
import json
import math
import re
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeRequest, FakeResponse, FakeServer

DEFAULT_TOKEN = "123456:TEST-TOKEN-not-real"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
BOT_RATE, CHAT_RATE, CHAT_PER = 30, 20, 60.0


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """The MIME type and pixel size of a PNG, JPEG, GIF or WebP image, or ``None`` when it is none of them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "image/webp", width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return "image/jpeg", width, height
            i += 2 + length
    return None


def make_png(width: int, height: int) -> bytes:
    """A valid black RGB PNG of this size (for tests: no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def make_jpeg(width: int, height: int) -> bytes:
    """A valid grey baseline greyscale JPEG of this size.

    Every 8x8 block is flat grey, so each block codes as DC difference 0 then end-of-block; one-symbol Huffman tables
    make that the two bits ``00`` per block.
    """

    def segment(marker: int, data: bytes) -> bytes:
        return bytes((0xFF, marker)) + struct.pack(">H", len(data) + 2) + data

    one_code = bytes((1,) + (0,) * 15) + b"\x00"
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    return b"".join(
        (
            b"\xff\xd8",
            segment(0xDB, b"\x00" + b"\x01" * 64),
            segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            segment(0xC4, b"\x00" + one_code),
            segment(0xC4, b"\x10" + one_code),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )


def visible_length(text: str, parse_mode: str | None) -> int:
    """A rough visible length (the fake does not fully parse markup), counted as the Bot API counts it: characters
    (tdlib utf8_length), without the spaces and line breaks at either end."""
    if parse_mode == "HTML":
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    elif parse_mode == "MarkdownV2":
        text = re.sub(r"\\(.)", r"\1", re.sub(r"(?<!\\)[*_~|`\[\]]|(?<!\\)\([^)]*\)", "", text))
    return len(text.replace("\r", "").strip(" \n"))


@dataclass
class FakeChat:
    """A chat the fake bot may post to; ``bot_status`` is creator, administrator, member, left or kicked."""

    id: int
    username: str | None = None
    title: str = "Test channel"
    type: str = "channel"
    bot_status: str = "administrator"
    can_post: bool = True
    can_delete: bool = True
    """An administrator's ``can_delete_messages``: it may delete any message of the chat."""
    migrated_to: int | None = None
    members: int = 850
    linked_chat_id: int | None = None
    """A channel's discussion group, or a discussion group's channel (getChat's ``linked_chat_id``)."""
    next_message_id: int = 1
    sent: deque[float] = field(default_factory=deque)


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


class FakeTelegram(FakeServer):
    """A fake Bot API with channels, sequential message ids, a record of what was published and scripted faults."""

    def __init__(
        self,
        tokens: tuple[str, ...] = (DEFAULT_TOKEN,),
        chats: list[FakeChat] | None = None,
        *,
        limits: bool = False,
        bot_username: str = "smm_test_bot",
    ) -> None:
        super().__init__()
        self.tokens: set[str] = set(tokens)
        self.limits = limits
        self.bot_username = bot_username
        self.chats: list[FakeChat] = chats if chats is not None else [FakeChat(-1001234567890, "testchannel")]
        self.published: list[dict[str, Any]] = []
        #: The bot's pending updates (``getUpdates``), oldest first; a webhook URL set on the bot, or None.
        self.updates: list[dict[str, Any]] = []
        self.webhook: str | None = None
        #: Privacy mode, as BotFather sets it by default (getMe says can_read_all_group_messages = not this).
        self.privacy_mode = True
        self._next_update = 700000001
        self._all_updates: list[dict[str, Any]] = []
        self._bot_sent: dict[str, deque[float]] = {}
        self._state = threading.RLock()
        self.route("/bot", self._handle_bot)

    # -- configuration ---------------------------------------------------------------------------------------

    def add_chat(self, chat_id: int, username: str | None = None, **kwargs: Any) -> FakeChat:
        """Add a chat (a channel unless ``type`` says otherwise) and return it."""
        chat = FakeChat(chat_id, username, **kwargs)
        with self._state:
            self.chats.append(chat)
        return chat

    def chat(self, ref: int | str) -> FakeChat:
        """The chat with this id or ``@username``."""
        found = self._find_chat(str(ref))
        if found is None:
            raise KeyError(ref)
        return found

    def revoke_token(self, token: str | None = None) -> None:
        """Make ``token`` (every token when ``None``) invalid: requests then get 401 Unauthorized."""
        with self._state:
            if token is None:
                self.tokens.clear()
            else:
                self.tokens.discard(token)

    def migrate_chat(self, old: int | str, new_id: int) -> FakeChat:
        """Turn a group into a supergroup with ``new_id``: sends to the old id then fail with migrate_to_chat_id."""
        with self._state:
            chat = self.chat(old)
            chat.migrated_to = new_id
            return self.add_chat(new_id, chat.username, title=chat.title, type="supergroup", bot_status=chat.bot_status)

    def forward_to_discussion(self, channel: int | str, post_id: int) -> int:
        """Telegram forwards channel post ``post_id`` to the channel's discussion group (an update the bot sees
        when it may read the group); returns the forward's message id in the group."""
        with self._state:
            source = self.chat(channel)
            assert source.linked_chat_id is not None, "the channel has no discussion group"
            group = self.chat(source.linked_chat_id)
            origin = {
                "type": "channel",
                "chat": self._chat_json(source),
                "message_id": post_id,
                "date": int(time.time()),
            }
            message = self._group_message(group, sender_chat=self._chat_json(source), text=f"post {post_id}")
            message |= {"is_automatic_forward": True, "forward_origin": origin}
            self._update({"message": message})
            return int(message["message_id"])

    def comment(
        self, group_id: int, forward: int, name: str, text: str, *, reply_to: int | None = None, user_id: int = 424242
    ) -> int:
        """User ``name`` comments in the discussion group: a reply to the channel post's ``forward`` (the update
        carries that message as ``reply_to_message``), or to another comment ``reply_to`` of its thread."""
        with self._state:
            group = self.chat(group_id)
            first, _, last = name.partition(" ")
            user = {"id": user_id, "is_bot": False, "first_name": first} | ({"last_name": last} if last else {})
            replied = next(
                u["message"] for u in self._all_updates if u["message"]["message_id"] == (reply_to or forward)
            )
            replied = {k: v for k, v in replied.items() if k != "reply_to_message"}
            message = self._group_message(group, **{"from": user}, text=text)
            message |= {"message_thread_id": forward, "reply_to_message": replied}
            self._update({"message": message})
            return int(message["message_id"])

    def _group_message(self, group: FakeChat, **content: Any) -> dict[str, Any]:
        message = {"message_id": group.next_message_id, "date": int(time.time()), "chat": self._chat_json(group)}
        group.next_message_id += 1
        return message | content

    def _update(self, content: dict[str, Any]) -> None:
        """An update of a group's message, which the bot gets only as a member, and with privacy mode on (bots'
        default, getMe's ``can_read_all_group_messages`` false) only as an admin: these messages are neither
        commands nor replies to the bot."""
        update = {"update_id": self._next_update} | content
        self._next_update += 1
        self._all_updates.append(update)
        group = self.chat(content["message"]["chat"]["id"])
        admin = group.bot_status in ("administrator", "creator")
        if admin or (group.bot_status == "member" and not self.privacy_mode):
            self.updates.append(update)

    def fault_key(self, request: FakeRequest) -> str:
        return request.path.rsplit("/", 1)[-1]

    # -- dispatch --------------------------------------------------------------------------------------------

    def _handle_bot(self, request: FakeRequest) -> FakeResponse:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if match is None:
            return _error(404, "Not Found")
        token, method = match.groups()
        if token not in self.tokens:
            return _error(401, "Unauthorized")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            with self._state:
                result = handler(token, request)
        except ApiError as exc:
            return _error(exc.status, exc.description, exc.parameters)
        return FakeResponse.json({"ok": True, "result": result})

    # -- methods ---------------------------------------------------------------------------------------------

    def _m_getMe(self, token: str, request: FakeRequest) -> dict[str, Any]:
        return self._bot_user(token) | {"can_join_groups": True, "can_read_all_group_messages": not self.privacy_mode}

    def _m_getChat(self, token: str, request: FakeRequest) -> dict[str, Any]:
        chat = self._target(request.params, posting=False)
        linked = {} if chat.linked_chat_id is None else {"linked_chat_id": chat.linked_chat_id}
        return (
            self._chat_json(chat)
            | linked
            | {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )

    def _m_getChatMember(self, token: str, request: FakeRequest) -> dict[str, Any]:
        chat = self._target(request.params, posting=False)
        user_id = int(request.params.get("user_id", "0"))
        bot = self._bot_user(token)
        if user_id != bot["id"]:
            return {"status": "left", "user": {"id": user_id, "is_bot": False, "first_name": "Someone"}}
        status = chat.bot_status
        member: dict[str, Any] = {"status": status, "user": bot}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = (
                "can_manage_chat can_manage_video_chats can_restrict_members can_promote_members "
                "can_change_info can_invite_users can_post_stories can_edit_stories can_delete_stories"
            )
            member |= {name: True for name in rights.split()} | {"can_be_edited": False, "is_anonymous": False}
            member["can_delete_messages"] = chat.can_delete
            if chat.type == "channel":
                member |= {"can_post_messages": chat.can_post, "can_edit_messages": chat.can_post}
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _m_sendMessage(self, token: str, request: FakeRequest) -> dict[str, Any]:
        params = request.params
        chat = self._target(params, posting=True)
        text = params.get("text", "")
        parse_mode = params.get("parse_mode") or None
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if visible_length(text, parse_mode) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        self._flood_check(token, chat, 1)
        options = json.loads(params["link_preview_options"]) if params.get("link_preview_options") else None
        message = self._new_message(chat, text=text)
        self._record(chat, "sendMessage", message, text=text, parse_mode=parse_mode, link_preview_options=options)
        return message

    def _m_sendPhoto(self, token: str, request: FakeRequest) -> dict[str, Any]:
        params = request.params
        chat = self._target(params, posting=True)
        upload = request.files.get("photo")
        if upload is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = params.get("caption") or None
        parse_mode = params.get("parse_mode") or None
        self._check_caption(caption, parse_mode)
        sizes = _photo_sizes(upload.data)
        self._flood_check(token, chat, 1)
        message = self._new_message(chat, caption=caption, photo=sizes)
        self._record(chat, "sendPhoto", message, caption=caption, parse_mode=parse_mode, photos=[upload.data])
        return message

    def _m_sendMediaGroup(self, token: str, request: FakeRequest) -> list[dict[str, Any]]:
        params = request.params
        chat = self._target(params, posting=True)
        media = json.loads(params.get("media", "[]"))
        if not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album: 2 to 10 allowed")
        files: list[bytes] = []
        for item in media:
            ref = str(item.get("media", ""))
            upload = request.files.get(ref.removeprefix("attach://")) if ref.startswith("attach://") else None
            if item.get("type") != "photo" or upload is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            self._check_caption(item.get("caption"), item.get("parse_mode"))
            files.append(upload.data)
        sizes = [_photo_sizes(data) for data in files]
        self._flood_check(token, chat, len(media))
        group_id = f"{chat.id}{chat.next_message_id}"
        messages = []
        for item, data, photo in zip(media, files, sizes, strict=True):
            caption = item.get("caption") or None
            message = self._new_message(chat, caption=caption, photo=photo, media_group_id=group_id)
            self._record(
                chat, "sendMediaGroup", message, caption=caption, parse_mode=item.get("parse_mode"), photos=[data]
            )
            messages.append(message)
        return messages

    def _m_getWebhookInfo(self, token: str, request: FakeRequest) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.webhook or "", "has_custom_certificate": False}
        return info | {"pending_update_count": len(self.updates)}

    def _m_getUpdates(self, token: str, request: FakeRequest) -> list[dict[str, Any]]:
        # As the Bot API: refused while a webhook is set; an offset confirms (drops) every update before it; at
        # most `limit` (1-100, default 100) updates of the kinds in `allowed_updates`, oldest first.
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                "to delete the webhook first",
            )
        params = request.params
        if params.get("offset"):
            offset = int(params["offset"])
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = max(1, min(100, int(params.get("limit") or 100)))
        allowed = json.loads(params["allowed_updates"]) if params.get("allowed_updates") else None
        found = [u for u in self.updates if allowed is None or any(kind in u for kind in allowed)]
        return found[:limit]

    def _m_getChatMemberCount(self, token: str, request: FakeRequest) -> int:
        return self._target(request.params, posting=False).members

    def _m_deleteMessage(self, token: str, request: FakeRequest) -> bool:
        chat = self._target(request.params, posting=False)
        message_id = int(request.params.get("message_id", "0"))
        record = self._live_message(chat, message_id)
        if record is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self._check_deletable(chat, record)
        record["deleted"] = True
        return True

    def _m_deleteMessages(self, token: str, request: FakeRequest) -> bool:
        # As the Bot API server (telegram-bot-api Client.cpp process_delete_messages_query, tdlib
        # MessagesManager::delete_messages): 1-100 ids; the messages not found are skipped (none found: True);
        # every message found is checked first, and one that may not be deleted fails the whole request.
        message_ids = _message_ids(request.params.get("message_ids", ""))
        chat = self._target(request.params, posting=False)
        found = [r for r in (self._live_message(chat, i) for i in dict.fromkeys(message_ids)) if r is not None]
        for record in found:
            self._check_deletable(chat, record)
        for record in found:
            record["deleted"] = True
        return True

    # -- helpers ---------------------------------------------------------------------------------------------

    def _live_message(self, chat: FakeChat, message_id: int) -> dict[str, Any] | None:
        for record in self.published:
            if record["chat_id"] == chat.id and record["message_id"] == message_id and not record["deleted"]:
                return record
        return None

    @staticmethod
    def _check_deletable(chat: FakeChat, record: dict[str, Any]) -> None:
        # https://core.telegram.org/bots/api#deletemessage: only within 48 hours, and in a channel only by an admin
        # that may post (its own messages) or delete (any message).
        admin = chat.bot_status == "administrator" and (chat.can_post or chat.can_delete)
        may = chat.bot_status == "creator" or admin
        if time.time() - record["time"] >= 48 * 3600 or (chat.type == "channel" and not may):
            raise ApiError(400, "Bad Request: message can't be deleted")

    def _bot_user(self, token: str) -> dict[str, Any]:
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        return {"id": bot_id, "is_bot": True, "first_name": "SMM test bot", "username": self.bot_username}

    def _find_chat(self, ref: str) -> FakeChat | None:
        for chat in self.chats:
            if ref == str(chat.id) or (chat.username and ref.lower() == f"@{chat.username}".lower()):
                return chat
        return None

    def _target(self, params: dict[str, str], *, posting: bool) -> FakeChat:
        chat = self._find_chat(params.get("chat_id", ""))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        kind = "channel" if chat.type == "channel" else "group"
        if chat.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if chat.bot_status == "left":
            if not posting and chat.username:
                return chat
            if not posting:
                raise ApiError(400, "Bad Request: chat not found")
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        cannot_post = chat.bot_status == "member" or (chat.bot_status == "administrator" and not chat.can_post)
        if posting and chat.type == "channel" and cannot_post:
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")
        return chat

    def _check_caption(self, caption: str | None, parse_mode: str | None) -> None:
        if caption and visible_length(caption, parse_mode) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")

    def _flood_check(self, token: str, chat: FakeChat, count: int) -> None:
        if not self.limits:
            return
        now = time.monotonic()
        bot_sent = self._bot_sent.setdefault(token, deque())
        for window, per, rate in ((bot_sent, 1.0, BOT_RATE), (chat.sent, CHAT_PER, CHAT_RATE)):
            while window and window[0] <= now - per:
                window.popleft()
            if len(window) + count > rate:
                retry = max(1, math.ceil(window[0] + per - now)) if window else 1
                raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        for _ in range(count):
            bot_sent.append(now)
            chat.sent.append(now)

    @staticmethod
    def _chat_json(chat: FakeChat) -> dict[str, Any]:
        data: dict[str, Any] = {"id": chat.id, "type": chat.type, "title": chat.title}
        if chat.username:
            data["username"] = chat.username
        return data

    def _new_message(self, chat: FakeChat, **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": chat.next_message_id,
            "date": int(time.time()),
            "chat": self._chat_json(chat),
        }
        if chat.type == "channel":
            message["sender_chat"] = self._chat_json(chat)
        chat.next_message_id += 1
        message.update({key: value for key, value in content.items() if value is not None})
        return message

    def _record(
        self,
        chat: FakeChat,
        method: str,
        message: dict[str, Any],
        *,
        text: str | None = None,
        caption: str | None = None,
        parse_mode: str | None = None,
        link_preview_options: dict[str, Any] | None = None,
        photos: list[bytes] | None = None,
    ) -> None:
        photos = photos or []
        self.published.append(
            {
                "chat_id": chat.id,
                "chat_username": chat.username,
                "method": method,
                "message_id": message["message_id"],
                "media_group_id": message.get("media_group_id"),
                "text": text,
                "caption": caption,
                "parse_mode": parse_mode,
                "link_preview_options": link_preview_options,
                "photo_count": len(photos),
                "photo_bytes": [len(data) for data in photos],
                "deleted": False,
                "time": time.time(),
            }
        )


def _photo_sizes(data: bytes) -> list[dict[str, Any]]:
    info = image_info(data)
    if info is None or info[0] == "image/gif":
        raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
    _, width, height = info
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
    if width + height > 10000 or max(width, height) > 20 * max(1, min(width, height)):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    unique = f"{len(data)}x{width}x{height}"
    return [
        {
            "file_id": f"AgAC-{unique}",
            "file_unique_id": unique,
            "width": width,
            "height": height,
            "file_size": len(data),
        }
    ]


def _message_ids(raw: str) -> list[int]:
    """deleteMessages' ``message_ids`` (a JSON array of 1-100 ids), refused with the Bot API server's errors."""
    if not raw:
        raise ApiError(400, "Bad Request: message identifiers are not specified")
    try:
        value = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Bad Request: can't parse message_ids JSON object") from None
    if not isinstance(value, list):
        raise ApiError(400, "Bad Request: expected an Array of message identifiers")
    if len(value) > 100:
        raise ApiError(400, "Bad Request: too many message identifiers specified")
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise ApiError(400, "Bad Request: message identifier must be a Number")
        try:
            number = int(str(item))  # as the server reads the number's text: 2.0 is refused
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse message identifier as a Number") from None
        if number <= 0:
            raise ApiError(400, "Bad Request: invalid message identifier specified")
        ids.append(number)
    if not ids:
        raise ApiError(400, "Bad Request: message identifiers are not specified")
    return ids


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> FakeResponse:
    return FakeResponse.json(error_body(status, description, **(parameters or {})), status=status)


def error_body(status: int, description: str, **parameters: Any) -> dict[str, Any]:
    """A Bot API error body, for ``Fault.respond(status, error_body(...))``."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body
