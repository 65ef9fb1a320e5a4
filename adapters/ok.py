"""Odnoklassniki (OK.ru) group posts over the OK REST API, with httpx.

Every call is a signed form POST to ``/fb.do`` (https://apiok.ru/dev/methods/). Photos are uploaded through
``photosV2.getUploadUrl`` and a multipart POST of ``pic1..picN``; the topic itself is ``mediatopic.post`` with
``type=GROUP_THEME`` and a JSON ``attachment`` of media blocks.

The access token travels in the form body, never in a URL, so request logs cannot leak it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

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
    token_fingerprint,
)
from adapters.channel import ChannelSettings, OptionReader, SharedClients, positive_id
from adapters.errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
    answer_shape,
)
from adapters.http import parse_retry_after, request_budget, shared_client, total_deadline, transport_errors

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

API_URL = "https://api.ok.ru"
TRANSIENT_CODES = frozenset({1, 2, 30, 31, 9999})
CONTENT_CODES = frozenset({100, 454, 600, 601, 607})
PERMISSION_CODES = frozenset({10, 200, 210})
#: FLOOD_BLOCKED carries no wait; a minute lets OK's anti-flood window pass without stalling the queue.
FLOOD_BACKOFF = 60.0
#: LIMIT_REACHED is a method quota whose reset time OK does not publish: retry hourly rather than guess midnight.
QUOTA_BACKOFF = 3600.0
#: Topics read back by find_published (the newest first).
READ_BACK_COUNT = 50
READ_BACK_SLACK = 120
#: What mediatopic.getByIds returns for a topic's results (https://apiok.ru/dev/methods/rest/mediatopic/).
RESULT_FIELDS = (
    "media_topic.id,media_topic.like_summary,media_topic.reshare_summary,media_topic.discussion_summary,"
    "media_topic.views_count"
)
COMMENTS_PAGE = 100
NOT_FOUND = 300
POSTING_STATUSES = frozenset({"ADMIN", "MODERATOR"})
POSTING_ROLES = frozenset({"EDITOR", "MODERATOR", "SUPER_MODERATOR"})
_UNSIGNED = frozenset({"access_token", "session_key", "sig"})


def sign(params: Mapping[str, str], access_token: str, application_secret: str) -> str:
    """The ``sig`` of an OK API call: md5 of the sorted ``k=v`` pairs and the session secret, lowercase hex.

    ``session_secret_key = md5(access_token + application_secret)``; ``access_token``, ``session_key`` and
    ``sig`` itself are not signed. Values are signed exactly as sent (UTF-8).
    """
    secret = hashlib.md5((access_token + application_secret).encode()).hexdigest()
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params) if key not in _UNSIGNED)
    return hashlib.md5((pairs + secret).encode()).hexdigest()


class OkAdapter(Adapter):
    """Publishes topics to one OK group as a user who administers, moderates or edits it.

    The client is shared by channels and rooted at the API root (``https://api.ok.ru``); the adapter does not
    own it. The upload URL handed out by ``photosV2.getUploadUrl`` is absolute and goes through the same client.
    """

    network = "ok"
    title = "OK"
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
        return PublishResult(remote_id=str(topic), remote_url=self._topic_url(str(topic)))

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        answer = await self._call("mediatopic.getTopics", {"gid": self.group_id, "count": str(READ_BACK_COUNT)})
        topics = [t for t in _mapping(answer).get("media_topics") or [] if isinstance(t, dict)]
        oldest = (since.timestamp() - READ_BACK_SLACK) * 1000
        matches = [
            topic
            for topic in topics
            if _topic_text(topic) == post.text and float(topic.get("created_ms") or 0) >= oldest
        ]
        if not matches:
            return None
        found = min(matches, key=lambda topic: float(topic.get("created_ms") or 0))
        return PublishResult(remote_id=str(found["id"]), remote_url=self._topic_url(str(found["id"])))

    async def check(self) -> str:
        me = _mapping(await self._call("users.getCurrentUser", {}))
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
        groups = _listed(info, "groups")
        if not groups:
            raise PermanentError(f"OK group {self.group_id} does not exist or is hidden from {name} ({uid})")
        rows = _listed(await self._call("group.getUserGroupsByIds", {"group_id": self.group_id, "uids": uid}))
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

    async def read_results(self, remote_id: str) -> PostResults:
        with answer_shape("OK", "mediatopic.getByIds"):
            return await self._results(remote_id)

    async def _results(self, remote_id: str) -> PostResults:
        answer = await self._call("mediatopic.getByIds", {"topic_ids": remote_id, "fields": RESULT_FIELDS})
        topics = _listed(answer, "media_topics")
        topic = next((t for t in topics if str(t.get("id")) == remote_id), None)
        if topic is None:  # OK leaves a deleted topic out of the answer
            return PostResults(gone=True)

        def count(key: str, field: str = "count") -> int | None:
            value = _mapping(topic.get(key)).get(field) if key != "views_count" else topic.get(key)
            return value if isinstance(value, int) else None

        views = count("views_count")
        notes = () if views is not None else ("OK gave no views_count for this topic",)
        likes, reshares = count("like_summary"), count("reshare_summary")
        return PostResults(views, likes, reshares, count("discussion_summary", "comments_count"), notes=notes)

    async def read_audience(self) -> int:
        with answer_shape("OK", "group.getInfo"):
            return await self._audience()

    async def _audience(self) -> int:
        info = await self._call("group.getInfo", {"uids": self.group_id, "fields": "uid,members_count"})
        groups = _listed(info, "groups")
        members = groups[0].get("members_count") if groups else None
        if not isinstance(members, int):
            raise PermanentError(f"OK gave no members_count for group {self.group_id}")
        return members

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        """discussions.getComments of the group topic, then users.getInfo for the authors' names."""
        with answer_shape("OK", "discussions.getComments"):
            return await self._comments(remote_id, since)

    async def _comments(self, remote_id: str, since: datetime) -> list[Comment]:
        oldest = since.timestamp() * 1000
        rows: list[dict[str, Any]] = []
        anchor: str | None = None
        while True:
            params = {"discussionId": remote_id, "discussionType": "GROUP_TOPIC", "count": str(COMMENTS_PAGE)}
            page = _mapping(
                await self._call("discussions.getComments", params | ({"anchor": anchor} if anchor else {}))
            )
            rows += [c for c in _listed(page, "comments") if _comment_ms(c) >= oldest]
            anchor = page.get("anchor")
            if not page.get("has_more") or not anchor:
                break
        names: dict[str, str] = {}
        authors = sorted({str(c.get("author_id")) for c in rows if c.get("author_id")})
        if authors:
            people = await self._call("users.getInfo", {"uids": ",".join(authors), "fields": "uid,name"})
            names = {str(p.get("uid")): str(p.get("name", "")) for p in _listed(people, "users")}
        url = self._topic_url(remote_id)
        return sorted(
            (
                Comment(
                    str(c["id"]),
                    names.get(str(c.get("author_id")), ""),
                    str(c.get("text", "")),
                    datetime.fromtimestamp(_comment_ms(c) / 1000, UTC),
                    url,
                )
                for c in rows
            ),
            key=lambda comment: comment.created_at,
        )

    async def delete_post(self, remote_id: str, published_at: datetime, now: datetime) -> None:
        unsure = f"topic {remote_id} may be deleted; read it back before deleting again"
        try:
            await self._call(
                "mediatopic.deleteTopic",
                {"topic_id": remote_id, "gid": self.group_id},
                publishing=True,
                may_exist=unsure,
                doing="deleting",
            )
        except PermanentError as exc:
            if exc.code != NOT_FOUND:  # 300 NOT_FOUND: the topic is already gone
                raise

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

    def _topic_url(self, topic_id: str) -> str:
        return f"https://ok.ru/group/{self.group_id}/topic/{topic_id}"

    async def _upload(self, media: tuple[MediaFile, ...]) -> list[str]:
        """Upload tokens of ``media``, in order (https://apiok.ru/dev/examples/photo_upload)."""
        answer = _mapping(await self._call("photosV2.getUploadUrl", {"gid": self.group_id, "count": str(len(media))}))
        upload_url, photo_ids = answer.get("upload_url"), [str(i) for i in answer.get("photo_ids") or []]
        if not upload_url:
            raise TransientError(f"OK gave no upload URL for group {self.group_id}: {answer!r}")
        files = {f"pic{index}": await _file(item) for index, item in enumerate(media, start=1)}
        with self._translated(publishing=False):
            async with total_deadline(request_budget(self._client)):
                response = await self._client.post(upload_url, files=files)
            photos = _mapping(_mapping(_parse(response)).get("photos"))
        ids = photo_ids if set(photo_ids) == set(photos) else list(photos)
        tokens = [str(_mapping(photos[i]).get("token") or "") for i in ids]
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
        with self._translated(publishing, may_exist, doing):
            async with total_deadline(request_budget(self._client)):
                response = await self._client.post("/fb.do", data=fields)
            return _parse(response)

    @contextmanager
    def _translated(self, publishing: bool, may_exist: str | None = None, doing: str = "posting") -> Iterator[None]:
        """Every failure of an OK request becomes an :mod:`adapters.errors` class here, and only here."""
        unsure = may_exist or f"the topic may exist in group {self.group_id}; check first"
        try:
            with transport_errors("OK", publishing=publishing, may_exist=unsure, redact=self._redact):
                yield
        except BadResponse as exc:
            raise self._api_error(exc, publishing, may_exist or "the topic may exist", doing) from exc

    def _api_error(
        self, exc: BadResponse, publishing: bool, may_exist: str = "the topic may exist", doing: str = "posting"
    ) -> PublishError:
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("error_code")
        said = self._redact(f"OK error {code}: {body.get('error_msg')}")
        group = self.group_id
        if code is None:
            said = f"HTTP {exc.status} without an OK error body"
            if exc.status == 429:
                after = parse_retry_after(exc.headers.get("retry-after")) or FLOOD_BACKOFF
                return RateLimited(f"OK asked to slow down ({said})", retry_after=after, code=429)
            if publishing and (exc.status >= 500 or exc.status < 400):
                return AmbiguousError(f"OK failed while {doing} in group {group} ({said}); {may_exist}")
            if exc.status >= 500:
                return TransientError(f"OK failed temporarily ({said})")
            return PermanentError(f"OK refused the request ({said}): check api_url")
        if code == 8:
            return RateLimited(f"OK flood control blocked the token ({said})", retry_after=FLOOD_BACKOFF, code=code)
        if code == 11:
            return RateLimited(f"OK method quota reached ({said})", retry_after=QUOTA_BACKOFF, code=code)
        if code in TRANSIENT_CODES:
            return TransientError(f"OK failed temporarily ({said})", code=code)
        if code in (102, 103):
            return AuthError(
                f"the OK access token expired: get a new one (LONG_ACCESS_TOKEN lives 30 days and extends on use) "
                f"({said})",
                code=code,
            )
        if code in (104, 105):
            error = PermanentError(
                f"the request signature was rejected: a bug in smm-scheduler or a wrong application_secret ({said})",
                code=code,
            )
            error.needs_attention = True
            return error
        if code in PERMISSION_CODES:
            return AuthError(
                f"OK denied the permission to post in group {group} ({said}): the application needs GROUP_CONTENT, "
                "PHOTO_CONTENT and VALUABLE_ACCESS (granted by api-support@ok.ru) and the user must administer, "
                "moderate or edit the group",
                code=code,
            )
        if code in CONTENT_CODES:
            return ContentRejected(f"OK rejected the topic for group {group}: {said}", code=code)
        return PermanentError(f"OK refused the request for group {group} ({said})", code=code)

    def _redact(self, text: str) -> str:
        for secret in (self._token, self._secret):
            if secret:
                text = text.replace(secret, "<secret>")
        return text


def _parse(response: httpx.Response) -> Any:
    """The JSON answer of a successful call; errors come as HTTP 200 with ``error_code``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or body is None or (isinstance(body, dict) and "error_code" in body):
        raise BadResponse(response.status_code, body, response.headers)
    return body


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _listed(answer: Any, key: str = "memberships") -> list[dict[str, Any]]:
    """A list answer, whether bare (older API versions) or wrapped as ``{key: [...]}`` (current docs)."""
    rows = answer.get(key) if isinstance(answer, dict) else answer
    return [row for row in rows or [] if isinstance(row, dict)] if isinstance(rows, list) else []


def _comment_ms(comment: Mapping[str, Any]) -> float:
    """A comment's time in ms: ``date_ms``, else its ``date`` (``yyyy-MM-dd HH:mm:ss``; its zone is not documented,
    UTC is assumed)."""
    value = comment.get("date_ms")
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.strptime(str(comment.get("date")), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000
    except ValueError:
        return 0.0


def _topic_text(topic: dict[str, Any]) -> str:
    blocks = topic.get("media") or []
    return "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")


async def _file(item: MediaFile) -> tuple[str, bytes, str]:
    try:
        data = await asyncio.to_thread(item.path.read_bytes)
    except OSError as exc:
        raise PermanentError(f"cannot read media file {item.path}: {exc.strerror}") from exc
    return item.path.name, data, item.mime
