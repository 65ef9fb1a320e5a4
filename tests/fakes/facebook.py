"""A fake Facebook Graph API (Pages) speaking the real wire format.

Paths are versioned (``/v25.0/...``); the token is read from ``Authorization: Bearer`` (or ``access_token``).
Errors are HTTP 400 with ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` and every
answer carries the usage headers (``X-App-Usage``, ``X-Business-Use-Case-Usage``).

Fault keys (:meth:`FakeFacebook.fault_key`) are the edge: ``feed``, ``photos``, ``me``, ``permissions``,
``published_posts``, ``scheduled_posts``, ``insights``, ``comments``, ``page`` (GET /{page}), ``post``
(GET /{post-id}), ``delete``.

Results: ``GET /{post-id}?fields=reactions.summary(total_count).limit(0),comments.summary(...),shares`` gives the
counts (growing with the post's age, see :meth:`FakeFacebook.advance`), ``GET /{post-id}/insights?metric=...``
the metrics in :attr:`FakeFacebook.insight_metrics` (others are error 100), and ``GET /{page}?fields=
followers_count`` the Page's followers. Reading engagement needs ``pages_read_engagement`` and insights
``read_insights`` in :attr:`FakeFacebook.permissions` (error 10 otherwise, as Graph answers).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, engagement, grown

PAGE_PERMISSIONS = ("pages_manage_posts", "pages_read_engagement", "pages_show_list", "read_insights")
_VERSIONED = re.compile(r"^/v\d+\.\d+/(.+?)/?$")


class FakeFacebook(FakeServer):
    """Facebook Pages with one Page and its token; more with :meth:`add_page` and :meth:`add_user_token`.

    ``published`` records every post created, as dicts with the keys ``page``, ``id``, ``message``, ``link``,
    ``photos`` (count), ``attached_media`` (photo ids), ``scheduled_publish_time`` (unix or ``None``),
    ``published`` (bool), ``deleted`` (bool) and ``time`` (unix float).
    """

    def __init__(
        self,
        page_id: str = "1000000001",
        token: str = "EAAB-page-token-not-real",
        *,
        page_name: str = "Test Page",
        duplicate_window: float = 300.0,
        limits: bool = False,
        calls_per_hour: int = 200,
        limit_code: int = 80001,
    ) -> None:
        super().__init__()
        self.pages: dict[str, str] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.permissions: list[str] = list(PAGE_PERMISSIONS)
        self.published: list[dict[str, Any]] = []
        self.photos: dict[str, dict[str, Any]] = {}
        self.duplicate_window = duplicate_window
        self.limits = limits
        self.calls_per_hour = calls_per_hour
        self.limit_code = limit_code
        #: Percentages reported in the usage headers (``call_count``, ``total_time``, ``total_cputime``).
        self.usage: dict[str, int] = {"call_count": 1, "total_time": 1, "total_cputime": 1}
        self.regain_minutes = 0
        #: The post insights metrics this API version knows (Meta replaced post_impressions by post_media_view).
        self.insight_metrics: set[str] = {"post_media_view"}
        self.followers: dict[str, int] = {}
        #: Comments by post id: ``{"id", "name", "message", "time"}`` (see :meth:`add_comment`).
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self._offset = 0.0
        self._calls: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        self.add_page(page_id, token, page_name)
        self.page_id, self.token = page_id, token
        self.route("/", self._graph)

    # -- setup -----------------------------------------------------------------------------------------------

    def add_page(self, page_id: str, token: str, name: str = "Another Page") -> None:
        """A Page and a valid Page token for it."""
        self.pages[page_id] = name
        self.tokens[token] = {"kind": "page", "id": page_id, "name": name, "subcode": None}

    def add_user_token(self, token: str, user_id: str = "2000000001", name: str = "Test User") -> None:
        """A user access token: its /me is the user, and it cannot post as a Page."""
        self.tokens[token] = {"kind": "user", "id": user_id, "name": name, "subcode": None}

    def revoke_token(self, token: str | None = None, *, subcode: int = 460) -> None:
        """Make ``token`` (default: the first Page token) fail with error 190 and ``subcode`` (463 = expired)."""
        self.tokens[token or self.token]["subcode"] = subcode

    def set_usage(self, percent: int, *, regain_minutes: int = 0) -> None:
        """Report ``percent`` for every usage metric, and a regain time in the business-use-case header."""
        self.usage = dict.fromkeys(self.usage, percent)
        self.regain_minutes = regain_minutes

    def advance(self, seconds: float) -> None:
        """Age every post by ``seconds`` as far as its figures go (views, reactions and shares grow)."""
        self._offset += seconds

    def add_comment(self, post_id: str, name: str, message: str, *, at: float | None = None) -> str:
        """A comment by ``name`` on a post; returns its id (``<post-id>_<n>``, as Graph gives it)."""
        with self._state:
            comment_id = f"{post_id.split('_')[-1]}_{next(self._ids) + 7000000000}"
            when = time.time() if at is None else at
            self.comments.setdefault(post_id, []).append(
                {"id": comment_id, "name": name, "message": message, "time": when}
            )
            return comment_id

    def __enter__(self) -> FakeFacebook:
        return self.start()

    # -- routing -----------------------------------------------------------------------------------------------

    def fault_key(self, request: FakeRequest) -> str:
        match = _VERSIONED.match(request.path)
        parts = match.group(1).split("/") if match else [request.path]
        if request.method == "DELETE":
            return "delete"
        if len(parts) == 2:
            return "permissions" if parts[1] == "permissions" else parts[1]
        if parts[0] == "me":
            return "me"
        return "page" if parts[0] in self.pages else "post"

    def _graph(self, request: FakeRequest) -> FakeResponse:
        match = _VERSIONED.match(request.path)
        if not match:
            return self._error(400, 2500, "Unknown path components: the API version is missing", page=None)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        token = token or request.params.get("access_token", "")
        who = self.tokens.get(token)
        if who is None:
            return self._error(400, 190, "Invalid OAuth access token - Cannot parse access token", page=None)
        if who["subcode"]:
            text = "Error validating access token: the session has been invalidated"
            return self._error(400, 190, text, page=None, subcode=who["subcode"])
        page = who["id"] if who["kind"] == "page" else None
        if self.limits and page is not None:
            regain = self._over_budget(page)
            if regain is not None:
                text = "There have been too many calls to this Page account. Wait a bit and try again."
                return self._error(400, self.limit_code, text, page, regain=regain)
        parts = match.group(1).split("/")
        with self._state:
            return self._dispatch_graph(request, who, parts)

    def _dispatch_graph(self, request: FakeRequest, who: dict[str, Any], parts: list[str]) -> FakeResponse:
        page = who["id"] if who["kind"] == "page" else None
        node = who["id"] if parts[0] == "me" else parts[0]
        if request.method == "DELETE" and len(parts) == 1:
            return self._delete(node, page)
        if len(parts) == 1 and (node == who["id"] or node in self.pages):
            data: dict[str, Any] = {"id": node, "name": who["name"] if node == who["id"] else self.pages[node]}
            if node in self.pages and "followers_count" in request.params.get("fields", ""):
                data["followers_count"] = grown(self.followers.get(node, 2400), self._offset)
            return self._ok(data, page)
        if len(parts) == 1:
            return self._read_post(node, request, page)
        edge = parts[1]
        if request.method == "GET" and edge in ("insights", "comments") and node not in self.pages:
            return self._insights(node, request, page) if edge == "insights" else self._comments(node, request, page)
        if edge == "permissions" and parts[0] == "me":
            data = [{"permission": p, "status": "granted"} for p in self.permissions]
            return self._ok({"data": data}, page)
        if node not in self.pages:
            return self._error(400, 100, f"Unsupported request. Object with ID '{node}' does not exist", page, 33)
        if request.method == "POST" and edge in ("feed", "photos"):
            if page != node or "pages_manage_posts" not in self.permissions:
                text = (
                    "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts "
                    "as an admin with sufficient administrative permission"
                )
                return self._error(400, 200, text, page)
            return self._post_feed(node, request) if edge == "feed" else self._post_photo(node, request)
        if request.method == "GET" and edge in ("feed", "published_posts", "scheduled_posts"):
            return self._list(node, edge, request)
        return self._error(400, 100, f"(#100) Unknown edge {edge!r} or method {request.method}", page)

    # -- edges -------------------------------------------------------------------------------------------------

    def _post_feed(self, page: str, request: FakeRequest) -> FakeResponse:
        form = request.params
        message, link = form.get("message", ""), form.get("link")
        attached: list[str] = []
        for index in itertools.count():
            raw = form.get(f"attached_media[{index}]")
            if raw is None:
                break
            try:
                fbid = str(json.loads(raw)["media_fbid"])
            except (ValueError, KeyError, TypeError):
                return self._error(400, 100, f"(#100) Invalid attached_media[{index}]: {raw}", page)
            if self.photos.get(fbid, {}).get("page") != page or self.photos[fbid]["attached"]:
                return self._error(400, 100, f"(#100) attached_media: photo {fbid} cannot be attached", page)
            attached.append(fbid)
        if not (message or link or attached):
            return self._error(400, 100, "(#100) Missing message or attachment", page)
        scheduled, problem = self._scheduled(form)
        if problem:
            return self._error(400, 100, problem, page)
        if message and self._duplicate(page, message):
            return self._error(400, 506, "(#506) Duplicate status message", page)
        for fbid in attached:
            self.photos[fbid]["attached"] = True
        record = self._record(page, message, link, len(attached), attached, scheduled, form)
        return self._ok({"id": record["id"]}, page)

    def _post_photo(self, page: str, request: FakeRequest) -> FakeResponse:
        source = request.files.get("source")
        if source is None and "url" not in request.params:
            return self._error(400, 324, "(#324) Requires upload file", page)
        if source is not None and not source.data.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*")):
            return self._error(400, 324, "(#324) Missing or invalid image file", page)
        photo_id = str(next(self._ids) + 5000000000)
        published = request.params.get("published", "true") != "false"
        self.photos[photo_id] = {"page": page, "published": published, "attached": published, "time": time.time()}
        if not published:
            return self._ok({"id": photo_id}, page)
        caption = request.params.get("caption", "")
        if caption and self._duplicate(page, caption):
            return self._error(400, 506, "(#506) Duplicate status message", page)
        record = self._record(page, caption, None, 1, [photo_id], None, request.params)
        return self._ok({"id": photo_id, "post_id": record["id"]}, page)

    def _list(self, page: str, edge: str, request: FakeRequest) -> FakeResponse:
        since = float(request.params.get("since", "0") or 0)
        limit = int(request.params.get("limit", "25") or 25)
        scheduled = edge == "scheduled_posts"
        rows = [
            p
            for p in self.published
            if p["page"] == page
            and not p["deleted"]
            and self._waiting(p) == scheduled
            and (scheduled or p["published"] or p["scheduled_publish_time"] is not None)
            and p["time"] >= since
        ]
        rows.sort(key=lambda p: p["time"], reverse=True)
        data = [self._post_json(p) for p in rows[:limit]]
        return self._ok({"data": data, "paging": {}}, page)

    def _read_post(self, post_id: str, request: FakeRequest, page: str | None) -> FakeResponse:
        post = self._find(post_id)
        if post is None:
            return self._missing(post_id, page)
        data = self._post_json(post)
        fields = request.params.get("fields", "")
        if any(name in fields for name in ("reactions", "comments", "shares")):
            if "pages_read_engagement" not in self.permissions:
                return self._needs("pages_read_engagement", page)
            figures = engagement(time.time() + self._offset - post["time"], weight=2)
            count = len(self.comments.get(post_id, []))
            if "reactions" in fields:
                data["reactions"] = {
                    "data": [],
                    "summary": {"total_count": figures["likes"], "viewer_reaction": "NONE"},
                }
            if "comments" in fields:
                summary = {"order": "chronological", "total_count": count, "can_comment": True}
                data["comments"] = {"data": [], "summary": summary}
            if "shares" in fields and figures["reposts"]:  # Graph leaves the field out when nobody shared
                data["shares"] = {"count": figures["reposts"]}
        return self._ok(data, page)

    def _insights(self, post_id: str, request: FakeRequest, page: str | None) -> FakeResponse:
        post = self._find(post_id)
        if post is None:
            return self._missing(post_id, page)
        if "read_insights" not in self.permissions:
            return self._needs("read_insights", page)
        data = []
        for metric in request.params.get("metric", "").split(","):
            if metric not in self.insight_metrics:
                return self._error(400, 100, "(#100) The value must be a valid insights metric", page)
            value = engagement(time.time() + self._offset - post["time"], weight=2)["views"]
            data.append(
                {
                    "name": metric,
                    "period": "lifetime",
                    "values": [{"value": value}],
                    "title": "Lifetime Post Views",
                    "description": "Lifetime: the number of times your post was on screen.",
                    "id": f"{post_id}/insights/{metric}/lifetime",
                }
            )
        return self._ok({"data": data, "paging": {}}, page)

    def _comments(self, post_id: str, request: FakeRequest, page: str | None) -> FakeResponse:
        if self._find(post_id) is None:
            return self._missing(post_id, page)
        if "pages_read_engagement" not in self.permissions:
            return self._needs("pages_read_engagement", page)
        since = float(request.params.get("since", "0") or 0)
        limit = int(request.params.get("limit", "25") or 25)
        rows = sorted((c for c in self.comments.get(post_id, []) if c["time"] >= since), key=lambda c: c["time"])
        start = int(request.params.get("after", "0") or 0)
        chunk = rows[start : start + limit]
        page_number, number = post_id.split("_", 1)
        data = [
            {
                "id": c["id"],
                "from": {"name": c["name"], "id": str(abs(hash(c["name"])) % 10**15)},
                "message": c["message"],
                "created_time": datetime.fromtimestamp(c["time"], UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "permalink_url": f"https://www.facebook.com/{page_number}/posts/{number}?comment_id={c['id']}",
            }
            for c in chunk
        ]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
        if start + limit < len(rows):
            paging["next"] = f"{self.url}/v25.0/{post_id}/comments?after={start + len(chunk)}"
        return self._ok({"data": data, "paging": paging}, page)

    def _missing(self, object_id: str, page: str | None) -> FakeResponse:
        text = (
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation."
        )
        return self._error(400, 100, text, page, 33)

    def _needs(self, permission: str, page: str | None) -> FakeResponse:
        return self._error(400, 10, f"(#10) This endpoint requires the '{permission}' permission.", page)

    def _delete(self, post_id: str, page: str | None) -> FakeResponse:
        post = self._find(post_id)
        if post is None or post["page"] != page:
            return self._error(400, 100, f"(#100) Object with ID '{post_id}' cannot be deleted", page, 33)
        post["deleted"] = True
        return self._ok({"success": True}, page)

    # -- helpers -----------------------------------------------------------------------------------------------

    def _record(
        self,
        page: str,
        message: str,
        link: str | None,
        photos: int,
        attached: list[str],
        scheduled: int | None,
        form: dict[str, str],
    ) -> dict[str, Any]:
        record = {
            "page": page,
            "id": f"{page}_{next(self._ids) + 9000000000}",
            "message": message,
            "link": link,
            "photos": photos,
            "attached_media": attached,
            "scheduled_publish_time": scheduled,
            "published": form.get("published", "true") != "false",
            "deleted": False,
            "time": time.time(),
        }
        self.published.append(record)
        return record

    def _scheduled(self, form: dict[str, str]) -> tuple[int | None, str | None]:
        raw = form.get("scheduled_publish_time")
        if raw is None:
            return None, None
        if form.get("published") != "false":
            return None, "(#100) Scheduled posts must be created with published=false"
        ahead = int(raw) - time.time()
        if not 600 <= ahead <= 30 * 86400:
            return None, "(#100) The specified scheduled publish time is invalid."
        return int(raw), None

    def _duplicate(self, page: str, message: str) -> bool:
        now = time.time()
        return any(
            p["page"] == page
            and p["message"] == message
            and not p["deleted"]
            and now - p["time"] < self.duplicate_window
            for p in self.published
        )

    def _find(self, post_id: str) -> dict[str, Any] | None:
        return next((p for p in self.published if p["id"] == post_id and not p["deleted"]), None)

    @staticmethod
    def _waiting(post: dict[str, Any]) -> bool:
        """A scheduled post not yet due; Facebook publishes it by itself at its time."""
        return post["scheduled_publish_time"] is not None and post["scheduled_publish_time"] > time.time()

    @classmethod
    def _post_json(cls, post: dict[str, Any]) -> dict[str, Any]:
        page, number = post["id"].split("_", 1)
        data: dict[str, Any] = {
            "id": post["id"],
            "created_time": datetime.fromtimestamp(post["time"], UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "permalink_url": f"https://www.facebook.com/{page}/posts/{number}",
        }
        if post["message"]:
            data["message"] = post["message"]
        if post["scheduled_publish_time"] is not None:
            data["scheduled_publish_time"] = post["scheduled_publish_time"]
        data["is_published"] = bool(post["published"]) or (
            post["scheduled_publish_time"] is not None and not cls._waiting(post)
        )
        return data

    def _over_budget(self, page: str) -> int | None:
        """``None`` when the call fits the Page's hourly budget (and counts it), else minutes until it would."""
        now = time.time()
        with self._state:
            calls = self._calls.setdefault(page, deque())
            while calls and now - calls[0] > 3600:
                calls.popleft()
            if len(calls) >= self.calls_per_hour:
                return max(1, int((calls[0] + 3600 - now) // 60) + 1)
            calls.append(now)
            return None

    def _headers(self, page: str | None, regain: int | None = None) -> dict[str, str]:
        usage = dict(self.usage)
        if self.limits and page is not None:
            used = len(self._calls.get(page, ())) * 100 // max(1, self.calls_per_hour)
            usage = {k: max(v, used) for k, v in usage.items()}
        business = {
            page or self.page_id: [
                {"type": "pages", **usage, "estimated_time_to_regain_access": regain or self.regain_minutes}
            ]
        }
        return {"X-App-Usage": json.dumps(usage), "X-Business-Use-Case-Usage": json.dumps(business)}

    def _ok(self, data: dict[str, Any], page: str | None) -> FakeResponse:
        return FakeResponse.json(data, headers=self._headers(page))

    def _error(
        self,
        status: int,
        code: int,
        message: str,
        page: str | None,
        subcode: int | None = None,
        *,
        regain: int | None = None,
    ) -> FakeResponse:
        error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": f"FAKE{next(self._ids)}",
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return FakeResponse.json({"error": error}, status=status, headers=self._headers(page, regain))
