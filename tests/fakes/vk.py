"""A fake VK API server that vk_api can talk to over real HTTP.

vk_api hard-codes ``https://api.vk.ru``; point it here with the VK adapter's ``api_url=fake.url`` (its session
rewrites the root). Requests are ``POST /method/<name>``, form-encoded with ``v`` and ``access_token``; answers are
``{"response": ...}`` or ``{"error": {"error_code", "error_msg", "request_params"}}``, both with HTTP 200.
``photos.getWallUploadServer`` hands out an ``upload_url`` pointing back here (``/upload/wall``), which takes a
multipart file in the field ``photo`` and answers ``{server, photo, hash}`` like VK's upload servers.

Tokens are user tokens (mapped to a user id) or community tokens (mapped to a group id): a community token gets
error 27 on the user-only methods ``wall.post``, ``photos.*`` and ``account.*``; an unknown or revoked token gets
error 5. A user token holds the rights (scopes) in :attr:`FakeVk.rights` (all of :data:`RIGHTS` unless set): a
method whose right it lacks gets error 15 "Access denied: no access to call this method", as VK answers (dev.vk.com
grants ``wall`` only on request to VK's support, so a token without it is a real case), and
``account.getAppPermissions`` returns the rights as VK's bit mask.
Communities are :class:`FakeGroup`. ``wall.post`` honours ``guid``: the same guid on the same wall within
:attr:`FakeVk.guid_window` seconds returns the first post's id and creates nothing. Time comes from
:meth:`FakeVk.now`, which tests move with :meth:`FakeVk.advance`.

Comments (:meth:`FakeVk.add_comment`, replies with ``reply_to``) are listed by ``wall.getComments`` as VK lists
them: top-level comments with their ``thread`` (reply count, the first ``thread_items_count`` replies, at most 10,
and the ``can_post``/``show_reply_button``/``groups_can_post`` flags), a thread alone with ``comment_id``.

Every post created is recorded in :attr:`FakeVk.published` as a dict with the keys ``owner_id, from_group,
message, attachments, guid, publish_date, post_id, time, deleted``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, engagement, grown
from tests.fakes.telegram import image_info

USER_TOKEN = "vk1.a.USER-TOKEN-not-real"
COMMUNITY_TOKEN = "vk1.a.GROUP-TOKEN-fake"
USER_ID = 1001
GROUP_ID = 45
USER_ONLY = ("wall.post", "photos.getWallUploadServer", "photos.saveWallPhoto", "account.getAppPermissions")
#: VK's access rights and their bits (https://dev.vk.com/reference/access-rights).
RIGHTS = {"photos": 4, "wall": 8192, "offline": 65536, "groups": 262144}
#: The right each method needs with a user token.
METHOD_RIGHTS = {
    "wall.post": "wall",
    "wall.delete": "wall",
    "wall.getById": "wall",
    "wall.getComments": "wall",
    "photos.getWallUploadServer": "photos",
    "photos.saveWallPhoto": "photos",
}
MANAGER_LEVELS = {1: "moder", 2: "editor", 3: "admin"}
DAY = 86400.0


@dataclass
class FakeGroup:
    """A community: ``managers`` maps user ids to 1 (moderator), 2 (editor) or 3 (administrator)."""

    id: int
    name: str = "Test community"
    screen_name: str | None = None
    managers: dict[int, int] = field(default_factory=lambda: {USER_ID: 2})
    links_allowed: bool = True
    posts: deque[float] = field(default_factory=deque)
    members: int = 1200


class VkError(Exception):
    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def error_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """A VK error answer, for ``Fault.respond(200, error_body(...))``."""
    return {"error": {"error_code": code, "error_msg": message, "request_params": [], **extra}}


class FakeVk(FakeServer):
    """A fake VK API: communities, wall posts with guid dedupe, the wall photo upload flow, scripted faults."""

    def __init__(
        self,
        *,
        user_tokens: dict[str, int] | None = None,
        community_tokens: dict[str, int] | None = None,
        groups: list[FakeGroup] | None = None,
        limits: bool = False,
        guid_window: float = 3600.0,
    ) -> None:
        super().__init__()
        self.user_tokens = dict(user_tokens if user_tokens is not None else {USER_TOKEN: USER_ID})
        self.community_tokens = dict(community_tokens if community_tokens is not None else {COMMUNITY_TOKEN: GROUP_ID})
        self.groups = {group.id: group for group in (groups if groups is not None else [FakeGroup(GROUP_ID)])}
        self.limits = limits
        self.guid_window = guid_window
        #: The rights of user tokens that do not hold all of :data:`RIGHTS`.
        self.rights: dict[str, set[str]] = {}
        self.published: list[dict[str, Any]] = []
        self.uploads: dict[str, bytes] = {}
        self.photos: dict[str, dict[str, Any]] = {}
        #: Comments by (owner_id, post_id): ``{"id", "from_id", "date", "text"}`` (see :meth:`add_comment`).
        self.comments: dict[tuple[int, int], list[dict[str, Any]]] = {}
        #: Commenters' names by user id.
        self.people: dict[int, tuple[str, str]] = {USER_ID: ("Test", "User")}
        self._next_comment = 1
        self._offset = 0.0
        self._next_post = 1
        self._next_photo = 456239000
        self._guids: dict[tuple[int, str], tuple[int, float]] = {}
        self._calls: dict[str, deque[float]] = {}
        self._state = threading.RLock()
        self.route("/method/", self._handle_method)
        self.route("/upload/", self._handle_upload)

    # -- configuration ---------------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock: real time moved by :meth:`advance`."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (guid windows, daily limits, postponed posts)."""
        self._offset += seconds

    def add_comment(
        self,
        owner_id: int,
        post_id: int,
        from_id: int,
        text: str,
        *,
        at: float | None = None,
        reply_to: int | None = None,
    ) -> int:
        """A comment written on a post by a user (``from_id`` > 0) or a community (< 0), or a reply in the thread
        of comment ``reply_to``; returns its id."""
        with self._state:
            comment_id, self._next_comment = self._next_comment, self._next_comment + 1
            date = int(self.now() if at is None else at)
            self.comments.setdefault((owner_id, post_id), []).append(
                {"id": comment_id, "from_id": from_id, "date": date, "text": text, "parent": reply_to}
            )
            return comment_id

    def revoke_token(self, token: str | None = None) -> None:
        """Make ``token`` (every token when ``None``) invalid: calls then get error 5."""
        with self._state:
            for tokens in (self.user_tokens, self.community_tokens):
                for key in list(tokens):
                    if token is None or key == token:
                        del tokens[key]

    def fault_key(self, request: FakeRequest) -> str:
        if request.path.startswith("/upload/"):
            return "upload"
        return request.path.removeprefix("/method/")

    def posts(self, owner_id: int) -> list[dict[str, Any]]:
        """The live (not deleted) posts on a wall, oldest first."""
        return [p for p in self.published if p["owner_id"] == owner_id and not p["deleted"]]

    # -- dispatch --------------------------------------------------------------------------------------------

    def _handle_method(self, request: FakeRequest) -> FakeResponse:
        method = self.fault_key(request)
        params = request.params
        try:
            with self._state:
                handler = getattr(self, "_m_" + method.replace(".", "_"), None)
                if handler is None:
                    raise VkError(3, "Unknown method passed")
                token = params.get("access_token", "")
                user = self.user_tokens.get(token)
                if user is None and token not in self.community_tokens:
                    raise VkError(5, "User authorization failed: invalid access_token (4).")
                self._rate_check(token)
                if user is None and method in USER_ONLY:
                    raise VkError(27, "Group authorization failed: method is unavailable with group auth.")
                needed = METHOD_RIGHTS.get(method)
                if user is not None and needed and needed not in self.rights.get(token, RIGHTS.keys()):
                    raise VkError(15, "Access denied: no access to call this method")
                result = handler(user, params)
        except VkError as exc:
            shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
            body = {"error": {"error_code": exc.code, "error_msg": exc.message, "request_params": shown, **exc.extra}}
            return FakeResponse.json(body)
        return FakeResponse.json({"response": result})

    def _handle_upload(self, request: FakeRequest) -> FakeResponse:
        group = int(request.query.get("gid", "0"))
        upload = request.files.get("photo")
        with self._state:
            if upload is None:
                photo = "[]"
            else:
                key = f"u{len(self.uploads) + 1}"
                self.uploads[key] = upload.data
                photo = json.dumps([{"photo": key, "sizes": [], "kid": "fake"}])
        return FakeResponse.json({"server": 840123, "photo": photo, "hash": _hash(group, photo)})

    def _rate_check(self, token: str) -> None:
        if not self.limits:
            return
        now = time.monotonic()
        calls = self._calls.setdefault(token, deque())
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= 3:
            raise VkError(6, "Too many requests per second")
        calls.append(now)

    # -- methods ---------------------------------------------------------------------------------------------

    def _m_account_getAppPermissions(self, user: int | None, params: dict[str, str]) -> int:
        token = params.get("access_token", "")
        return sum(bit for name, bit in RIGHTS.items() if name in self.rights.get(token, RIGHTS.keys()))

    def _m_users_get(self, user: int | None, params: dict[str, str]) -> list[dict[str, Any]]:
        if user is None:
            return []
        return [{"id": user, "first_name": "Test", "last_name": "User", "can_access_closed": True}]

    def _m_groups_getById(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        ids = (params.get("group_ids") or params.get("group_id") or "").split(",")
        found = [self._group(ref) for ref in ids if ref]
        if not found:
            raise VkError(100, "One of the parameters specified was missing or invalid: group_ids is undefined")
        fields = params.get("fields", "")
        return {"groups": [self._group_json(group, user, fields) for group in found], "profiles": []}

    def _m_groups_get(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        if user is None:
            raise VkError(27, "Group authorization failed: method is unavailable with group auth.")
        wanted = {name for name in params.get("filter", "").split(",") if name}
        levels = {level for level, name in MANAGER_LEVELS.items() if not wanted or name in wanted}
        groups = [g for g in self.groups.values() if g.managers.get(user, 0) in levels]
        if params.get("extended") == "1":
            return {"count": len(groups), "items": [self._group_json(g, user) for g in groups]}
        return {"count": len(groups), "items": [g.id for g in groups]}

    def _m_photos_getWallUploadServer(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        group = self._group(params.get("group_id", "0"))
        url = f"{self.url}/upload/wall?gid={group.id}&act=do_add"
        return {"upload_url": url, "album_id": -14, "user_id": user}

    def _m_photos_saveWallPhoto(self, user: int | None, params: dict[str, str]) -> list[dict[str, Any]]:
        group = self._group(params.get("group_id", "0"))
        photo = params.get("photo", "")
        if params.get("server") != "840123":
            raise VkError(118, "Invalid server")
        if params.get("hash") != _hash(group.id, photo):
            raise VkError(121, "Invalid hash")
        try:
            key = json.loads(photo)[0]["photo"]
            data = self.uploads[key]
        except (ValueError, LookupError, TypeError):
            raise VkError(
                100, "One of the parameters specified was missing or invalid: photos_list is invalid"
            ) from None
        info = image_info(data)
        if info is None or info[0] not in ("image/jpeg", "image/png", "image/gif"):
            raise VkError(129, "Invalid photo: photo is undefined")
        _, width, height = info
        if width + height > 14000 or max(width, height) > 20 * max(1, min(width, height)):
            raise VkError(129, "Invalid photo: invalid photo dimensions")
        self._next_photo += 1
        saved = {
            "id": self._next_photo,
            "owner_id": -group.id,
            "album_id": -14,
            "date": int(self.now()),
            "text": params.get("caption", ""),
            "sizes": [{"type": "x", "width": width, "height": height, "url": f"{self.url}/p/{key}.jpg"}],
            "bytes": len(data),
        }
        self.photos[f"photo{-group.id}_{saved['id']}"] = saved
        return [{k: v for k, v in saved.items() if k != "bytes"}]

    def _m_wall_post(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        owner_id = int(params.get("owner_id", "0"))
        group = self._group(str(-owner_id))
        if group.managers.get(user or 0, 0) < 2:
            raise VkError(214, "Access to adding post denied")
        now = self.now()
        guid = params.get("guid") or None
        if guid is not None:
            seen = self._guids.get((owner_id, guid))
            if seen is not None and now - seen[1] < self.guid_window:
                return {"post_id": seen[0]}
        message = params.get("message", "")
        attachments = [a for a in params.get("attachments", "").split(",") if a]
        links = [a for a in attachments if a.startswith(("http://", "https://"))]
        if len(links) > 1:
            raise VkError(100, "One of the parameters specified was missing or invalid: too many links")
        if links and not group.links_allowed:
            raise VkError(222, "Hyperlinks are forbidden")
        for ref in attachments:
            if ref not in links and ref not in self.photos:
                raise VkError(100, f"One of the parameters specified was missing or invalid: attachments {ref}")
        if not message and not attachments:
            raise VkError(100, "One of the parameters specified was missing or invalid: message is empty or invalid")
        publish_date = int(params["publish_date"]) if params.get("publish_date") else None
        if publish_date is not None and publish_date <= now:
            raise VkError(100, "One of the parameters specified was missing or invalid: publish_date is invalid")
        if self.limits:
            while group.posts and group.posts[0] <= now - DAY:
                group.posts.popleft()
            if len(group.posts) >= 50:
                raise VkError(214, "Access to adding post denied: you can only add 50 posts a day")
            group.posts.append(now)
        post_id, self._next_post = self._next_post, self._next_post + 1
        if guid is not None:
            self._guids[(owner_id, guid)] = (post_id, now)
        self.published.append(
            {
                "owner_id": owner_id,
                "from_group": params.get("from_group") == "1",
                "message": message,
                "attachments": attachments,
                "guid": guid,
                "publish_date": publish_date,
                "post_id": post_id,
                "time": now,
                "deleted": False,
            }
        )
        return {"post_id": post_id}

    def _m_wall_get(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        owner_id = int(params.get("owner_id", "0"))
        postponed = params.get("filter") == "postponed"
        if postponed and self._group(str(-owner_id)).managers.get(user or 0, 0) < 2:
            raise VkError(15, "Access denied: no access to postponed posts")
        now = self.now()
        items = [
            self._post_json(p) for p in reversed(self.posts(owner_id)) if ((p["publish_date"] or 0) > now) == postponed
        ]
        offset, count = int(params.get("offset", "0")), int(params.get("count", "20"))
        return {"count": len(items), "items": items[offset : offset + count]}

    def _m_wall_getById(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        # A deleted post is simply absent from the answer, as on VK.
        wanted = set(params.get("posts", "").split(","))
        found = [p for p in self.published if f"{p['owner_id']}_{p['post_id']}" in wanted and not p["deleted"]]
        return {"items": [self._post_json(p, counters=True) for p in found]}

    def _m_wall_getComments(self, user: int | None, params: dict[str, str]) -> dict[str, Any]:
        # The answer's shape as VK gives it (API 5.199): top-level comments, each with its ``thread`` (the replies'
        # count and the first ``thread_items_count`` of them, at most 10); ``comment_id`` lists one thread.
        owner_id, post_id = int(params.get("owner_id", "0")), int(params.get("post_id", "0"))
        if not any(p["post_id"] == post_id for p in self.posts(owner_id)):
            raise VkError(100, "One of the parameters specified was missing or invalid: post_id is invalid")
        every = sorted(self.comments.get((owner_id, post_id), []), key=lambda c: (c["date"], c["id"]))
        parent = int(params["comment_id"]) if params.get("comment_id") else None
        items = [c for c in every if c["parent"] == parent]
        if params.get("sort", "asc") == "desc":
            items.reverse()
        offset, count = int(params.get("offset", "0")), min(100, int(params.get("count", "10")))
        inline = min(10, int(params.get("thread_items_count", "0") or 0))

        def shown(c: dict[str, Any]) -> dict[str, Any]:
            item = {k: v for k, v in c.items() if k != "parent"}
            item |= {"post_id": post_id, "owner_id": owner_id, "parents_stack": [] if parent is None else [parent]}
            if parent is None:
                replies = [shown_reply(r) for r in every if r["parent"] == c["id"]]
                item["thread"] = {
                    "count": len(replies),
                    "items": replies[:inline],
                    "can_post": True,
                    "show_reply_button": True,
                    "groups_can_post": True,
                }
            return item

        def shown_reply(c: dict[str, Any]) -> dict[str, Any]:
            reply = {k: v for k, v in c.items() if k != "parent"}
            return reply | {"post_id": post_id, "owner_id": owner_id, "parents_stack": [c["parent"]]}

        page = [shown(c) for c in items[offset : offset + count]]
        answer: dict[str, Any] = {
            "count": len(every) if parent is None else len(items),
            "current_level_count": len(items),
            "can_post": True,
            "show_reply_button": True,
            "groups_can_post": True,
            "items": page,
        }
        if params.get("extended") == "1":
            authors = list(page) + [r for c in page for r in c.get("thread", {}).get("items", [])]
            people = {c["from_id"] for c in authors if c["from_id"] > 0}
            answer["profiles"] = [
                {
                    "id": i,
                    "first_name": self.people.get(i, ("User", str(i)))[0],
                    "last_name": self.people.get(i, ("", ""))[1],
                }
                for i in sorted(people)
            ]
            groups = sorted({-c["from_id"] for c in authors} & set(self.groups))
            answer["groups"] = [self._group_json(self.groups[g], user) for g in groups]
        return answer

    def _m_wall_delete(self, user: int | None, params: dict[str, str]) -> int:
        owner_id, post_id = int(params.get("owner_id", "0")), int(params.get("post_id", "0"))
        if self._group(str(-owner_id)).managers.get(user or 0, 0) < 2:
            raise VkError(15, "Access denied")
        for post in self.posts(owner_id):
            if post["post_id"] == post_id:
                post["deleted"] = True
                return 1
        raise VkError(100, "One of the parameters specified was missing or invalid: post_id is invalid")

    # -- helpers ---------------------------------------------------------------------------------------------

    def _group(self, ref: str) -> FakeGroup:
        ref = ref.removeprefix("club").removeprefix("public")
        for group in self.groups.values():
            if ref in (str(group.id), group.screen_name):
                return group
        raise VkError(100, f"One of the parameters specified was missing or invalid: group_id {ref} is invalid")

    def _group_json(self, group: FakeGroup, user: int | None, fields: str = "") -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "screen_name": group.screen_name or f"club{group.id}",
            "is_closed": 0,
            "type": "page",
            "is_admin": int(user in group.managers),
        }
        if user in group.managers:
            data["admin_level"] = group.managers[user]
        if "members_count" in fields.split(","):
            data["members_count"] = grown(group.members, self._offset)
        return data

    def _post_json(self, post: dict[str, Any], *, counters: bool = False) -> dict[str, Any]:
        attachments = []
        for ref in post["attachments"]:
            if ref in self.photos:
                photo = {k: v for k, v in self.photos[ref].items() if k != "bytes"}
                attachments.append({"type": "photo", "photo": photo})
            else:
                attachments.append({"type": "link", "link": {"url": ref, "title": ref}})
        scheduled = post["publish_date"] is not None and post["publish_date"] > self.now()
        return {
            "id": post["post_id"],
            "owner_id": post["owner_id"],
            "from_id": post["owner_id"],
            "date": post["publish_date"] or int(post["time"]),
            "post_type": "postpone" if scheduled else "post",
            "text": post["message"],
            "attachments": attachments,
            **(self._counters(post) if counters and not scheduled else {}),
        }

    def _counters(self, post: dict[str, Any]) -> dict[str, Any]:
        """The counters wall.getById gives a live post: they grow with its age on the fake's clock."""
        figures = engagement(self.now() - (post["publish_date"] or post["time"]))
        comments = len(self.comments.get((post["owner_id"], post["post_id"]), []))
        return {
            "views": {"count": figures["views"]},
            "likes": {"count": figures["likes"], "user_likes": 0, "can_like": 1},
            "reposts": {"count": figures["reposts"], "user_reposted": 0},
            "comments": {"count": comments, "can_post": 1},
        }


def _hash(group: int, photo: str) -> str:
    return f"{abs(hash((group, photo))) & 0xFFFFFFFF:08x}"
