"""After publishing on VK: a wall post's results, the community's audience, the comments, and deletion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from adapters.base import Comment, PostResults
from adapters.errors import AmbiguousError, AuthError, PermanentError, TransientError

#: Comments read per wall.getComments call (VK's maximum).
COMMENTS_PAGE = 100
#: Replies of each comment VK includes in its ``thread`` (its maximum); a longer thread is read on its own.
THREAD_ITEMS = 10


class VkCall(Protocol):
    """One VK API method called with its errors translated (the adapter's ``_call``)."""

    def __call__(
        self, method: str, values: dict[str, Any], *, sending: bool = False, unsure: str | None = None
    ) -> Any: ...


class VkReading:
    """Reads back and deletes the posts of one community's wall through the adapter's calls (run in a thread)."""

    def __init__(self, call: VkCall, group_id: int) -> None:
        self._call = call
        self.group_id = group_id

    def post(self, post_id: int) -> dict[str, Any] | None:
        """The wall post as wall.getById gives it, or ``None`` when VK no longer has it (deleted)."""
        answer = self._call("wall.getById", {"posts": f"-{self.group_id}_{post_id}"})
        items = answer.get("items") if isinstance(answer, dict) else answer  # a bare list before API 5.199
        found = [item for item in items or [] if isinstance(item, dict) and int(item.get("id", 0)) == post_id]
        return found[0] if found else None

    def results(self, post_id: int) -> PostResults:
        """The post's views, likes, reposts and comments; ``gone`` when VK no longer has it."""
        post = self.post(post_id)
        if post is None:
            return PostResults(gone=True)

        def count(key: str) -> int | None:
            value = post.get(key)
            number = value.get("count") if isinstance(value, dict) else None
            return int(number) if isinstance(number, int) else None

        views = count("views")
        notes = () if views is not None else ("VK gives no view count for this post (posts before 2017 have none)",)
        return PostResults(views, count("likes"), count("reposts"), count("comments"), notes=notes)

    def audience(self) -> int:
        """The community's members."""
        answer = self._call("groups.getById", {"group_id": self.group_id, "fields": "members_count"})
        groups = answer["groups"] if isinstance(answer, dict) else answer
        members = groups[0].get("members_count") if groups else None
        if not isinstance(members, int):
            raise PermanentError(f"VK gave no members_count for club{self.group_id} (a closed community hides it)")
        return members

    def comments(self, post_id: int, since: datetime) -> list[Comment]:
        """The post's comments and their replies made at or after ``since``, oldest first.

        wall.getComments lists a post's top-level comments, newest first, each with its thread's reply count and
        the first :data:`THREAD_ITEMS` replies; a thread with more is listed with ``comment_id``. Top-level comments
        are read until one older than ``since`` (a reply may be newer than its comment: the threads of every
        comment read are looked at, not those of older ones)."""
        after = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        found: dict[int, Comment] = {}
        for item in self._listed(post_id, after, None, found):
            thread = item.get("thread") or {}
            inline = thread.get("items") or []
            if int(thread.get("count") or 0) > len(inline):
                self._listed(post_id, after, int(item["id"]), found)
        return sorted(found.values(), key=lambda comment: comment.created_at)

    def _listed(
        self, post_id: int, after: float, thread: int | None, found: dict[int, Comment]
    ) -> list[dict[str, Any]]:
        """Read one level (the post's comments, or the replies of comment ``thread``) newest first until older than
        ``after``, adding to ``found`` each comment (and inline reply) made since; returns the items read."""
        read: list[dict[str, Any]] = []
        offset = 0
        while True:
            values: dict[str, Any] = {
                "owner_id": -self.group_id,
                "post_id": post_id,
                "count": COMMENTS_PAGE,
                "offset": offset,
                "sort": "desc",
                "extended": 1,
            }
            values |= {"thread_items_count": THREAD_ITEMS} if thread is None else {"comment_id": thread}
            page = self._call("wall.getComments", values)
            names = {
                int(p["id"]): f"{p.get('first_name', '')} {p.get('last_name', '')}".strip()
                for p in page.get("profiles") or []
            }
            names |= {-int(g["id"]): str(g.get("name", "")) for g in page.get("groups") or []}
            items = page.get("items") or []
            for item in items:
                replies = (item.get("thread") or {}).get("items") or []
                for comment in (item, *replies):
                    if not comment.get("deleted") and int(comment.get("date", 0)) >= after:
                        found[int(comment["id"])] = self._comment(post_id, comment, names)
            read += items
            offset += len(items)
            oldest = min((int(item.get("date", 0)) for item in items), default=0)
            if len(items) < COMMENTS_PAGE or oldest < after:
                return read

    def _comment(self, post_id: int, item: dict[str, Any], names: dict[int, str]) -> Comment:
        author = int(item.get("from_id", 0))
        return Comment(
            str(item["id"]),
            names.get(author) or (f"id{author}" if author > 0 else f"club{-author}"),
            str(item.get("text", "")),
            datetime.fromtimestamp(int(item["date"]), UTC),
            f"https://vk.com/wall-{self.group_id}_{post_id}?reply={item['id']}",
        )

    def delete(self, post_id: int) -> None:
        """Delete the post; a post VK no longer has counts as deleted."""
        values = {"owner_id": -self.group_id, "post_id": post_id}
        unsure = f"the post may be deleted: read wall-{self.group_id}_{post_id} back before deleting again"
        try:
            self._call("wall.delete", values, sending=True, unsure=unsure)
        except (AuthError, TransientError, AmbiguousError):
            raise
        except PermanentError:
            if self.post(post_id) is not None:  # VK answers error 100 for a post it no longer has
                raise
