"""VkAdapter: publishing to a VK community's wall; reading back after publishing is :mod:`adapters.vk.reading`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from adapters.base import (
    MB,
    Adapter,
    Capabilities,
    Comment,
    MediaFile,
    OutgoingPost,
    PostResults,
    PublishResult,
    Quota,
    RateLimit,
    token_fingerprint,
)
from adapters.channel import positive_id
from adapters.errors import AuthError, PermanentError, answer_shape
from adapters.vk.errors import SCOPES, UPLOAD_ERRORS, WALL_RIGHT, vk_errors
from adapters.vk.reading import VkReading
from adapters.vk.session import VK_API_ROOT, build_session

if TYPE_CHECKING:
    from pathlib import Path

    import requests

    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader

RPS_DELAY = 0.34  # vk_api's own pacing for a user token (3 requests/s)
MANAGER_LEVELS = {1: "a moderator", 2: "an editor", 3: "an administrator"}
#: The ``wall`` bit of account.getAppPermissions' mask (https://dev.vk.com/reference/access-rights).
WALL_BIT = 8192
DAILY_POSTS = 50
"""Wall posts a community takes per 24 hours before VK refuses more (error 214)."""


class VkAdapter(Adapter):
    """Posts to one VK community's wall as the community, with a user token of one of its admins or editors."""

    network = "vk"
    title = "VK"
    api_title = "the VK API"
    capabilities = Capabilities(
        max_text=16000,  # not documented; an assumption to check (see the API notes)
        max_media=10,
        media_types=frozenset({"image/jpeg", "image/png", "image/gif"}),
        max_media_bytes=50 * MB,
        max_side_sum=14000,
        max_aspect_ratio=20,
    )
    can_read_back = True
    idempotent_window = 3600.0
    supports_native_schedule = True
    secret_keys = ("token",)
    default_api_root = VK_API_ROOT

    def __init__(
        self,
        token: str,
        group_id: int,
        *,
        api_url: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        api_version: str = "5.199",
        rps_delay: float = RPS_DELAY,
    ) -> None:
        if not token:
            raise ValueError("the VK token is empty")
        self._token = token
        self.group_id = abs(int(group_id))
        self._api_url = api_url
        self._timeout = timeout
        self._session = session
        self._own_session = session is None
        self._api_version = api_version
        self._rps_delay = rps_delay
        self._vk: Any = None
        # vk_api sends one request at a time per client, holding it until the answer: reads back (results,
        # audience, comments) go through a client of their own, so a slow read never holds up a publish. The
        # scheduler paces both within the token's limit.
        self._reader: Any = None
        self._vk_lock = threading.Lock()
        self._reading = VkReading(self._read, self.group_id)
        self._reads = 0

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        return {"group_id": positive_id(table, "group_id")}

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> VkAdapter:
        # The channels of one API root share a requests session (its connection pool).
        session = shared.get(
            ("vk-session", channel.api_url, channel.timeout),
            lambda: build_session(channel.api_url, channel.timeout),
            lambda session: session.close(),
        )
        return cls(
            channel.secrets["token"],
            channel.options["group_id"],
            api_url=channel.api_url,
            timeout=channel.timeout,
            session=session,
        )

    @property
    def rps_delay(self) -> float:
        """Seconds vk_api keeps between two calls of this adapter (0 in tests)."""
        return self._rps_delay

    @rps_delay.setter
    def rps_delay(self, value: float) -> None:
        self._rps_delay = value
        for vk in (self._vk, self._reader):
            if vk is not None:
                vk.RPS_DELAY = value

    # -- the interface ---------------------------------------------------------------------------------------

    async def publish(self, post: OutgoingPost) -> PublishResult:
        return await asyncio.to_thread(self._publish, post)

    async def check(self) -> str:
        return await asyncio.to_thread(self._check)

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        return await asyncio.to_thread(self._find, post, since)

    async def scheduled_status(
        self, remote_id: str, post: OutgoingPost
    ) -> tuple[Literal["published", "scheduled", "missing"], PublishResult | None]:
        return await asyncio.to_thread(self._scheduled_status, int(remote_id), post)

    def _scheduled_status(
        self, remote_id: int, post: OutgoingPost
    ) -> tuple[Literal["published", "scheduled", "missing"], PublishResult | None]:
        # A postponed post that goes live may get a new id that carries ``postponed_id`` (the old one).
        message = self._message(post)[0]
        at = post.publish_at.timestamp() if post.publish_at is not None else 0
        for wall_filter, state in (("owner", "published"), ("postponed", "scheduled")):
            values = {"owner_id": -self.group_id, "count": 50, "filter": wall_filter}
            for item in self._call("wall.get", values)["items"]:
                ident = int(item["id"])
                same = remote_id in (ident, item.get("postponed_id"))
                if same or (item.get("text") == message and item.get("date", 0) >= at - 120):
                    return ("published" if state == "published" else "scheduled"), self._result(ident)
        return "missing", None

    async def cancel_scheduled(self, remote_id: str) -> None:
        values = {"owner_id": -self.group_id, "post_id": int(remote_id)}
        await asyncio.to_thread(self._call, "wall.delete", values)

    async def read_results(self, remote_id: str) -> PostResults:
        post_id = int(remote_id)
        with answer_shape("VK", "wall.getById"):
            return await asyncio.to_thread(self._reading.results, post_id)

    async def read_audience(self) -> int:
        with answer_shape("VK", "groups.getById"):
            return await asyncio.to_thread(self._reading.audience)

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        post_id = int(remote_id)
        with answer_shape("VK", "wall.getComments"):
            return await asyncio.to_thread(self._reading.comments, post_id, since)

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
        await asyncio.to_thread(self._reading.delete, int(remote_id))

    def rate_limits(self) -> tuple[RateLimit, ...]:
        return (RateLimit(f"vk-token:{token_fingerprint(self._token)}", 3, 1, unit="request"),)

    def requests_for(self, post: OutgoingPost) -> int:
        return 1 + 3 * len(post.media)

    def quotas(self) -> tuple[Quota, ...]:
        # VK answers error 214 "you can only add 50 posts a day" past this (seen since 2018; some sources say
        # 500): plan for the lower figure.
        return (Quota(f"vk-group:{self.group_id}", DAILY_POSTS, 86400.0),)

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            self._session.close()

    # -- the work, in a thread -------------------------------------------------------------------------------

    def _publish(self, post: OutgoingPost) -> PublishResult:
        attachments = [self._upload(item) for item in post.media]
        message, link = self._message(post)
        if link:
            attachments.append(link)
        values: dict[str, Any] = {"owner_id": -self.group_id, "from_group": 1, "message": message}
        if attachments:
            values["attachments"] = ",".join(attachments)
        if post.key:
            values["guid"] = post.key
        if post.publish_at is not None:
            at = post.publish_at if post.publish_at.tzinfo else post.publish_at.replace(tzinfo=UTC)
            values["publish_date"] = int(at.timestamp())
        response = self._call("wall.post", values, sending=True)
        return self._result(int(response["post_id"]))

    def _message(self, post: OutgoingPost) -> tuple[str, str | None]:
        """The message and the link attachment; with 10 photos there is no room left, so the link joins the text."""
        if not post.link or len(post.media) < self.capabilities.max_media or post.link in post.text:
            return post.text, post.link
        return (f"{post.text}\n{post.link}" if post.text else post.link), None

    def _upload(self, item: MediaFile) -> str:
        """Upload one photo to the wall and return its attachment; the whole flow is redone once on 118/121/129."""
        from vk_api.exceptions import ApiError

        with self._errors(f"uploading {item.path.name}"):
            try:
                data = item.path.read_bytes()
            except OSError as exc:
                raise PermanentError(f"cannot read media file {item.path}: {exc.strerror or exc}") from exc
            try:
                saved = self._upload_once(item, data)
            except ApiError as exc:
                if exc.code not in UPLOAD_ERRORS:
                    raise
                saved = self._upload_once(item, data)
        return f"photo{saved['owner_id']}_{saved['id']}"

    def _upload_once(self, item: MediaFile, data: bytes) -> dict[str, Any]:
        from vk_api.exceptions import ApiError

        vk = self._api()
        server = vk.method("photos.getWallUploadServer", {"group_id": self.group_id})
        filename = item.path.name if "." in item.path.name else f"{item.path.name}.jpg"
        # VK documents a single file in the field "photo"; VkUpload.photo_wall sends "file0", so we post it ourselves.
        answer = vk.http.post(server["upload_url"], files={"photo": (filename, data, item.mime)})
        answer.raise_for_status()
        uploaded = answer.json()
        if not uploaded.get("hash") or uploaded.get("photo") in (None, "", "[]"):
            reason = uploaded.get("error") or "the upload server kept no photo"
            raise ApiError(vk, "upload", {}, False, {"error_code": 129, "error_msg": f"Invalid photo: {reason}"})
        values = {"group_id": self.group_id, **{k: uploaded[k] for k in ("server", "photo", "hash")}}
        saved: list[dict[str, Any]] = vk.method("photos.saveWallPhoto", values)
        return saved[0]

    def _check(self) -> str:
        users = self._call("users.get", {})
        self._call("photos.getWallUploadServer", {"group_id": self.group_id})  # user-only: error 27 otherwise
        user_id = users[0]["id"] if users else "?"
        rights = self._call("account.getAppPermissions", {})
        if isinstance(rights, int) and not rights & WALL_BIT:
            raise AuthError(f"the token of user {user_id} has no wall right, so VK refuses wall.post: {WALL_RIGHT}")
        answer = self._call("groups.getById", {"group_id": self.group_id, "fields": "is_admin,admin_level"})
        groups = answer["groups"] if isinstance(answer, dict) else answer
        group = groups[0] if groups else {}
        name = group.get("screen_name") or f"club{self.group_id}"
        level = int(group.get("admin_level", 0)) if group.get("is_admin") else 0
        if level >= 2:
            return f"user {user_id} is {MANAGER_LEVELS[min(level, 3)]} of {name} and can post"
        role = MANAGER_LEVELS.get(level, "not a manager")
        raise AuthError(
            f"user {user_id} is {role} of {name}, who cannot post as the community: make them an editor or an "
            f"administrator of {name}, or use a token of one who is (scopes {SCOPES})"
        )

    def _find(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        message = self._message(post)[0]
        after = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp() - 120
        filters = ["owner", "postponed"] if post.publish_at is not None else ["owner"]
        for wall_filter in filters:
            values = {"owner_id": -self.group_id, "count": 50, "filter": wall_filter}
            for item in self._call("wall.get", values)["items"]:
                photos = [a for a in item.get("attachments", []) if a.get("type") == "photo"]
                if item.get("text") == message and len(photos) == len(post.media) and item.get("date", 0) >= after:
                    return self._result(int(item["id"]))
        return None

    def _result(self, post_id: int) -> PublishResult:
        return PublishResult(str(post_id), f"https://vk.com/wall-{self.group_id}_{post_id}")

    def _api(self, *, reader: bool = False) -> Any:
        """The vk_api client (``reader``: the one that reads back), built on first use."""
        with self._vk_lock:
            if self._vk is None:
                self._vk = self._client()
            if reader and self._reader is None:
                self._reader = self._client()
            return self._reader if reader else self._vk

    def _client(self) -> Any:
        import vk_api
        from jconfig.memory import MemoryConfig
        from vk_api.exceptions import TOO_MANY_RPS_CODE

        if self._session is None:
            self._session = build_session(self._api_url, self._timeout)
        vk = vk_api.VkApi(token=self._token, session=self._session, config=MemoryConfig, api_version=self._api_version)
        vk.RPS_DELAY = self._rps_delay
        # vk_api retries error 6 forever (sleep 0.5 s, recurse); raise it instead: the scheduler backs off.
        vk.error_handlers[TOO_MANY_RPS_CODE] = lambda error: None
        return vk

    def _call(self, method: str, values: dict[str, Any], *, sending: bool = False, unsure: str | None = None) -> Any:
        with self._errors(method, sending=sending, unsure=unsure):
            return self._api().method(method, values)

    def _read(self, method: str, values: dict[str, Any], *, sending: bool = False, unsure: str | None = None) -> Any:
        """:meth:`_call` for :class:`VkReading`: its reads on the reading client, a deletion (``sending``) on the
        publishing one."""
        if not sending:
            self._reads += 1
        with self._errors(method, sending=sending, unsure=unsure):
            return self._api(reader=not sending).method(method, values)

    @property
    def read_requests(self) -> int:
        """Requests of the reading client: a post's comments take a page per 100 and a read per long thread."""
        return self._reads

    def _errors(self, action: str, *, sending: bool = False, unsure: str | None = None) -> AbstractContextManager[None]:
        return vk_errors(action, token=self._token, group_id=self.group_id, sending=sending, unsure=unsure)
