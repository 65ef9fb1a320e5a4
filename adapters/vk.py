"""VK community walls through vk_api (synchronous, imported lazily, run in a thread).

A post is ``wall.post(owner_id=-group, from_group=1, message, attachments, guid)`` after each photo went through the
wall upload flow (photos.getWallUploadServer, a multipart POST to the returned upload_url, photos.saveWallPhoto).
``guid`` is the post's stable key, so publishing it again inside VK's window returns the same post; ``publish_date``
hands the post to VK as a postponed post. vk_api hard-codes ``https://api.vk.ru`` and sets no timeout: our
``requests`` session rewrites that root (``api_url``) and gives every request, uploads included, one total
deadline (the channel's ``timeout``, see :mod:`adapters.requests_deadline`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from adapters.channel import ChannelSettings, OptionReader, SharedClients, positive_id
from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
    answer_shape,
)
from adapters.http import parse_retry_after

if TYPE_CHECKING:
    from pathlib import Path

    import requests

VK_API_ROOT = "https://api.vk.ru"
RPS_DELAY = 0.34  # vk_api's own pacing for a user token (3 requests/s)
UPLOAD_ERRORS = (118, 121, 129)
SCOPES = "wall,photos,offline"
# After error 6 the token's one-second window still holds up to 3 earlier requests. Half a window bounds how late
# the token resumes after a throttle (within 0.5 s of its end) and costs at most two more error-6 answers a second.
ERROR_6_PAUSE = 0.5
MANAGER_LEVELS = {1: "a moderator", 2: "an editor", 3: "an administrator"}
#: The ``wall`` bit of account.getAppPermissions' mask (https://dev.vk.com/reference/access-rights).
WALL_BIT = 8192
#: dev.vk.com/method/wall.post: a user token's ``wall`` right "is issued in exceptional cases by a request to support".
WALL_RIGHT = (
    "VK grants a user token the wall right only on request to its support (devsupport@corp.vk.com, see "
    "https://dev.vk.com/method/wall.post): ask for it for your app, then issue a new token"
)


class CaptchaRequired(PermanentError):
    """VK wants a captcha solved: a person must log in as the token's user; the account may be flagged."""

    needs_attention = True


def build_session(api_url: str | None = None, timeout: float = 30.0) -> requests.Session:
    """A ``requests.Session`` for vk_api: ``https://api.vk.ru`` rewritten to ``api_url``, and each request ended
    by a total deadline of ``timeout`` seconds, whatever per-read timeouts it asks for.

    Other hosts (the upload servers VK names in ``upload_url``) are not rewritten.
    """
    import requests

    from adapters.requests_deadline import DeadlineAdapter, deadline

    root = api_url.rstrip("/") if api_url else None
    default_timeout = (min(timeout, 10.0), timeout)

    class VkSession(requests.Session):
        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            if root and isinstance(url, str) and (url == VK_API_ROOT or url.startswith(VK_API_ROOT + "/")):
                url = root + url[len(VK_API_ROOT) :]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = default_timeout
            with deadline(timeout):
                return super().request(method, url, *args, **kwargs)

    session = VkSession()
    for prefix in ("http://", "https://"):
        session.mount(prefix, DeadlineAdapter())
    return session


def _seconds_to_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, today.timestamp() + 86400 - now)


#: Comments read per wall.getComments call (VK's maximum).
COMMENTS_PAGE = 100

DAILY_POSTS = 50
"""Wall posts a community takes per 24 hours before VK refuses more (error 214)."""


