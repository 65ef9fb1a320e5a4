"""The comment watch: every ``[comments] interval``, read the new comments on the posts published in the last
``days`` on the channels this daemon owns, and store each once; once a day, a ``comment_digest`` alert.

Reading never delays a post: it waits while this daemon publishes or a post falls due within a channel's pace
(``idle``, given by the daemon); it is paced at a share of the channel's rate limits (:data:`READ_SHARE`,
:func:`scheduler.ratelimit.pace`) and counts in the network's sliding windows like a publish, at
:meth:`Adapter.requests_for_action` requests.
What the network cannot do (``NotSupported``) or the token may not (``AuthError``) is logged once per channel;
a passing error ends the channel's read until the next interval (one line per channel and run, no retries in
between); a post gone from the network is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from adapters import Adapter
from adapters.base import Comment
from adapters.errors import AuthError, NotSupported, PermanentError, PublishError
from scheduler import ratelimit
from scheduler.comments import digest_alert, next_digest
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.errors import DatabaseError
from scheduler.ratelimit import Limiter
from scheduler.store import comments as rows

log = logging.getLogger("smm.daemon")

COMMENTS = "comments"
DIGEST = "comment_digest"
FIRST_READ = 60.0
"""Seconds after the start before the first read: the start's own work (what fell due meanwhile) goes first."""
LANES = 4
"""Lease groups (channels sharing rate limits) read at once."""
IDLE_POLL = 0.5
"""Seconds between two looks at whether the daemon is idle enough to read."""
READ_SHARE = 0.5
"""Reads are paced at this share of each of the channel's rates, in buckets of their own; they count in the network's
sliding windows with the posts (:func:`scheduler.ratelimit.fit_window`). A post that comes unannounced then finds
room in the window instead of a queue of reads, and publishing keeps its own pace untouched."""
BEFORE_PUBLISH = timedelta(hours=1)
"""Comments are read from this long before a post's recorded publish time (clocks differ; the store drops
what it has)."""


