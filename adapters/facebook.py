"""Facebook Pages over the Graph API, with httpx.

Text and link posts go to ``POST /{page}/feed``; one photo to ``POST /{page}/photos`` (multipart ``source``);
several photos are uploaded unpublished and attached to a ``/feed`` post with ``attached_media[i]``. A post with
``publish_at`` is handed to Facebook's own scheduler (``published=false`` + ``scheduled_publish_time``).
Docs: https://developers.facebook.com/docs/pages-api/posts

The Page token travels in the ``Authorization: Bearer`` header only, never in a URL, so request logs cannot leak it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

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
from adapters.channel import ChannelSettings, OptionReader, SharedClients, positive_id, show
from adapters.errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    ContentRejected,
    DuplicateSuspected,
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

API_URL = "https://graph.facebook.com"
_GRAPH_VERSION = re.compile(r"v\d+\.\d+")
#: Seconds to slow a Page down once a usage header reports >= 90 % of a quota and gives no regain time.
USAGE_BACKOFF = 300.0
USAGE_THRESHOLD = 90.0
#: Graph throttling codes: https://developers.facebook.com/docs/graph-api/overview/rate-limiting
RATE_CODES = frozenset({4, 17, 32, 341, 613, 80001})
CONTENT_CODES = frozenset({100, 324, 1609005})
TOKEN_SUBCODES = {
    458: "the user removed the app",
    459: "the user's account hit a security checkpoint (log in on facebook.com to clear it)",
    460: "the user changed their password",
    463: "the token expired",
    464: "the user is not confirmed (confirm the account on facebook.com)",
    467: "the token is invalid or the user logged out",
}
#: The post insights metric of each figure, tried in order. Meta replaced the impressions metrics by views
#: (``post_media_view``) in late 2025; older Graph versions still answer ``post_impressions``. Metric names
#: appear nowhere else. https://developers.facebook.com/docs/graph-api/reference/insights
INSIGHT_METRICS: dict[str, tuple[str, ...]] = {"views": ("post_media_view", "post_impressions")}
#: A post's counts in one read; ``shares`` is left out by Graph when nobody shared the post.
RESULT_FIELDS = "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"
COMMENT_FIELDS = "id,from{name},message,created_time,permalink_url"
COMMENTS_PAGE = 100
SCHEDULE_MIN = timedelta(minutes=10)
SCHEDULE_MAX = timedelta(days=30)
READ_BACK_SLACK = 120


class _Reply(NamedTuple):
    body: dict[str, Any]
    backoff: float | None


def usage_backoff(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait according to the usage headers, or ``None`` when no quota is near its end.

    ``X-App-Usage``/``X-Page-Usage`` are ``{"call_count", "total_cputime", "total_time"}`` percentages;
    ``X-Business-Use-Case-Usage`` maps a business id to a list of those plus ``estimated_time_to_regain_access``
    (minutes).
    """
    worst, regain = 0.0, 0.0
    entries: list[Any] = []
    for name in ("x-app-usage", "x-page-usage", "x-business-use-case-usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if name == "x-business-use-case-usage" and isinstance(data, dict):
            entries.extend(item for value in data.values() if isinstance(value, list) for item in value)
        else:
            entries.append(data)
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key in ("call_count", "total_cputime", "total_time"):
            value = entry.get(key)
            if isinstance(value, int | float):
                worst = max(worst, float(value))
        value = entry.get("estimated_time_to_regain_access")
        if isinstance(value, int | float):
            regain = max(regain, float(value))
    if regain > 0:
        return regain * 60
    return USAGE_BACKOFF if worst >= USAGE_THRESHOLD else None


class FacebookAdapter(Adapter):
    """Publishes to one Facebook Page with a Page access token.

    The client is shared by channels and rooted at the API root (``https://graph.facebook.com``); the adapter
    does not own it and :meth:`aclose` leaves it open.
    """

    network = "facebook"
    title = "Facebook"
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
        edges = [("published_posts", {"fields": fields, "since": str(_unix(since) - READ_BACK_SLACK), "limit": "100"})]
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
            return await self._results(remote_id)

    async def _results(self, remote_id: str) -> PostResults:
        try:
            body = (await self._call("GET", remote_id, params={"fields": RESULT_FIELDS})).body
        except ContentRejected as exc:
            if _gone(exc):
                return PostResults(gone=True)
            raise
        views, notes = await self._views(remote_id)
        shares = body.get("shares")
        reposts = shares.get("count") if isinstance(shares, dict) else 0 if "shares" not in body else None
        return PostResults(
            views=views,
            likes=_total(body, "reactions"),
            reposts=reposts if isinstance(reposts, int) else None,
            comments=_total(body, "comments"),
            notes=notes,
        )

    async def _views(self, post_id: str) -> tuple[int | None, tuple[str, ...]]:
        names = INSIGHT_METRICS["views"]
        for metric in names:
            try:
                reply = await self._call("GET", f"{post_id}/insights", params={"metric": metric})
            except AuthError as exc:
                if exc.code in (190, 102):
                    raise
                return None, (
                    f"Facebook shows a post's views only to a token with read_insights and the ANALYZE task on page "
                    f"{self.page_id} ({exc})",
                )
            except ContentRejected as exc:
                if exc.code == 100 and not _gone(exc):  # a metric this Graph version does not know
                    continue
                raise
            for row in reply.body.get("data") or []:
                values = row.get("values") if isinstance(row, dict) else None
                value = values[-1].get("value") if isinstance(values, list) and values else None
                if row.get("name") == metric and isinstance(value, int):
                    return value, ()
            return None, (f"Facebook gave no {metric} for post {post_id}",)
        return None, (f"this Graph API version ({self._version}) knows none of the view metrics {', '.join(names)}",)

    async def read_audience(self) -> int:
        with answer_shape("Facebook", "the Page's followers_count"):
            return await self._audience()

    async def _audience(self) -> int:
        body = (await self._call("GET", self.page_id, params={"fields": "followers_count"})).body
        followers = body.get("followers_count")
        if not isinstance(followers, int):
            raise PermanentError(f"Facebook gave no followers_count for page {self.page_id}")
        return followers

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        with answer_shape("Facebook", "the post's comments"):
            return await self._comments(remote_id, since)

    async def _comments(self, remote_id: str, since: datetime) -> list[Comment]:
        found: list[Comment] = []
        after: str | None = None
        oldest = _unix(since)
        while True:
            params = {
                "fields": COMMENT_FIELDS,
                "filter": "stream",
                "order": "chronological",
                "since": str(oldest),
                "limit": str(COMMENTS_PAGE),
                **({"after": after} if after else {}),
            }
            body = (await self._call("GET", f"{remote_id}/comments", params=params)).body
            for row in body.get("data") or []:
                created = datetime.strptime(str(row.get("created_time")), "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
                if created.timestamp() < oldest:
                    continue
                author = row.get("from")
                found.append(
                    Comment(
                        str(row["id"]),
                        str(author.get("name", "")) if isinstance(author, dict) else "",
                        str(row.get("message", "")),
                        created,
                        row.get("permalink_url") or f"https://www.facebook.com/{row['id']}",
                    )
                )
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return found

    async def delete_post(self, remote_id: str, published_at: datetime, now: datetime) -> None:
        unsure = f"post {remote_id} may be deleted; read it back before deleting again"
        try:
            await self._call("DELETE", remote_id, publishing=True, may_exist=unsure, doing="deleting")
        except ContentRejected as exc:
            if not _gone(exc):
                raise

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
                f"Facebook schedules posts 10 minutes to 30 days ahead; {when:%Y-%m-%d %H:%M} UTC is "
                f"{ahead.total_seconds() / 60:.0f} minutes away: publish it from the queue instead"
            )
        return {"published": "false", "scheduled_publish_time": str(_unix(when))}

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
    ) -> _Reply:
        with self._translated(publishing, may_exist, doing):
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
            return _Reply(body, usage_backoff(response.headers))

    @contextmanager
    def _translated(self, publishing: bool, may_exist: str | None = None, doing: str = "posting") -> Iterator[None]:
        """Every failure of a Graph request becomes an :mod:`adapters.errors` class here, and only here
        (``may_exist``: what a lost answer to a ``publishing`` request may have done, and what to do; ``doing``: the
        request's work, "posting" or "deleting")."""
        unsure = may_exist or f"the post may exist on page {self.page_id}; check before resending"
        try:
            with transport_errors("Facebook", publishing=publishing, may_exist=unsure, redact=self._redact):
                yield
        except BadResponse as exc:
            raise self._api_error(exc, publishing, may_exist or "the post may exist", doing) from exc

    def _api_error(
        self, exc: BadResponse, publishing: bool, may_exist: str = "the post may exist", doing: str = "posting"
    ) -> PublishError:
        body = exc.body if isinstance(exc.body, dict) else {}
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code, sub = error.get("code"), error.get("error_subcode")
        trace = f", fbtrace_id {error['fbtrace_id']}" if error.get("fbtrace_id") else ""
        said = self._redact(f"Graph error {code}{f'/{sub}' if sub else ''}: {error.get('message')}{trace}")
        wait = usage_backoff(exc.headers)
        page = self.page_id
        if not error:
            said = f"HTTP {exc.status} without a Graph error body"
            if exc.status == 429:
                after = parse_retry_after(exc.headers.get("retry-after")) or wait or 60.0
                return RateLimited(f"Facebook asked to slow down ({said})", retry_after=after, code=429)
            if 400 <= exc.status < 500:
                return PermanentError(f"Facebook refused the request for page {page} ({said}): check api_url")
            if publishing:
                return AmbiguousError(f"Facebook answered {_WORK[doing]} on page {page} oddly ({said}); {may_exist}")
            return TransientError(f"Facebook failed temporarily ({said})", retry_after=wait)
        if code in (190, 102):
            reason = TOKEN_SUBCODES.get(sub if isinstance(sub, int) else 0, "the token is no longer valid")
            return AuthError(
                f"the Facebook Page token for page {page} must be renewed: {reason} ({said}); "
                "issue a new Page token from a long-lived user token (GET /{user-id}/accounts)",
                code=code,
            )
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            return AuthError(
                f"the token may not post on page {page} ({said}): the app needs pages_manage_posts and "
                "pages_read_engagement, and the user must have the CREATE_CONTENT task on the Page",
                code=code,
            )
        if code == 506:
            return DuplicateSuspected(f"Facebook says page {page} already has this message ({said})", code=code)
        if code == 368:
            blocked = PermanentError(
                f"Facebook blocked posting on page {page} for a policy violation ({said}); a person must review "
                "the Page in Meta Business Suite before anything is posted again",
                code=code,
            )
            blocked.needs_attention = True
            return blocked
        if code in CONTENT_CODES:
            return ContentRejected(f"Facebook rejected the post for page {page}: {said}", code=code)
        if publishing and (code in (1, 2) or exc.status >= 500):
            # php-graph-sdk#1141: code 1/subcode 99 came back and the link had been posted all the same.
            return AmbiguousError(f"Facebook failed while {doing} on page {page} ({said}); {may_exist}", code=code)
        if code in RATE_CODES:
            return RateLimited(f"Facebook throttled page {page} ({said})", retry_after=wait, code=code)
        if code in (1, 2) or error.get("is_transient") is True or exc.status >= 500:
            return TransientError(f"Facebook failed temporarily ({said})", retry_after=wait, code=code)
        return PermanentError(f"Facebook refused the request for page {page} ({said})", code=code)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


async def _files(field: str, item: MediaFile) -> dict[str, tuple[str, bytes, str]]:
    try:
        data = await asyncio.to_thread(item.path.read_bytes)
    except OSError as exc:
        raise PermanentError(f"cannot read media file {item.path}: {exc.strerror}") from exc
    return {field: (item.path.name, data, item.mime)}


_WORK = {"posting": "the post", "deleting": "the deletion"}
"""What a publishing request does, as its error messages name it."""


def _gone(exc: PublishError) -> bool:
    """Whether Graph said the object does not exist (any more): error 100 with subcode 33."""
    cause = exc.__cause__
    body = cause.body if isinstance(cause, BadResponse) and isinstance(cause.body, dict) else {}
    error = body.get("error")
    return isinstance(error, dict) and error.get("code") == 100 and error.get("error_subcode") == 33


def _total(body: Mapping[str, Any], edge: str) -> int | None:
    summary = (body.get(edge) or {}).get("summary") if isinstance(body.get(edge), dict) else None
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None


def _unix(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _fallback_url(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"
