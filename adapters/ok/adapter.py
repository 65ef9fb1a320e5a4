"""OkAdapter: publishing a topic to a group, reading topics back, the doctor check; every OK call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from adapters.base import (
    MB,
    Action,
    Adapter,
    Capabilities,
    MediaFile,
    OutgoingPost,
    PublishResult,
    RateLimit,
    token_fingerprint,
)
from adapters.channel import positive_id
from adapters.errors import (
    AmbiguousError,
    AuthError,
    PermanentError,
    TransientError,
)
from adapters.http import request_budget, shared_client, total_deadline
from adapters.ok.api import listed, mapping, parse, sign, topic_url
from adapters.ok.errors import ok_errors
from adapters.ok.reading import OkReading

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader

API_URL = "https://api.ok.ru"
#: Topics read back by find_published (the newest first).
READ_BACK_COUNT = 50
READ_BACK_SLACK = 120
POSTING_STATUSES = frozenset({"ADMIN", "MODERATOR"})
POSTING_ROLES = frozenset({"EDITOR", "MODERATOR", "SUPER_MODERATOR"})


class OkAdapter(OkReading, Adapter):
    """Publishes topics to one OK group as a user who administers, moderates or edits it.

    The client is shared by channels and rooted at the API root (``https://api.ok.ru``); the adapter does not
    own it. The upload URL handed out by ``photosV2.getUploadUrl`` is absolute and goes through the same client.
    """

    network = "ok"
    title = "OK"
    api_title = "the OK API"
    capabilities: ClassVar[Capabilities] = Capabilities(
        # OK publishes no text limit, only error 601 MEDIA_TOPIC_TEXT_LIMIT: 10 000 characters is our cap.
        max_text=10_000,
        # No documented photo count per topic (600 MEDIA_TOPIC_BLOCK_LIMIT counts blocks): 10, as elsewhere.
        max_media=10,
        media_types=frozenset({"image/jpeg", "image/png", "image/gif"}),
        max_media_bytes=10 * MB,  # undocumented for photosV2 uploads; our choice
        max_side_sum=30_000,  # no documented pixel limit either: our cap (a 24,000 x 6,000 panorama passes)
    )
    can_read_back = True
    secret_keys = ("application_secret", "token")
    default_api_root = API_URL

    def __init__(
        self,
        group_id: str,
        application_key: str,
        application_secret: str,
        token: str,
        *,
        client: httpx.AsyncClient,
    ) -> None:
        self.group_id = group_id
        self._app_key = application_key
        self._secret = application_secret
        self._token = token
        self._client = client

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        return {
            "group_id": str(positive_id(table, "group_id")),
            "application_key": table.string("application_key", required=True),
        }

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> OkAdapter:
        return cls(
            channel.options["group_id"],
            channel.options["application_key"],
            channel.secrets["application_secret"],
            channel.secrets["token"],
            client=shared_client(shared, channel.api_root, channel.timeout),
        )

    # -- the adapter interface ---------------------------------------------------------------------------

    async def publish(self, post: OutgoingPost) -> PublishResult:
        blocks: list[dict[str, Any]] = []
        if post.text:
            blocks.append({"type": "text", "text": post.text})
        if post.link:
            blocks.append({"type": "link", "url": post.link})
        if post.media:
            tokens = await self._upload(post.media)
            blocks.append({"type": "photo", "list": [{"id": token} for token in tokens]})
        attachment = json.dumps({"media": blocks}, ensure_ascii=False, separators=(",", ":"))
        params = {"type": "GROUP_THEME", "gid": self.group_id, "attachment": attachment}
        topic = await self._call("mediatopic.post", params, publishing=True)
        if not isinstance(topic, str | int) or not str(topic):
            raise AmbiguousError(f"OK accepted the topic for group {self.group_id} but returned no id: {topic!r}")
        return PublishResult(remote_id=str(topic), remote_url=topic_url(self.group_id, str(topic)))

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        answer = await self._call("mediatopic.getTopics", {"gid": self.group_id, "count": str(READ_BACK_COUNT)})
        topics = [t for t in mapping(answer).get("media_topics") or [] if isinstance(t, dict)]
        oldest = (since.timestamp() - READ_BACK_SLACK) * 1000
        matches = [
            topic
            for topic in topics
            if _topic_text(topic) == post.text and float(topic.get("created_ms") or 0) >= oldest
        ]
        if not matches:
            return None
        found = min(matches, key=lambda topic: float(topic.get("created_ms") or 0))
        return PublishResult(remote_id=str(found["id"]), remote_url=topic_url(self.group_id, str(found["id"])))

    async def check(self) -> str:
        me = mapping(await self._call("users.getCurrentUser", {}))
        uid, name = str(me.get("uid", "")), me.get("name") or me.get("first_name") or "?"
        granted = {
            perm: await self._call("users.hasAppPermission", {"ext_perm": perm}) in (True, "true")
            for perm in ("GROUP_CONTENT", "PHOTO_CONTENT")
        }
        if not granted["GROUP_CONTENT"]:
            raise AuthError(
                f"the OK user {name} ({uid}) has not granted GROUP_CONTENT to the application: request "
                "GROUP_CONTENT, PHOTO_CONTENT and VALUABLE_ACCESS from api-support@ok.ru, then authorize again"
            )
        info = await self._call("group.getInfo", {"uids": self.group_id, "fields": "uid,name"})
        groups = listed(info, "groups")
        if not groups:
            raise PermanentError(f"OK group {self.group_id} does not exist or is hidden from {name} ({uid})")
        rows = listed(await self._call("group.getUserGroupsByIds", {"group_id": self.group_id, "uids": uid}))
        row = next((r for r in rows if str(r.get("userId", r.get("uid", uid))) == uid), {})
        status = str(row.get("status", "not a member"))
        role = row.get("role")
        roles = {str(r) for r in (role if isinstance(role, list) else [role] if role else [])}
        if status not in POSTING_STATUSES and not roles & POSTING_ROLES:
            raise AuthError(
                f"the OK user {name} ({uid}) cannot post in group {self.group_id}: status {status}"
                f"{', role ' + '/'.join(sorted(roles)) if roles else ''}; make them an administrator, moderator "
                "or editor of the group"
            )
        photos = "granted" if granted["PHOTO_CONTENT"] else "NOT granted (posts with photos will fail)"
        return (
            f"ok group {self.group_id} ({groups[0].get('name')}): token and signature valid for {name} ({uid}) "
            f"(users.getCurrentUser); GROUP_CONTENT granted, PHOTO_CONTENT {photos} (users.hasAppPermission); "
            f"the group is readable (group.getInfo) and the user is {'/'.join(sorted(roles)) or status} of it "
            "(group.getUserGroupsByIds)"
        )

    def requests_for_action(self, action: Action) -> int:
        """Comments take a page of comments and one read of their authors' names."""
        return 2 if action == "comments" else 1

    def rate_limits(self) -> tuple[RateLimit, ...]:
        """One post per 5 s per token.

        OK publishes no numeric limit. Its anti-flood (error 8) and anti-spam (511/514, which need a person)
        counters are per user, so the scope is the token (as a fingerprint: scopes are logged) and channels
        sharing it share a lease; the pace is gentler than Facebook's because OK's blocks are opaque.
        """
        return (RateLimit(f"ok-token:{token_fingerprint(self._token)}", 1, 5.0),)

    def requests_for(self, post: OutgoingPost) -> int:
        """``mediatopic.post``, plus ``getUploadUrl`` and the upload when there are photos."""
        return 3 if post.media else 1

    # -- helpers -----------------------------------------------------------------------------------------

    async def _upload(self, media: tuple[MediaFile, ...]) -> list[str]:
        """Upload tokens of ``media``, in order (https://apiok.ru/dev/examples/photo_upload)."""
        answer = mapping(await self._call("photosV2.getUploadUrl", {"gid": self.group_id, "count": str(len(media))}))
        upload_url, photo_ids = answer.get("upload_url"), [str(i) for i in answer.get("photo_ids") or []]
        if not upload_url:
            raise TransientError(f"OK gave no upload URL for group {self.group_id}: {answer!r}")
        files = {f"pic{index}": await _file(item) for index, item in enumerate(media, start=1)}
        with ok_errors(self.group_id, (self._token, self._secret), publishing=False):
            async with total_deadline(request_budget(self._client)):
                response = await self._client.post(upload_url, files=files)
            photos = mapping(mapping(parse(response)).get("photos"))
        ids = photo_ids if set(photo_ids) == set(photos) else list(photos)
        tokens = [str(mapping(photos[i]).get("token") or "") for i in ids]
        if len(tokens) != len(media) or not all(tokens):
            raise TransientError(f"OK stored {len(tokens)} of {len(media)} photos for group {self.group_id}")
        return tokens

    async def _call(
        self,
        method: str,
        params: Mapping[str, str],
        *,
        publishing: bool = False,
        may_exist: str | None = None,
        doing: str = "posting",
    ) -> Any:
        fields = {"application_key": self._app_key, "format": "json", "method": method, **params}
        fields["sig"] = sign(fields, self._token, self._secret)
        fields["access_token"] = self._token
        with ok_errors(self.group_id, (self._token, self._secret), publishing, may_exist, doing):
            async with total_deadline(request_budget(self._client)):
                response = await self._client.post("/fb.do", data=fields)
            return parse(response)


def _topic_text(topic: dict[str, Any]) -> str:
    blocks = topic.get("media") or []
    return "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")


async def _file(item: MediaFile) -> tuple[str, bytes, str]:
    try:
        data = await asyncio.to_thread(item.path.read_bytes)
    except OSError as exc:
        raise PermanentError(f"cannot read media file {item.path}: {exc.strerror}") from exc
    return item.path.name, data, item.mime