class CommentWatch:
    """The timer's comment reads and daily digest; ``idle(seconds)`` says whether nothing is being published and
    nothing falls due within ``seconds``."""

    def __init__(
        self, rt: Runtime, timer: Timer, limiter: Limiter, membership: Membership, idle: Callable[[float], bool]
    ) -> None:
        self.rt = rt
        self.timer = timer
        self.limiter = limiter
        self.membership = membership
        self.idle = idle
        self.task: asyncio.Task[int] | None = None
        self.told: set[str] = set()  # channels whose lasting refusal was logged
        self.gone: set[int] = set()  # deliveries whose post the network no longer has

    def plan(self) -> None:
        """The read job and the digest job, from the config (after start and each reload)."""
        config = self.rt.config.comments
        if not config.enabled or self.rt.once:
            self.timer.remove(COMMENTS)
            self.timer.remove(DIGEST)
            return
        first = self.rt.clock() + timedelta(seconds=min(FIRST_READ, config.interval))
        if self.timer.planned(COMMENTS) is not None:
            first = min(self.timer.planned(COMMENTS) or first, first)
        self.timer.every(COMMENTS, config.interval, self.job, first=first)
        self.timer.at(DIGEST, next_digest(self.rt.clock(), config.digest_at, self.rt.config.timezone), self.digest)

    async def job(self) -> None:
        """Start a read, unless one still runs."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.create_task(self.read(self.rt.clock()), name="smm-comments")

    async def read(self, now: datetime) -> int:
        """Read the comments of the posts published since ``days`` before ``now``; returns how many were new."""
        rt = self.rt
        if rt.health.down_since is not None:
            return 0
        since = now - timedelta(days=rt.config.comments.days)
        try:
            owned = [name for name in list(rt.adapters) if await self.membership.may_read(name)]
            posts: dict[str, list[rows.Watched]] = {name: [] for name in owned}
            for post in await rt.db_read(rows.watched, owned, since):
                if post.delivery_id not in self.gone:
                    posts[post.channel].append(post)
            # Channels sharing rate limits (a lease group) one after another; a few groups at once.
            groups: dict[str, list[str]] = {}
            for name in owned:
                adapter = rt.adapters.get(name)
                if adapter is not None and posts[name]:
                    groups.setdefault(adapter.lease_group, []).append(name)
            lanes = asyncio.Semaphore(LANES)

            async def lane(names: list[str]) -> int:
                async with lanes:
                    return sum([await self._channel(name, posts[name]) for name in names if not rt.stopping])

            counts = await asyncio.gather(*(lane(names) for names in groups.values()), return_exceptions=True)
            for count in counts:
                if isinstance(count, BaseException):
                    raise count  # once every lane is done: none is left running
            new = sum(c for c in counts if isinstance(c, int))
        except DatabaseError as exc:
            rt.health.down(exc)
            return 0
        except Exception:  # a bug here must never stop publishing
            log.exception("reading comments failed; trying again at the next interval", extra={"action": "comments"})
            return 0
        return new

    def _tell(self, name: str, message: str, fixable: bool) -> None:
        """Log a lasting refusal once per channel (until the daemon restarts, or it worked in between): a missing
        right as a warning, what the network cannot do as information."""
        if name not in self.told:
            self.told.add(name)
            level = logging.WARNING if fixable else logging.INFO
            log.log(level, "%s", message, extra={"channel": name, "action": "comments"})

    async def _channel(self, name: str, watched: list[rows.Watched]) -> int:
        rt = self.rt
        new = 0
        for post in watched:
            adapter = rt.adapters.get(name)
            if adapter is None or not await self._turn(adapter):
                break
            try:
                found = await self._read(adapter, post)
            except (NotSupported, AuthError) as exc:
                self._tell(name, f"comments on channel {name} are not read: {exc}", isinstance(exc, AuthError))
                break
            except PermanentError as exc:  # the post is gone, or the network refuses to show it
                self.gone.add(post.delivery_id)
                log.info(
                    "comments on post %d (%s) are not read: %s",
                    post.post_id,
                    name,
                    exc,
                    extra={"channel": name, "post_id": post.post_id, "action": "comments"},
                )
                continue
            except PublishError as exc:  # passing: the next interval reads again
                log.warning(
                    "reading comments on channel %s failed, trying again at the next interval: %s",
                    name,
                    exc,
                    extra={"channel": name, "action": "comments"},
                )
                break
            self.told.discard(name)
            if found:
                added = await rt.db_call(rows.save_comments, post.delivery_id, found, rt.clock())
                if added:
                    log.info(
                        "%d new comment%s on post %d (%s)",
                        added,
                        "" if added == 1 else "s",
                        post.post_id,
                        name,
                        extra={"channel": name, "post_id": post.post_id, "action": "comments"},
                    )
                new += added
        return new

    async def _turn(self, adapter: Adapter) -> bool:
        """Wait until nothing is published and nothing falls due within the channel's pace, then take a place in
        its rate limits; False when the daemon stops meanwhile."""
        rt = self.rt
        limits = adapter.rate_limits()
        units = float(adapter.requests_for_action("comments"))
        horizon = max((limit.per / limit.rate * units for limit in limits), default=0.0) + 1.0
        share = tuple(replace(x, scope=f"{x.scope} (comments)", rate=x.rate * READ_SHARE) for x in limits)
        while not rt.stopping:
            while not self.idle(horizon):
                await rt.sleep(IDLE_POLL)
                if rt.stopping:
                    return False
            if not await ratelimit.pace(self.limiter, share, rt.monotonic, rt.sleep, rt.is_stopping):
                return False
            if self.idle(horizon):  # pace may have slept: a post that came due meanwhile goes first
                return True
        return False

    async def _read(self, adapter: Adapter, post: rows.Watched) -> list[Comment]:
        limits = adapter.rate_limits()
        count = adapter.requests_for_action("comments")
        units = {limit.scope: float(count) for limit in limits if limit.unit == "request"}
        sending = await ratelimit.fit_window(self.limiter, limits, self.rt.monotonic, asyncio.sleep, units)
        since = post.newest or post.published_at - BEFORE_PUBLISH
        before = adapter.read_requests
        try:
            return await adapter.read_comments(post.remote_id, since)
        except PublishError as exc:
            if exc.retry_after:
                for limit in limits if exc.scope is None else [x for x in limits if x.scope == exc.scope]:
                    self.limiter.pause(limit.scope, self.rt.monotonic() + float(exc.retry_after))
            raise
        finally:
            now = self.rt.monotonic()
            self.limiter.finished(sending, now)
            if (pages := adapter.read_requests - before - count) > 0 and units:
                # The further pages count in the token's window as sent now: a publish waits for them to settle.
                extra = {scope: float(pages) for scope in units}
                self.limiter.finished(self.limiter.sent([x for x in limits if x.scope in units], now, extra), now)

    async def digest(self) -> None:
        """The daily digest: every comment no digest took yet, in one ``comment_digest`` alert (none when no
        destination the running sender sends to wants it, its URL unread included: the comments wait for one)."""
        rt = self.rt
        config = rt.config.comments
        self.timer.at(DIGEST, next_digest(rt.clock(), config.digest_at, rt.config.timezone), self.digest)
        if not rt.alert_wanted(DIGEST):
            return
        key = uuid.uuid4().hex
        try:
            taken = await rt.db_call(rows.take_for_digest, key, rt.clock())
            if taken and not rt.alert_wanted(DIGEST):  # a reload while they were taken dropped the destination
                await rt.db_call(rows.give_back_digest, key)
                return
        except DatabaseError as exc:
            rt.health.down(exc)
            return
        if taken:
            rt.alert(digest_alert(taken))
