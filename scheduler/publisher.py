"""Publishing one claimed delivery, and deciding about late ones; an ambiguous one is settled by
:mod:`scheduler.in_doubt`.

The caller has committed the claim (the attempt row) before anything here calls the network; everything here
records its outcome through the fenced updates of :mod:`scheduler.store`. No database session is open while an
adapter runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from adapters import Adapter, OutgoingPost, PublishResult
from adapters.base import read_text
from adapters.errors import (
    AmbiguousError,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from scheduler import in_doubt, native, ratelimit, store, timeline
from scheduler import repository as repo
from scheduler.alerts import Alert, ignore_alert
from scheduler.config import ChannelConfig, Config
from scheduler.errors import DatabaseError
from scheduler.in_doubt import claim_alert, log_extra
from scheduler.log import redact
from scheduler.models import Outcome
from scheduler.placement import Planner
from scheduler.ratelimit import Limiter
from scheduler.render import render
from scheduler.retry import call_with_retries, decide
from scheduler.store import Claim
from scheduler.store.executor import Write
from scheduler.timefmt import format_duration, format_local

log = logging.getLogger("smm.publish")
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def crash_point(name: str) -> None:
    """Die here with SIGKILL when ``$SMM_CRASH_AT`` names this point (fault-injection tests).

    ``SMM_CRASH_AT`` is a comma-separated list of points, each optionally with a probability:
    ``after_claim,after_accept:0.3``. The points: ``after_claim`` (the claim and its attempt row are committed,
    nothing sent), ``after_accept`` (the network accepted the post, nothing recorded), ``after_record``.
    """
    wanted = os.environ.get("SMM_CRASH_AT")
    if not wanted:
        return
    for item in wanted.split(","):
        point, _, chance = item.partition(":")
        if point.strip() == name and random.random() < (float(chance) if chance else 1.0):
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Publisher:
    """Runs publishes and reconciliations for the daemon."""

    config: Config
    db_call: Write
    limiter: Limiter
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    #: Runs an outcome's write, in a transaction it may share with other writes (the daemon's group commit).
    db_batch: Write | None = None
    #: Tells the operator (the daemon's :meth:`AlertSender.notify`: it only queues).
    alert: Callable[[Alert], None] = ignore_alert
    published_count: int = 0
    _flagged: set[str] | None = None

    async def flag(self, channel: str, reason: str) -> None:
        """Mark ``channel`` as needing a person (shown by smm queue, smm doctor and the daily summary)."""
        await self.db_call(repo.set_attention, channel, reason, self.clock())
        if self._flagged is not None:
            self._flagged.add(channel)
        self.alert(Alert("channel_attention", f"{reason} (smm doctor checks it)", channel=channel))

    async def unflag(self, channel: str) -> None:
        """Clear the mark after a success; a write only when the channel was marked (not on every publish)."""
        if self._flagged is None:
            self._flagged = set(await self.db_call(repo.attention))
        if channel in self._flagged:
            await self.db_call(repo.set_attention, channel, None, self.clock())
            self._flagged.discard(channel)

    async def record(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Write an outcome; while the database is down, keep trying for as long as the lease lasts, because the
        network's answer exists only in this process (after that, the lease expires and reconciliation takes over).
        """
        deadline = self.monotonic() + self.config.daemon.lease
        delay = 0.5
        while True:
            try:
                return await (self.db_batch or self.db_call)(fn, *args, **kwargs)
            except DatabaseError as exc:
                if self.monotonic() + delay > deadline:
                    raise
                log.warning("cannot record an outcome yet (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    def outgoing(self, claim: Claim, channel: ChannelConfig) -> OutgoingPost:
        return render(claim.content, channel, self.config.media_dir, key=claim.key)

    async def rendered(self, claim: Claim, channel: ChannelConfig) -> OutgoingPost:
        """:meth:`outgoing`, in a worker thread when the post's texts are long (rendering reads their markup)."""
        content = claim.content
        longest = max([content.text, *content.variants.values()], key=len)
        return await read_text(longest, self.outgoing, claim, channel)

    # -- publish ------------------------------------------------------------------------------------------------

    async def publish(
        self,
        claim: Claim,
        adapter: Adapter,
        channel: ChannelConfig,
        slot: asyncio.Semaphore | None = None,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> bool:
        """Publish a freshly claimed delivery and record what happened; True when it was published.

        ``slot`` bounds the requests in flight to the network's host; it is held for each request only, never
        while an in-call retry waits (a retry paced behind a busy bot may wait a minute). ``on_sent`` is called
        once the network has accepted the post, before its outcome is recorded."""
        if claim.native_id is not None and claim.native_at is not None:
            return await native.verify(self, claim, adapter, channel)
        if claim.native_id is not None:
            # Moved after it was handed to the network: delete it there before publishing it here.
            try:
                await adapter.cancel_scheduled(claim.native_id)
            except PublishError as exc:
                retry = self.clock() + native.CHECK_AFTER
                await self.record(
                    store.record_retry, claim, self.clock(), f"deleting the old scheduled post: {exc}", retry
                )
                return False
            await self.record(store.clear_native, claim.delivery_id)
        post = await self.rendered(claim, channel)
        # One line a post at INFO is the "published" one; a first attempt's start is detail (many a second).
        log.log(
            logging.INFO if claim.attempt_number > 1 else logging.DEBUG,
            "publishing post %d to %s (attempt %d)",
            claim.post_id,
            claim.channel,
            claim.attempt_number,
            extra=log_extra(claim, action="publishing"),
        )
        crash_point("after_claim")
        first = True

        async def pace() -> None:
            nonlocal first
            if first:
                first = False
                return
            await ratelimit.pace(self.limiter, adapter.rate_limits(), self.monotonic, asyncio.sleep, retry=True)

        def on_retry(exc: BaseException, sleep: float) -> None:
            self._pause_for(adapter, exc)
            log.info(
                "post %d to %s: %s; retrying in %.1fs",
                claim.post_id,
                claim.channel,
                exc,
                sleep,
                extra=log_extra(claim, action="retry_in_call"),
            )

        async def send() -> PublishResult:
            # The window first: a send waiting for it holds none of the host's slots (its recorded start is then
            # earlier than its request, which only makes the window stricter).
            sending = await self._fit_window(adapter, post)
            try:
                async with slot or contextlib.nullcontext():
                    return await adapter.publish(post)
            finally:
                self.limiter.finished(sending, self.monotonic())

        try:
            result = await call_with_retries(send, self.config.retry, before_attempt=pace, on_retry=on_retry)
        except AmbiguousError as exc:
            await in_doubt.record_in_doubt(self, claim, adapter, f"outcome unknown: {exc}")
        except PermanentError as exc:
            await self._failed(claim, exc)
        except TransientError as exc:
            self._pause_for(adapter, exc)
            await self._transient(claim, exc)
        except asyncio.CancelledError:
            log.warning(
                "post %d to %s: interrupted while publishing; it will be checked at the next start",
                claim.post_id,
                claim.channel,
                extra=log_extra(claim, action="interrupted"),
            )
            raise
        except Exception as exc:  # a bug in an adapter: the request may have gone out, so never resend blindly
            log.exception(
                "post %d to %s: unexpected error; treating the outcome as unknown",
                claim.post_id,
                claim.channel,
                extra=log_extra(claim, action="bug"),
            )
            await in_doubt.record_in_doubt(self, claim, adapter, f"outcome unknown after an unexpected error: {exc!r}")
        else:
            crash_point("after_accept")
            if on_sent is not None:
                on_sent()
            published = await self.published(claim, adapter, result, post=post)
            crash_point("after_record")
            return published
        return False

    async def _fit_window(self, adapter: Adapter, post: OutgoingPost) -> ratelimit.Send:
        """Send no more in any scope's window than the network counts there (see :func:`ratelimit.fit_window`)."""
        limits = adapter.rate_limits()
        units = {limit.scope: float(adapter.requests_for(post)) for limit in limits if limit.unit == "request"}
        return await ratelimit.fit_window(self.limiter, limits, self.monotonic, asyncio.sleep, units)

    def _pause_for(self, adapter: Adapter, exc: BaseException) -> None:
        if isinstance(exc, PublishError) and exc.retry_after:
            limits = adapter.rate_limits()
            scope = exc.scope or (limits[0].scope if limits else None)
            if scope is not None:
                self.limiter.pause(scope, self.monotonic() + float(exc.retry_after))

    async def published(
        self,
        claim: Claim,
        adapter: Adapter,
        result: PublishResult,
        note: str | None = None,
        post: OutgoingPost | None = None,
    ) -> bool:
        """Record a publish; ``post`` is what was sent, when the caller has it at hand (else it is rendered again)."""
        now = self.clock()
        if result.backoff:
            for limit in adapter.rate_limits():
                self.limiter.pause(limit.scope, self.monotonic() + result.backoff)
        per_request = [limit for limit in adapter.rate_limits() if limit.unit == "request"]
        if per_request:
            sent = post if post is not None else await self.rendered(claim, self._channel(claim))
            extra_units = adapter.requests_for(sent) - 1
            if extra_units > 0:
                for limit in per_request:
                    self.limiter.reserve((limit,), self.monotonic(), {limit.scope: extra_units})
        recorded = await self.record(
            store.record_published, claim, now, result.remote_id, result.remote_url, note, result.more_ids
        )
        if not recorded:
            log.error(
                "post %d to %s was published (%s) but its attempt had already been settled elsewhere",
                claim.post_id,
                claim.channel,
                result.remote_url or result.remote_id,
                extra=log_extra(claim, action="fence"),
            )
            return False
        self.published_count += 1
        await self.unflag(claim.channel)
        log.info(
            "published post %d to %s: %s",
            claim.post_id,
            claim.channel,
            result.remote_url or result.remote_id,
            extra=log_extra(claim, action="published", remote_url=result.remote_url, remote_id=result.remote_id),
        )
        for warning in result.warnings:
            log.warning("%s: %s", claim.channel, warning, extra=log_extra(claim, action="adapter_warning"))
        return True

    def _alert(self, event: str, claim: Claim, text: str) -> None:
        self.alert(claim_alert(event, claim, text))

    def _channel(self, claim: Claim) -> ChannelConfig:
        return self.config.channel(claim.channel)

    async def _failed(self, claim: Claim, exc: PermanentError) -> None:
        now = self.clock()
        message = redact(f"{exc}")
        if not await self.record(store.record_failed, claim, now, message):
            return
        if exc.needs_attention:
            await self.flag(claim.channel, message)
        log.error(
            "post %d to %s failed: %s (after fixing it: smm retry %d)",
            claim.post_id,
            claim.channel,
            message,
            claim.post_id,
            extra=log_extra(claim, action="failed", needs_attention=exc.needs_attention),
        )
        self._alert("delivery_failed", claim, f"{message} (after fixing it: smm retry {claim.post_id})")

    async def _transient(self, claim: Claim, exc: TransientError) -> None:
        now = self.clock()
        message = redact(str(exc))
        decision = decide(claim.attempt_number, claim.due_at, now, self.config.retry, exc.retry_after)
        if decision.retry_at is None:
            error = f"{message}; {decision.reason}. Check the network and the channel, then: smm retry {claim.post_id}"
            if await self.record(store.record_failed, claim, now, error, Outcome.TRANSIENT):
                log.error(
                    "post %d to %s failed: %s",
                    claim.post_id,
                    claim.channel,
                    error,
                    extra=log_extra(claim, action="failed"),
                )
                self._alert("delivery_failed", claim, error)
            return
        if await self.record(store.record_retry, claim, now, message, decision.retry_at):
            kind = "rate limited" if isinstance(exc, RateLimited) else "temporary failure"
            log.warning(
                "post %d to %s: %s (%s); retry scheduled at %s (%s)",
                claim.post_id,
                claim.channel,
                kind,
                message,
                decision.retry_at.isoformat(timespec="seconds"),
                decision.reason,
                extra=log_extra(claim, action="retry_scheduled", retry_at=decision.retry_at.isoformat()),
            )

    async def reconcile(self, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> None:
        """Settle a delivery whose attempt may or may not have reached the network (see :mod:`scheduler.in_doubt`)."""
        await in_doubt.reconcile(self, claim, adapter, channel)


# -- late deliveries ----------------------------------------------------------------------------------------------


def apply_late_policy(session: Session, config: Config, cutoff: datetime, now: datetime, seen: set[int]) -> list[str]:
    """Deal with queued deliveries that were due before ``cutoff`` (the daemon was down): returns log lines.

    A delivery whose post expired meanwhile is cancelled, as an expired one is, whatever the policy. Otherwise
    ``publish`` leaves them to go out now, ``reslot`` moves each to its channel's next free slot (or cancels it,
    as an expired one is, when its post expires by then), ``skip`` fails them with the reason "missed". ``seen``
    collects the ids already decided, so each is logged once.
    """
    lines: list[str] = []
    planners: dict[str, Planner] = {}
    for delivery in store.overdue(session, cutoff, limit=500 + len(seen)):
        if delivery.id in seen:
            continue
        seen.add(delivery.id)
        if delivery.native_id is not None and delivery.native_at is not None:
            continue  # handed to the network, which publishes it by itself: the worker checks it
        late = format_duration(now - (delivery.next_attempt_at or delivery.due_at), "words")
        due = format_local(delivery.due_at, UTC, weekday=False)
        where = f"post {delivery.post_id} to {delivery.channel} (due {due})"
        if delivery.channel not in config.channel_names:
            continue
        channel = config.channel(delivery.channel)
        policy = channel.late_policy or config.daemon.late_policy
        expiry = delivery.delete_at
        if expiry is not None and expiry <= now:  # whatever the policy: a sale that ended is not announced
            timeline.expire_queued(session, [delivery.id], now)
            lines.append(
                f"{where} is {late} late, and its post expired ({format_local(expiry, channel.timezone)}) while smm "
                "was not running: cancelled"
            )
            continue
        if policy == "publish":
            lines.append(f"{where} is {late} late; publishing it now (late_policy = publish)")
        elif policy == "skip":
            repo.skip_delivery(session, delivery.id, now, f"missed: due {due} while smm was not running")
            lines.append(f"{where} is {late} late; skipped (late_policy = skip; smm retry {delivery.post_id})")
        else:
            if channel.name not in planners:
                planners[channel.name] = Planner(session, channel, now)
            slot = planners[channel.name].reslot(expiry)
            local = format_local(slot, channel.timezone)
            if expiry is not None and expiry <= slot:
                timeline.expire_queued(session, [delivery.id], now, by=slot)
                lines.append(
                    f"{where} is {late} late, and it expires ({format_local(expiry, channel.timezone)}) before "
                    f"the next free slot, {local}: cancelled (late_policy = reslot)"
                )
                continue
            timeline.move_delivery(session, delivery.id, slot, now, slotted=True)
            lines.append(f"{where} is {late} late; moved to the next free slot, {local} (late_policy = reslot)")
    return lines
