"""FacebookAdapter: publishing to a Page, reading the feed back, the doctor check; every Graph request."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from adapters.base import (
    MB,
    Action,
    Adapter,
    Capabilities,
    Comment,
    MediaFile,
    OutgoingPost,
    PostResults,
    PublishResult,
    RateLimit,
)
from adapters.channel import positive_id, show
from adapters.errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    ContentRejected,
    PermanentError,
    PublishError,
    TransientError,
    answer_shape,
)
from adapters.facebook.errors import graph_errors
from adapters.facebook.graph import Reply, unix, usage_backoff
from adapters.facebook.reading import FacebookReading
from adapters.http import request_budget, shared_client, total_deadline
from adapters.timefmt import format_local

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader

API_URL = "https://graph.facebook.com"
_GRAPH_VERSION = re.compile(r"v\d+\.\d+")
SCHEDULE_MIN = timedelta(minutes=10)
SCHEDULE_MAX = timedelta(days=30)
READ_BACK_SLACK = 120


class FacebookAdapter(Adapter):
    """Publishes to one Facebook Page with a Page access token.

    The client is shared by channels and rooted at the API root (``https://graph.facebook.com``); the adapter
    does not own it and :meth:`aclose` leaves it open.
    """

    network = "facebook"
    title = "Facebook"
    api_title = "the Graph API"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=63206,  # commonly cited, not documented [unverified]
        max_media=10,  # attached_media has no documented maximum; 10 is the common practical cap
        media_types=frozenset({"image/jpeg", "image/png", "image/gif", "image/bmp", "image/tiff"}),
        # Facebook advises "under 4 MB" (PNG under 1 MB against pixelation); we refuse bigger files up front.
        max_media_bytes=4 * MB,
        max_side_sum=30_000,  # no documented pixel limit: our cap (a 24,000 x 6,000 panorama passes)
    )
    can_read_back = True
    supports_native_schedule = True
    secret_keys = ("token",)
    default_api_root = API_URL

    def __init__(self, page_id: str, token: str, *, client: httpx.AsyncClient, api_version: str = "v25.0") -> None:
        self.page_id = page_id
        self._token = token
        self._client = client
        self._version = api_version
        self._reading = FacebookReading(self._call, page_id, api_version)

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        page_id = str(positive_id(table, "page_id"))
        version = table.string("api_version", "v25.0")
        assert version is not None
        if not _GRAPH_VERSION.fullmatch(version):
            raise table.error("api_version", f'{show(version)} is not a Graph API version such as "v25.0"')
        return {"page_id": page_id, "api_version": version}

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> FacebookAdapter:
        return cls(
            channel.options["page_id"],
            channel.secrets["token"],
            client=shared_client(shared, channel.api_root, channel.timeout),
            api_version=channel.options["api_version"],
        )

    # -- the adapter interface ---------------------------------------------------------------------------

    async def publish(self, post: OutgoingPost) -> PublishResult:
        schedule = self._schedule_fields(post.publish_at)
        message = self._message(post)
        backoffs: list[float | None] = []
        if not post.media:
            fields = {"message": message, **({"link": post.link} if post.link else {}), **schedule}
            reply = await self._call("POST", f"{self.page_id}/feed", data=fields, publishing=True)
            post_id = self._post_id(reply.body, "id")
        elif len(post.media) == 1 and not schedule:
            files = await _files("source", post.media[0])
            data = {"caption": message, "published": "true"}
            reply = await self._call("POST", f"{self.page_id}/photos", data=data, files=files, publishing=True)
            post_id = self._post_id(reply.body, "post_id")
        else:
            fields = {"message": message, **schedule}
            for index, item in enumerate(post.media):
                # Photos of a scheduled post must be uploaded as temporary, or they expire before it goes live.
                data = {"published": "false", **({"temporary": "true"} if schedule else {})}
                upload = await self._call(
                    "POST", f"{self.page_id}/photos", data=data, files=await _files("source", item)
                )
                backoffs.append(upload.backoff)
                if not upload.body.get("id"):
                    raise TransientError(f"Facebook stored photo {index + 1} for page {self.page_id} without an id")
                fields[f"attached_media[{index}]"] = json.dumps({"media_fbid": str(upload.body["id"])})
            reply = await self._call("POST", f"{self.page_id}/feed", data=fields, publishing=True)
            post_id = self._post_id(reply.body, "id")
        backoffs.append(reply.backoff)
        url, backoff = await self._permalink(post_id)
        backoffs.append(backoff)
        waits = [b for b in backoffs if b is not None]
        return PublishResult(remote_id=post_id, remote_url=url, backoff=max(waits) if waits else None)

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        message = self._message(post)
        fields = "id,message,created_time,permalink_url"
        edges = [("published_posts", {"fields": fields, "since": str(unix(since) - READ_BACK_SLACK), "limit": "100"})]
        if post.publish_at is not None:
            edges.append(("scheduled_posts", {"fields": fields + ",scheduled_publish_time", "limit": "100"}))
        for edge, params in edges:
            reply = await self._call("GET", f"{self.page_id}/{edge}", params=params)
            matches = [p for p in reply.body.get("data") or [] if (p.get("message") or "") == message]
            if matches:
                found = min(matches, key=lambda p: str(p.get("created_time", "")))
                post_id = str(found["id"])
                return PublishResult(post_id, found.get("permalink_url") or _fallback_url(post_id))
        return None

    async def scheduled_status(
        self, remote_id: str, post: OutgoingPost
    ) -> tuple[Literal["published", "scheduled", "missing"], PublishResult | None]:
        try:
            reply = await self._call("GET", remote_id, params={"fields": "is_published,permalink_url"})
        except ContentRejected:  # error 100/33: the object does not exist any more
            return "missing", None
        if reply.body.get("is_published"):
            return "published", PublishResult(remote_id, reply.body.get("permalink_url") or _fallback_url(remote_id))
        return "scheduled", None

    async def cancel_scheduled(self, remote_id: str) -> None:
        await self._call("DELETE", remote_id)

    async def check(self) -> str:
        me = (await self._call("GET", "me", params={"fields": "id,name"})).body
        if str(me.get("id")) != self.page_id:
            raise AuthError(
                f"this is not a Page token for page {self.page_id}: it belongs to {me.get('name')!r} "
                f"(id {me.get('id')}); use the Page access token from GET /{{user-id}}/accounts"
            )
        verified = f"facebook page {self.page_id} ({me.get('name')}): the token is a valid Page token for it (GET /me)"
        try:
            granted = (await self._call("GET", "me/permissions")).body.get("data")
        except (AuthError, TransientError):
            raise
        except PermanentError as exc:
            # Graph documents /permissions for user tokens; a Page token may not expose it.
            return f"{verified}; its permissions could not be read ({exc}), they are proven by the first publish"
        have = {p.get("permission") for p in granted or [] if p.get("status") == "granted"}
        missing = sorted({"pages_manage_posts", "pages_read_engagement"} - have)
        if missing:
            raise AuthError(
                f"the Page token for page {self.page_id} lacks {', '.join(missing)}: grant them to the app "
                "(Facebook Login for Business) and issue a new Page token"
            )
        return (
            f"{verified}; pages_manage_posts and pages_read_engagement are granted (GET /me/permissions); "
            "the CREATE_CONTENT task is not readable with a Page token and is proven by the first publish"
        )

    async def read_results(self, remote_id: str) -> PostResults:
        """Reactions, comments and shares from the post's fields (``pages_read_engagement``), views from its
        insights where the token may read them (``read_insights``; otherwise ``views`` is ``None`` with a note)."""
        with answer_shape("Facebook", "the post's fields and insights"):
            return await self._reading.results(remote_id)

    async def read_audience(self) -> int:
        with answer_shape("Facebook", "the Page's followers_count"):
            return await self._reading.audience()

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        with answer_shape("Facebook", "the post's comments"):
            return await self._reading.comments(remote_id, since)

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
        await self._reading.delete(remote_id)

    def requests_for_action(self, action: Action) -> int:
        """Results are the post's fields and its insights."""
        return 2 if action == "results" else 1

    def rate_limits(self) -> tuple[RateLimit, ...]:
        """One post per 2 s per Page.

        Facebook publishes no per-minute ceiling for Page posts; quotas are dynamic (usage headers, reported
        through :attr:`PublishResult.backoff` and ``retry_after``). This spacing only stops bursts that trip the
        feed-action (341) and spam (368) heuristics, and makes the Page the lease group.
        """
        return (RateLimit(f"facebook-page:{self.page_id}", 1, 2.0),)

    def requests_for(self, post: OutgoingPost) -> int:
        """The publishing requests plus the permalink read."""
        if len(post.media) > 1 or (post.media and post.publish_at is not None):
            return len(post.media) + 2
        return 2

    # -- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _message(post: OutgoingPost) -> str:
        """The text sent: Facebook makes a link preview only without media, so with media the link joins the text."""
        if post.media and post.link and post.link not in post.text:
            return f"{post.text}\n\n{post.link}" if post.text else post.link
        return post.text

    @staticmethod
    def _schedule_fields(publish_at: datetime | None) -> dict[str, str]:
        if publish_at is None:
            return {}
        when = publish_at if publish_at.tzinfo else publish_at.replace(tzinfo=UTC)
        # Facebook checks the window against its clock when the request arrives, so ours is the only reference.
        ahead = when - datetime.now(UTC)
        if not SCHEDULE_MIN <= ahead <= SCHEDULE_MAX:
            raise ContentRejected(
                f"Facebook schedules posts 10 minutes to 30 days ahead; {format_local(when, UTC, weekday=False)} is "
                f"{ahead.total_seconds() / 60:.0f} minutes away: publish it from the queue instead"
            )
        return {"published": "false", "scheduled_publish_time": str(unix(when))}

    def _post_id(self, body: dict[str, Any], key: str) -> str:
        value = body.get(key)
        if not value:
            raise AmbiguousError(f"Facebook accepted the post on page {self.page_id} but returned no {key}: {body}")
        return str(value)

    async def _permalink(self, post_id: str) -> tuple[str, float | None]:
        """The post's permalink; a failed read falls back to a canonical URL and never fails the publish."""
        try:
            reply = await self._call("GET", post_id, params={"fields": "permalink_url"})
        except PublishError:
            return _fallback_url(post_id), None
        return str(reply.body.get("permalink_url") or _fallback_url(post_id)), reply.backoff

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        publishing: bool = False,
        may_exist: str | None = None,
        doing: str = "posting",
    ) -> Reply:
        with graph_errors(self.page_id, self._token, publishing, may_exist, doing):
            async with total_deadline(request_budget(self._client)):
                response = await self._client.request(
                    method,
                    f"/{self._version}/{path}",
                    params=params,
                    data=data,
                    files=files,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code >= 400 or not isinstance(body, dict) or "error" in body:
                raise BadResponse(response.status_code, body, response.headers)
            return Reply(body, usage_backoff(response.headers))


async def _files(field: str, item: MediaFile) -> dict[str, tuple[str, bytes, str]]:
    try:
        data = await asyncio.to_thread(item.path.read_bytes)
    except OSError as exc:
        raise PermanentError(f"cannot read media file {item.path}: {exc.strerror}") from exc
    return {field: (item.path.name, data, item.mime)}


def _fallback_url(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"
