"""A fake OK.ru REST API speaking the real wire format.

``/fb.do`` takes form (or query) parameters, checks ``application_key`` and the signature exactly as OK does
(``md5(sorted k=v pairs + md5(access_token + application_secret))``, without ``access_token``/``session_key``/
``sig``), then the session. Errors are HTTP 200 with ``{"error_code", "error_msg", "error_data"}``. Photo uploads
go to the absolute ``upload_url`` handed out by ``photosV2.getUploadUrl`` (``/upload`` here).

Fault keys (:meth:`FakeOk.fault_key`) are the API method names (``mediatopic.post``, ...) and ``upload``.

After publishing: ``mediatopic.getByIds`` gives a topic's like, reshare and comment counts and its views (growing
with its age, see :meth:`FakeOk.advance`; a deleted topic is absent), ``group.getInfo`` with
``fields=members_count`` the group's members, ``discussions.getComments`` (``discussionType=GROUP_TOPIC``, paged
by ``anchor``) a topic's comments with ``users.getInfo`` for their authors' names, and ``mediatopic.deleteTopic``
deletes a topic (error 300 NOT_FOUND once it is gone).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import threading
import time
from typing import Any

from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, engagement, grown

ALL_PERMISSIONS = frozenset({"VALUABLE_ACCESS", "GROUP_CONTENT", "PHOTO_CONTENT", "LONG_ACCESS_TOKEN"})
POSTING_STATUSES = {"ADMIN", "MODERATOR"}
POSTING_ROLES = {"EDITOR", "MODERATOR", "SUPER_MODERATOR"}
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8")


class OkApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class FakeOk(FakeServer):
    """One OK group administered by the user of one token; more with :meth:`add_user` and :meth:`set_membership`.

    ``published`` records every topic, as dicts with the keys ``gid``, ``id``, ``text``, ``link``, ``photos``
    (count), ``uid`` and ``time`` (unix float).
    """

    def __init__(
        self,
        group_id: str = "70000000000001",
        application_key: str = "CBAFAKEAPPKEY",
        application_secret: str = "FAKE-APP-SECRET-not-real",
        token: str = "ok-token-not-real",
        *,
        user_id: str = "500000000001",
        user_name: str = "Test Admin",
        group_name: str = "Test Group",
        limits: bool = False,
        flood_limit: int = 10,
        flood_window: float = 60.0,
        text_limit: int | None = None,
    ) -> None:
        super().__init__()
        self.group_id = group_id
        self.application_key = application_key
        self.application_secret = application_secret
        self.token = token
        self.groups: dict[str, str] = {group_id: group_name}
        self.users: dict[str, dict[str, Any]] = {}
        self.memberships: dict[tuple[str, str], dict[str, Any]] = {}
        self.published: list[dict[str, Any]] = []
        self.limits = limits
        self.flood_limit = flood_limit
        self.flood_window = flood_window
        self.text_limit = text_limit
        self._uploads: dict[str, dict[str, Any]] = {}
        self._photo_tokens: dict[str, dict[str, Any]] = {}
        self._topics: list[dict[str, Any]] = []
        self.members: dict[str, int] = {group_id: 3100}
        #: Comments by topic id: ``{"id", "author_id", "name", "text", "time"}`` (see :meth:`add_comment`).
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self._offset = 0.0
        self._posts: dict[str, collections.deque[float]] = {}
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        self.add_user(token, user_id, user_name, status="ADMIN")
        self.route("/fb.do", self._api)
        self.route("/upload", self._upload)

    # -- setup -----------------------------------------------------------------------------------------------

    def add_user(
        self,
        token: str,
        uid: str,
        name: str,
        *,
        status: str | None = "ACTIVE",
        role: str | None = None,
        permissions: frozenset[str] = ALL_PERMISSIONS,
    ) -> None:
        """A user with an access token, a membership ``status`` (``None``: not a member) and granted permissions."""
        self.users[token] = {"uid": uid, "name": name, "error": None, "permissions": set(permissions)}
        if status is not None:
            self.set_membership(uid, status, role)

    def set_membership(self, uid: str, status: str, role: str | None = None, gid: str | None = None) -> None:
        """``status``: ACTIVE, ADMIN, MODERATOR, BLOCKED, ...; ``role``: EDITOR, MODERATOR, ANALYST, ..."""
        self.memberships[(gid or self.group_id, uid)] = {"status": status, "role": role}

    def revoke_token(self, token: str | None = None, *, code: int = 102) -> None:
        """Make ``token`` (default: the first one) fail with ``code`` (102 expired session, 103 invalid key)."""
        self.users[token or self.token]["error"] = code

    def advance(self, seconds: float) -> None:
        """Age every topic by ``seconds`` as far as its figures go (views, likes and reshares grow)."""
        self._offset += seconds

    def add_comment(self, topic_id: str, uid: str, name: str, text: str, *, at: float | None = None) -> str:
        """A comment by user ``uid`` (called ``name``) on a topic; returns its id."""
        with self._state:
            comment_id = f"c{next(self._ids)}"
            when = time.time() if at is None else at
            self.comments.setdefault(topic_id, []).append(
                {"id": comment_id, "author_id": uid, "name": name, "text": text, "time": when}
            )
            return comment_id

    def delete(self, topic_id: str) -> None:
        """Delete a topic as the group's admin would on ok.ru."""
        with self._state:
            self._topic(topic_id)["deleted"] = True

    def __enter__(self) -> FakeOk:
        return self.start()

    def fault_key(self, request: FakeRequest) -> str:
        if request.path.startswith("/upload"):
            return "upload"
        return request.params.get("method", request.path)

    @staticmethod
    def expected_sig(params: dict[str, str], token: str | None, secret: str) -> str:
        """The signature OK expects for ``params`` (https://apiok.ru/dev/methods/)."""
        key = hashlib.md5(((token or "") + secret).encode()).hexdigest() if token else secret
        pairs = "".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("access_token", "session_key", "sig"))
        return hashlib.md5((pairs + key).encode()).hexdigest()

    # -- /fb.do ------------------------------------------------------------------------------------------------

    def _api(self, request: FakeRequest) -> FakeResponse:
        params = request.params
        try:
            if params.get("application_key") != self.application_key:
                raise OkApiError(101, "PARAM_API_KEY : Application key is invalid")
            token = params.get("access_token") or params.get("session_key")
            if params.get("sig") != self.expected_sig(params, token, self.application_secret):
                raise OkApiError(104, "PARAM_SIGNATURE : Invalid signature " + params.get("sig", ""))
            user = self.users.get(token or "")
            if user is None or user["error"] == 102:
                raise OkApiError(102, "PARAM_SESSION_EXPIRED : Session expired")
            if user["error"]:
                raise OkApiError(user["error"], "PARAM_SESSION_KEY : Invalid session key")
            handler = getattr(self, "_m_" + params.get("method", "").replace(".", "_"), None)
            if handler is None:
                raise OkApiError(3, f"METHOD : Method {params.get('method')!r} not found")
            with self._state:
                return FakeResponse.json(handler(params, user))
        except OkApiError as exc:
            return FakeResponse.json({"error_code": exc.code, "error_msg": exc.message, "error_data": None})

    def _m_users_getCurrentUser(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        first, _, last = user["name"].partition(" ")
        return {"uid": user["uid"], "name": user["name"], "first_name": first, "last_name": last}

    def _m_users_hasAppPermission(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        return params.get("ext_perm") in user["permissions"]

    def _m_group_getInfo(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        self._require(user, "VALUABLE_ACCESS")
        uids = [g for g in params.get("uids", "").split(",") if g in self.groups]
        counted = "members_count" in params.get("fields", "").lower()

        def members(g: str) -> dict[str, int]:
            return {"members_count": grown(self.members.get(g, 0), self._offset)} if counted else {}

        return {"groups": [{"uid": g, "name": self.groups[g], **members(g)} for g in uids]}

    def _m_group_getUserGroupsByIds(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        gid = params.get("group_id", "")
        rows = []
        for uid in params.get("uids", "").split(","):
            member = self.memberships.get((gid, uid))
            if member is not None:
                row = {"groupId": gid, "userId": uid, "status": member["status"]}
                rows.append({**row, **({"role": member["role"]} if member["role"] else {})})
        return {"memberships": rows}

    def _m_photosV2_getUploadUrl(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        self._require(user, "PHOTO_CONTENT")
        gid, count = params.get("gid", ""), int(params.get("count", "1") or 1)
        if gid not in self.groups:
            raise OkApiError(160, f"PARAM_GROUP_ID : Invalid group id {gid}")
        if not 1 <= count <= 100:
            raise OkApiError(100, "PARAM : count must be 1..100")
        session = f"s{next(self._ids)}"
        photo_ids = [f"ph{next(self._ids)}" for _ in range(count)]
        self._uploads[session] = {"gid": gid, "photo_ids": photo_ids}
        expires = int(time.time() * 1000) + 86_400_000
        return {
            "upload_url": f"{self.url}/upload?sid={session}&gid={gid}",
            "photo_ids": photo_ids,
            "expires_ms": expires,
            "ttl_ms": 86_400_000,
        }

    def _m_mediatopic_post(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        gid = params.get("gid", "")
        if params.get("type") != "GROUP_THEME" or gid not in self.groups:
            raise OkApiError(100, "PARAM : type=GROUP_THEME and a known gid are required")
        self._require(user, "GROUP_CONTENT")
        member = self.memberships.get((gid, user["uid"]), {})
        if member.get("status") not in POSTING_STATUSES and member.get("role") not in POSTING_ROLES:
            raise OkApiError(10, "PERMISSION_DENIED : User cannot post to the group")
        if self.limits:
            posts = self._posts.setdefault(user["uid"], collections.deque())
            while posts and time.time() - posts[0] > self.flood_window:
                posts.popleft()
            if len(posts) >= self.flood_limit:
                raise OkApiError(8, "FLOOD_BLOCKED : Flood blocked")
        blocks = self._blocks(params.get("attachment", ""), gid)
        topic_id = str(next(self._ids) + 150_000_000_000_000)
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        link = next((b["url"] for b in blocks if b["type"] == "link"), None)
        photos = [p for b in blocks if b["type"] == "photo" for p in b["list"]]
        for photo in photos:
            self._photo_tokens[photo["id"]]["used"] = True
        now = time.time()
        if self.limits:
            self._posts[user["uid"]].append(now)
        record = {"gid": gid, "id": topic_id, "text": text, "link": link, "photos": len(photos), "uid": user["uid"]}
        self.published.append({**record, "time": now})
        self._topics.append({"id": topic_id, "gid": gid, "blocks": blocks, "created_ms": int(now * 1000)})
        return topic_id

    def _m_mediatopic_getTopics(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        gid, count = params.get("gid", ""), int(params.get("count", "10") or 10)
        if gid not in self.groups:
            raise OkApiError(160, f"PARAM_GROUP_ID : Invalid group id {gid}")
        live = (t for t in self._topics if t["gid"] == gid and not t.get("deleted"))
        topics = sorted(live, key=lambda t: t["created_ms"], reverse=True)
        return {"media_topics": [self._topic_json(t) for t in topics[:count]], "has_more": len(topics) > count}

    def _m_mediatopic_getByIds(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        self._require(user, "VALUABLE_ACCESS")
        fields = params.get("fields", "").lower()
        wanted = [t for t in params.get("topic_ids", "").split(",") if t]
        found = []
        for topic in self._topics:
            if topic["id"] not in wanted or topic.get("deleted"):
                continue  # a deleted topic is simply absent
            data = self._topic_json(topic)
            figures = engagement(time.time() + self._offset - topic["created_ms"] / 1000, weight=3)
            if "like_summary" in fields:
                data["like_summary"] = {"count": figures["likes"], "self": False, "like_possible": True}
            if "reshare_summary" in fields:
                data["reshare_summary"] = {"count": figures["reposts"], "self": False, "reshare_possible": True}
            if "discussion_summary" in fields:
                data["discussion_summary"] = {"comments_count": len(self.comments.get(topic["id"], []))}
            if "views_count" in fields:
                data["views_count"] = figures["views"]
            found.append(data)
        return {"media_topics": found}

    def _m_mediatopic_deleteTopic(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        self._require(user, "GROUP_CONTENT")
        topic = self._topic(params.get("topic_id", ""))
        member = self.memberships.get((topic["gid"], user["uid"]), {})
        if member.get("status") not in POSTING_STATUSES and member.get("role") not in POSTING_ROLES:
            raise OkApiError(10, "PERMISSION_DENIED : User cannot delete topics of the group")
        topic["deleted"] = True
        return {"success": True}

    def _m_discussions_getComments(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        self._require(user, "VALUABLE_ACCESS")
        if params.get("discussionType") != "GROUP_TOPIC":
            raise OkApiError(100, "PARAM : discussionType must be GROUP_TOPIC for a group topic")
        topic = self._topic(params.get("discussionId", ""))
        rows = sorted(self.comments.get(topic["id"], []), key=lambda c: c["time"])
        start = int(params.get("anchor", "0") or 0)
        count = min(100, int(params.get("count", "20") or 20))
        chunk = rows[start : start + count]
        comments = [
            {
                "id": c["id"],
                "author_id": c["author_id"],
                "text": c["text"],
                "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(c["time"])),
                "date_ms": int(c["time"] * 1000),
                "like_count": 0,
                "reply_to_id": None,
            }
            for c in chunk
        ]
        return {"comments": comments, "anchor": str(start + len(chunk)), "has_more": start + count < len(rows)}

    def _m_users_getInfo(self, params: dict[str, str], user: dict[str, Any]) -> Any:
        names = {c["author_id"]: c["name"] for rows in self.comments.values() for c in rows}
        names |= {u["uid"]: u["name"] for u in self.users.values()}
        return [{"uid": uid, "name": names[uid]} for uid in params.get("uids", "").split(",") if uid in names]

    def _topic(self, topic_id: str) -> dict[str, Any]:
        for topic in self._topics:
            if topic["id"] == topic_id and not topic.get("deleted"):
                return topic
        raise OkApiError(300, f"NOT_FOUND : Topic {topic_id} not found")

    # -- uploads -----------------------------------------------------------------------------------------------

    def _upload(self, request: FakeRequest) -> FakeResponse:
        with self._state:
            session = self._uploads.pop(request.query.get("sid", ""), None)
            if session is None:
                return FakeResponse.json({"error_code": 100, "error_msg": "PARAM : upload session not found"})
            files = [request.files.get(f"pic{i}") for i in range(1, len(session["photo_ids"]) + 1)]
            photos = {}
            for photo_id, upload in zip(session["photo_ids"], files, strict=True):
                if upload is None:
                    continue
                if not upload.data.startswith(IMAGE_MAGIC):
                    return FakeResponse.json({"error_code": 324, "error_msg": "PHOTO : Invalid image format"})
                token = f"tok{next(self._ids)}-{photo_id}"
                self._photo_tokens[token] = {"gid": session["gid"], "photo_id": photo_id, "used": False}
                photos[photo_id] = {"token": token}
            return FakeResponse.json({"photos": photos})

    # -- helpers -----------------------------------------------------------------------------------------------

    def _blocks(self, attachment: str, gid: str) -> list[dict[str, Any]]:
        try:
            media = json.loads(attachment)["media"]
        except (ValueError, KeyError, TypeError) as exc:
            raise OkApiError(100, "PARAM : Invalid attachment") from exc
        if not isinstance(media, list) or not media:
            raise OkApiError(100, "PARAM : attachment.media must be a non-empty list")
        for block in media:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and isinstance(block.get("text"), str):
                if self.text_limit is not None and len(block["text"]) > self.text_limit:
                    raise OkApiError(601, "MEDIA_TOPIC_TEXT_LIMIT : Text is too long")
            elif kind == "link" and isinstance(block.get("url"), str):
                if not block["url"].startswith(("http://", "https://")):
                    raise OkApiError(607, "MEDIA_TOPIC_LINK_BAD_FORMAT : Invalid link")
            elif kind == "photo" and isinstance(block.get("list"), list):
                for photo in block["list"]:
                    known = self._photo_tokens.get(str(photo.get("id")) if isinstance(photo, dict) else "")
                    if known is None or known["gid"] != gid or known["used"]:
                        raise OkApiError(100, f"PARAM : Invalid photo token {photo!r}")
            else:
                raise OkApiError(100, f"PARAM : Invalid media block {block!r}")
        return media

    @staticmethod
    def _require(user: dict[str, Any], permission: str) -> None:
        if permission not in user["permissions"]:
            raise OkApiError(10, f"PERMISSION_DENIED : {permission} permission required")

    def _topic_json(self, topic: dict[str, Any]) -> dict[str, Any]:
        media = []
        for block in topic["blocks"]:
            if block["type"] == "photo":
                refs = [f"photo:{self._photo_tokens[p['id']]['photo_id']}" for p in block["list"]]
                media.append({"type": "photo", "photo_refs": refs})
            else:
                media.append(dict(block))
        ref = f"group:{topic['gid']}"
        return {
            "id": topic["id"],
            "created_ms": topic["created_ms"],
            "owner_ref": ref,
            "author_ref": ref,
            "media": media,
        }