class VkAdapter(Adapter):
    """Posts to one VK community's wall as the community, with a user token of one of its admins or editors."""

    network = "vk"
    title = "VK"
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
        self._vk_lock = threading.Lock()

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
        if self._vk is not None:
            self._vk.RPS_DELAY = value

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
            return await asyncio.to_thread(self._read_results, post_id)

    async def read_audience(self) -> int:
        with answer_shape("VK", "groups.getById"):
            return await asyncio.to_thread(self._read_audience)

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        post_id = int(remote_id)
        with answer_shape("VK", "wall.getComments"):
            return await asyncio.to_thread(self._read_comments, post_id, since)

    async def delete_post(self, remote_id: str, published_at: datetime, now: datetime) -> None:
        await asyncio.to_thread(self._delete, int(remote_id))

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

        with self._errors(f"uploading {item.path.name}", sending=False):
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

    def _post(self, post_id: int) -> dict[str, Any] | None:
        """The wall post as wall.getById gives it, or ``None`` when VK no longer has it (deleted)."""
        answer = self._call("wall.getById", {"posts": f"-{self.group_id}_{post_id}"})
        items = answer.get("items") if isinstance(answer, dict) else answer  # a bare list before API 5.199
        found = [item for item in items or [] if isinstance(item, dict) and int(item.get("id", 0)) == post_id]
        return found[0] if found else None

    def _read_results(self, post_id: int) -> PostResults:
        post = self._post(post_id)
        if post is None:
            return PostResults(gone=True)

        def count(key: str) -> int | None:
            value = post.get(key)
            number = value.get("count") if isinstance(value, dict) else None
            return int(number) if isinstance(number, int) else None

        views = count("views")
        notes = () if views is not None else ("VK gives no view count for this post (posts before 2017 have none)",)
        return PostResults(views, count("likes"), count("reposts"), count("comments"), notes=notes)

    def _read_audience(self) -> int:
        answer = self._call("groups.getById", {"group_id": self.group_id, "fields": "members_count"})
        groups = answer["groups"] if isinstance(answer, dict) else answer
        members = groups[0].get("members_count") if groups else None
        if not isinstance(members, int):
            raise PermanentError(f"VK gave no members_count for club{self.group_id} (a closed community hides it)")
        return members

    def _read_comments(self, post_id: int, since: datetime) -> list[Comment]:
        after = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        found: list[Comment] = []
        offset = 0
        while True:
            values = {
                "owner_id": -self.group_id,
                "post_id": post_id,
                "count": COMMENTS_PAGE,
                "offset": offset,
                "sort": "desc",
                "extended": 1,
            }
            page = self._call("wall.getComments", values)
            names = {
                int(p["id"]): f"{p.get('first_name', '')} {p.get('last_name', '')}".strip()
                for p in page.get("profiles") or []
            }
            names |= {-int(g["id"]): str(g.get("name", "")) for g in page.get("groups") or []}
            items = page.get("items") or []
            for item in items:
                if item.get("deleted") or int(item.get("date", 0)) < after:
                    continue
                author = int(item.get("from_id", 0))
                found.append(
                    Comment(
                        str(item["id"]),
                        names.get(author) or (f"id{author}" if author > 0 else f"club{-author}"),
                        str(item.get("text", "")),
                        datetime.fromtimestamp(int(item["date"]), UTC),
                        f"https://vk.com/wall-{self.group_id}_{post_id}?reply={item['id']}",
                    )
                )
            offset += len(items)
            oldest = min((int(item.get("date", 0)) for item in items), default=0)
            if len(items) < COMMENTS_PAGE or oldest < after:
                return sorted(found, key=lambda comment: comment.created_at)

    def _delete(self, post_id: int) -> None:
        values = {"owner_id": -self.group_id, "post_id": post_id}
        unsure = f"the post may be deleted: read wall-{self.group_id}_{post_id} back before deleting again"
        try:
            self._call("wall.delete", values, sending=True, unsure=unsure)
        except (AuthError, TransientError, AmbiguousError):
            raise
        except PermanentError:
            if self._post(post_id) is not None:  # VK answers error 100 for a post it no longer has
                raise

    def _result(self, post_id: int) -> PublishResult:
        return PublishResult(str(post_id), f"https://vk.com/wall-{self.group_id}_{post_id}")

    def _api(self) -> Any:
        """The vk_api client, built on first use."""
        with self._vk_lock:
            if self._vk is None:
                import vk_api
                from jconfig.memory import MemoryConfig
                from vk_api.exceptions import TOO_MANY_RPS_CODE

                if self._session is None:
                    self._session = build_session(self._api_url, self._timeout)
                vk = vk_api.VkApi(
                    token=self._token, session=self._session, config=MemoryConfig, api_version=self._api_version
                )
                vk.RPS_DELAY = self._rps_delay
                # vk_api retries error 6 forever (sleep 0.5 s, recurse); raise it instead: the scheduler backs off.
                vk.error_handlers[TOO_MANY_RPS_CODE] = lambda error: None
                self._vk = vk
            return self._vk

    def _call(self, method: str, values: dict[str, Any], *, sending: bool = False, unsure: str | None = None) -> Any:
        with self._errors(method, sending=sending, unsure=unsure):
            return self._api().method(method, values)

    # -- errors ----------------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str, *, sending: bool, unsure: str | None = None) -> Iterator[None]:
        """Translate vk_api and requests errors into :mod:`adapters.errors` (``sending``: the request changes the
        wall, so a lost answer is ambiguous; ``unsure`` says what may have happened and what to do)."""
        import requests
        from vk_api.exceptions import VkApiError

        try:
            yield
        except (VkApiError, requests.RequestException) as exc:
            raise self._translate(exc, action, sending, unsure) from exc

    def _translate(self, exc: Exception, action: str, sending: bool, unsure: str | None = None) -> PublishError:
        import requests
        import urllib3.exceptions
        from vk_api.exceptions import ApiError, ApiHttpError, Captcha

        club = f"club{self.group_id}"
        if not sending:
            unsure = "retry later"
        elif unsure is None:
            unsure = "the post may exist: reconcile before sending again"
        maybe = AmbiguousError if sending else TransientError
        if isinstance(exc, Captcha):
            return CaptchaRequired(
                f"VK asks for a captcha on {action}: a person must log in to vk.com as the token's user and solve it; "
                "the account may be flagged for automated activity"
            )
        if isinstance(exc, ApiHttpError):
            status = exc.response.status_code
            if status == 429:
                wait = parse_retry_after(exc.response.headers.get("Retry-After")) or 1.0
                return RateLimited(f"VK answered HTTP 429 to {action}; slowing down", retry_after=wait, code=status)
            if status >= 500:
                return TransientError(f"VK answered HTTP {status} to {action}; retry later", code=status)
            return PermanentError(f"VK answered HTTP {status} to {action}: check api_url", code=status)
        if isinstance(exc, ApiError):
            return self._api_error(exc.code, self._redact(str(exc.error.get("error_msg", ""))), action, club)
        if isinstance(exc, requests.ConnectTimeout):
            return TransientError(f"could not connect to VK in time for {action}; nothing was sent")
        if isinstance(exc, requests.ReadTimeout):
            return maybe(f"VK did not answer {action} in time: {unsure}")
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            return TransientError(f"the VK upload server answered HTTP {exc.response.status_code}; retry later")
        if isinstance(exc, requests.ConnectionError):
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
                return TransientError(f"could not connect to VK for {action}; nothing was sent")
            return maybe(f"the connection to VK dropped during {action}: {unsure}")
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return PermanentError(f"the VK URL for {action} is invalid: check api_url")
        if isinstance(exc, requests.RequestException):
            return maybe(f"VK gave a broken answer to {action} ({type(exc).__name__}): {unsure}")
        return PermanentError(f"vk_api failed on {action}: {self._redact(str(exc))}")

    def _api_error(self, code: int, said: str, action: str, club: str) -> PublishError:
        detail = f"(error {code}: {said})"
        rights = f"the token's user must be an admin or editor of {club} and the token needs the scopes {SCOPES}"
        if code in (1, 10):
            return TransientError(f"VK failed on {action} {detail}; retry later", code=code)
        if code == 6:
            return RateLimited(
                f"VK: too many requests per second on {action} {detail}", retry_after=ERROR_6_PAUSE, code=6
            )
        if code == 9:
            return RateLimited(
                f"VK flood control on {action} {detail}: too many similar actions; pausing for 10 minutes",
                retry_after=600.0,
                code=9,
            )
        if code == 29 or (code == 214 and "a day" in said.lower()):
            wait = _seconds_to_utc_midnight(time.time())
            return RateLimited(
                f"VK daily limit reached on {action} {detail}; resuming after 00:00 UTC", retry_after=wait, code=code
            )
        if code == 5:
            return AuthError(
                f"the VK token is invalid or expired {detail}: get a new user token of a community admin "
                f"(scopes {SCOPES})",
                code=5,
            )
        if code == 27:
            return AuthError(
                "a community token was given; wall.post needs a community admin's user token "
                f"(scopes {SCOPES}) {detail}; {WALL_RIGHT}",
                code=27,
            )
        if code in (7, 15) and action.startswith("wall."):
            return AuthError(f"VK refused {action} {detail}: {rights}; {WALL_RIGHT}", code=code)
        if code in (7, 15, 200, 203, 214):
            return AuthError(f"VK refused {action} {detail}: {rights}", code=code)
        if code == 17:
            return AuthError(
                f"VK wants the token's user validated {detail}: log in to vk.com as that user, pass "
                "the check, and issue a new token",
                code=17,
            )
        if code in (18, 28, 113):
            return AuthError(f"VK refused the token's user or app {detail}: issue a new token ({rights})", code=code)
        if code in UPLOAD_ERRORS:
            return ContentRejected(
                f"VK refused the photo twice while {action} {detail}: check the image file", code=code
            )
        if code == 222:
            return ContentRejected(
                f"{club} does not allow links in posts {detail}: remove the link or allow links "
                "in the community settings",
                code=222,
            )
        if code == 100:
            return ContentRejected(f"VK rejected a parameter of {action} {detail}", code=100)
        if code in (219, 220, 224, 225):
            return ContentRejected(f"VK refused the post {detail}", code=code)
        return PermanentError(f"VK refused {action} {detail}", code=code)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>")
