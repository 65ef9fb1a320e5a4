"""After publishing on Facebook: a post's results (its fields and insights), the Page's followers, the comments,
and deletion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.base import Comment, PostResults
from adapters.errors import AuthError, ContentRejected, PermanentError
from adapters.facebook.errors import gone
from adapters.facebook.graph import GraphCall, unix

#: The post insights metric of each figure, tried in order. Meta replaced the impressions metrics by views
#: (``post_media_view``) in late 2025; older Graph versions still answer ``post_impressions``. Metric names
#: appear nowhere else. https://developers.facebook.com/docs/graph-api/reference/insights
INSIGHT_METRICS: dict[str, tuple[str, ...]] = {"views": ("post_media_view", "post_impressions")}
#: A post's counts in one read; ``shares`` is left out by Graph when nobody shared the post.
RESULT_FIELDS = "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"
COMMENT_FIELDS = "id,from{name},message,created_time,permalink_url"
COMMENTS_PAGE = 100


class FacebookReading:
    """Reads back and deletes one Page's posts through the adapter's Graph requests."""

    def __init__(self, call: GraphCall, page_id: str, version: str) -> None:
        self._call = call
        self.page_id = page_id
        self._version = version

    async def results(self, remote_id: str) -> PostResults:
        """The post's reactions, comments, shares and views; ``gone`` when Graph no longer has it."""
        try:
            body = (await self._call("GET", remote_id, params={"fields": RESULT_FIELDS})).body
        except ContentRejected as exc:
            if gone(exc):
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
                    f"{self.page_id} (it refused the post's insights with error {exc.code})",
                )
            except ContentRejected as exc:
                if exc.code == 100 and not gone(exc):  # a metric this Graph version does not know
                    continue
                raise
            for row in reply.body.get("data") or []:
                values = row.get("values") if isinstance(row, dict) else None
                value = values[-1].get("value") if isinstance(values, list) and values else None
                if row.get("name") == metric and isinstance(value, int):
                    return value, ()
            return None, (f"Facebook gave no {metric} for post {post_id}",)
        return None, (f"this Graph API version ({self._version}) knows none of the view metrics {', '.join(names)}",)

    async def audience(self) -> int:
        """The Page's followers."""
        body = (await self._call("GET", self.page_id, params={"fields": "followers_count"})).body
        followers = body.get("followers_count")
        if not isinstance(followers, int):
            raise PermanentError(f"Facebook gave no followers_count for page {self.page_id}")
        return followers

    async def comments(self, remote_id: str, since: datetime) -> list[Comment]:
        """The post's comments made at or after ``since``, oldest first."""
        found: list[Comment] = []
        after: str | None = None
        oldest = unix(since)
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

    async def delete(self, remote_id: str) -> None:
        """Delete the post; one Graph no longer has counts as deleted."""
        unsure = f"post {remote_id} may be deleted; read it back before deleting again"
        try:
            await self._call("DELETE", remote_id, publishing=True, may_exist=unsure, doing="deleting")
        except ContentRejected as exc:
            if not gone(exc):
                raise


def _total(body: Mapping[str, Any], edge: str) -> int | None:
    summary = (body.get(edge) or {}).get("summary") if isinstance(body.get(edge), dict) else None
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None
