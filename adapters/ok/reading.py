"""After publishing on OK: a topic's results, the group's members, the comments, and deletion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.base import Comment, PostResults
from adapters.errors import PermanentError, answer_shape
from adapters.ok.api import OkCall, listed, mapping, topic_url

#: What mediatopic.getByIds returns for a topic's results (https://apiok.ru/dev/methods/rest/mediatopic/).
RESULT_FIELDS = (
    "media_topic.id,media_topic.like_summary,media_topic.reshare_summary,media_topic.discussion_summary,"
    "media_topic.views_count"
)
COMMENTS_PAGE = 100
#: OK's NOT_FOUND: the topic is gone.
NOT_FOUND = 300


class OkReading:
    """The adapter's side after publishing: it reads back and deletes one group's topics through ``_call``."""

    group_id: str
    _call: OkCall

    async def read_results(self, remote_id: str) -> PostResults:
        with answer_shape("OK", "mediatopic.getByIds"):
            return await self._results(remote_id)

    async def _results(self, remote_id: str) -> PostResults:
        answer = await self._call("mediatopic.getByIds", {"topic_ids": remote_id, "fields": RESULT_FIELDS})
        topics = listed(answer, "media_topics")
        topic = next((t for t in topics if str(t.get("id")) == remote_id), None)
        if topic is None:  # OK leaves a deleted topic out of the answer
            return PostResults(gone=True)

        def count(key: str, field: str = "count") -> int | None:
            value = mapping(topic.get(key)).get(field) if key != "views_count" else topic.get(key)
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
        groups = listed(info, "groups")
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
            page = mapping(await self._call("discussions.getComments", params | ({"anchor": anchor} if anchor else {})))
            rows += [c for c in listed(page, "comments") if _comment_ms(c) >= oldest]
            anchor = page.get("anchor")
            if not page.get("has_more") or not anchor:
                break
        names: dict[str, str] = {}
        authors = sorted({str(c.get("author_id")) for c in rows if c.get("author_id")})
        if authors:
            people = await self._call("users.getInfo", {"uids": ",".join(authors), "fields": "uid,name"})
            names = {str(p.get("uid")): str(p.get("name", "")) for p in listed(people, "users")}
        url = topic_url(self.group_id, remote_id)
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

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
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
