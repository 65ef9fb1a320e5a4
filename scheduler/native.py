"""Native pre-scheduling: hand a post to its network ahead of time, so the network publishes it even when the
daemon is down at that moment; then check that it went out, and delete or move it there when the post is
cancelled or rescheduled here.

A channel opts in with ``native_schedule = true`` (VK ``publish_date``, Facebook ``scheduled_publish_time``). The
hand-over is an attempt like any other (claimed and committed first, reconciled when unclear); afterwards the
delivery waits in the queue, holding the network's id, until a little after its time, when a worker checks it:

- live on the network: ``published``, with its URL;
- still waiting there (the network is late): checked again a little later; if the network has not published it
  half an hour after its time, it is deleted there and published the ordinary way;
- gone (deleted on the network by someone): ``failed``, saying so; ``smm retry`` publishes it the ordinary way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.orm import Session

from adapters import Adapter, PublishResult
from adapters.errors import AmbiguousError, PermanentError, PublishError
from scheduler import store
from scheduler.config import ChannelConfig, Config
from scheduler.log import redact
from scheduler.models import Outcome
from scheduler.render import render
from scheduler.store import Claim
from scheduler.store.executor import Write
from scheduler.timefmt import format_local

P = ParamSpec("P")
R = TypeVar("R")


class Publisher(Protocol):
    """What native pre-scheduling needs of :class:`scheduler.publisher.Publisher`, which calls into this module
    (a protocol here, so that this module does not import the publisher back)."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def db_call(self) -> Write: ...

    async def record(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    async def flag(self, channel: str, reason: str) -> None: ...

    async def published(self, claim: Claim, adapter: Adapter, result: PublishResult, note: str) -> bool:
        """Record what the network published (native passes the note it shows)."""


log = logging.getLogger("smm.native")
CHECK_AFTER = timedelta(minutes=1)
"""How long after its time a handed-over post is checked."""
GIVE_UP_AFTER = timedelta(minutes=30)
"""How late the network may be before smm deletes the post there and publishes it itself."""


def _extra(claim: Claim, action: str) -> dict[str, object]:
    return {"post_id": claim.post_id, "delivery_id": claim.delivery_id, "channel": claim.channel, "action": action}


async def arm(publisher: Publisher, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> None:
    """Hand a claimed delivery to its network, to be published at its time by the network itself."""
    assert claim.publish_at is not None
    at = claim.publish_at
    # A fresh idempotency key per hand-over: VK may answer a key it saw within the hour with the post it made
    # then, even if that post was since deleted (a cancelled or moved hand-over).
    key = f"{claim.key}-{claim.attempt_number}"
    post = render(claim.content, channel, publisher.config.media_dir, key=key, publish_at=at)
    now = publisher.clock()
    try:
        result = await adapter.publish(post)
    except AmbiguousError as exc:
        await publisher.record(
            store.record_in_doubt,
            claim,
            now,
            redact(f"handing the post to {claim.network} was unclear: {exc}"),
            now + timedelta(seconds=publisher.config.daemon.reconcile_delay),
        )
        log.warning("post %d to %s: handing it over was unclear (%s); checking", claim.post_id, claim.channel, exc)
        return
    except PublishError as exc:
        # Not handed over: it stays queued for its time and is published the ordinary way (or handed over later).
        await publisher.record(store.record_retry, claim, now, redact(f"not handed to {claim.network}: {exc}"), at)
        if exc.needs_attention:
            await publisher.flag(claim.channel, redact(str(exc)))
        log.warning(
            "post %d to %s: could not hand it to %s ahead of time (%s); it will be published at its time",
            claim.post_id,
            claim.channel,
            claim.network,
            redact(str(exc)),
            extra=_extra(claim, "arm_failed"),
        )
        return
    await _armed(publisher, claim, channel, result.remote_id, at, now)


async def _armed(
    publisher: Publisher, claim: Claim, channel: ChannelConfig, remote_id: str, at: datetime, now: datetime
) -> None:
    local = format_local(at, channel.timezone)
    note = f"scheduled on {claim.network} for {local}: it goes out even if smm is down then"
    if await publisher.record(store.record_armed, claim, now, remote_id, at, at + CHECK_AFTER, note):
        log.info(
            "post %d handed to %s (%s) to publish at %s",
            claim.post_id,
            claim.channel,
            remote_id,
            local,
            extra=_extra(claim, "scheduled_on_network"),
        )


async def reconcile_arm(publisher: Publisher, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> None:
    """An unclear hand-over: find the post among the network's scheduled posts, else hand it back to the queue."""
    assert claim.publish_at is not None
    now = publisher.clock()
    post = render(claim.content, channel, publisher.config.media_dir, key=claim.key, publish_at=claim.publish_at)
    since = claim.open_since or claim.started_at
    try:
        found = await adapter.find_published(post, since - timedelta(minutes=2))
    except PublishError as exc:
        retry_at = now + timedelta(seconds=max(30.0, publisher.config.daemon.reconcile_delay))
        await publisher.record(store.record_in_doubt, claim, now, redact(f"checking the hand-over: {exc}"), retry_at)
        return
    if found is not None:
        await _armed(publisher, claim, channel, found.remote_id, claim.publish_at, now)
        return
    if (now - since).total_seconds() < publisher.config.daemon.reconcile_delay:
        wait = now + timedelta(seconds=publisher.config.daemon.reconcile_delay)
        await publisher.record(store.record_in_doubt, claim, now, "hand-over unclear; looking again shortly", wait)
        return
    note = "not found on the network after an unclear hand-over"
    await publisher.record(store.record_retry, claim, now, note, claim.publish_at, Outcome.NOT_FOUND)


async def verify(publisher: Publisher, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> bool:
    """The time of a handed-over post has come: record it as published once the network has published it."""
    assert claim.native_id is not None
    now = publisher.clock()
    at = claim.native_at or claim.due_at
    post = render(claim.content, channel, publisher.config.media_dir, key=claim.key, publish_at=at)
    try:
        state, result = await adapter.scheduled_status(claim.native_id, post)
    except PublishError as exc:
        if isinstance(exc, PermanentError) and exc.needs_attention:
            await publisher.flag(claim.channel, redact(str(exc)))
        await publisher.record(
            store.record_retry, claim, now, redact(f"checking the scheduled post: {exc}"), now + CHECK_AFTER
        )
        return False
    if state == "published" and result is not None:
        return await publisher.published(claim, adapter, result, note=f"published by {claim.network} at its time")
    if state == "scheduled" and now - at < GIVE_UP_AFTER:
        await publisher.record(
            store.record_retry, claim, now, f"{claim.network} has not published it yet", now + CHECK_AFTER
        )
        return False
    if state == "scheduled":
        try:
            await adapter.cancel_scheduled(claim.native_id)
        except PublishError as exc:
            await publisher.record(
                store.record_retry, claim, now, redact(f"deleting the late post failed: {exc}"), now + CHECK_AFTER
            )
            return False
        note = f"{claim.network} did not publish it within {GIVE_UP_AFTER} of its time; deleted there, publishing now"
        log.warning("post %d to %s: %s", claim.post_id, claim.channel, note, extra=_extra(claim, "network_late"))
        await publisher.record(store.record_disarmed, claim, now, note, now)
        return False
    message = (
        f"the post scheduled on {claim.network} ({claim.native_id}) is gone there (deleted on the network?); "
        f"nothing was published: `smm retry {claim.post_id}` publishes it now"
    )
    await publisher.record(store.record_native_gone, claim, now, message)
    log.error("post %d to %s: %s", claim.post_id, claim.channel, message, extra=_extra(claim, "scheduled_post_gone"))
    return False


async def delete_stale(publisher: Publisher, adapters: dict[str, Adapter]) -> None:
    """Delete on the networks the posts handed over for deliveries since cancelled, failed or moved."""
    for delivery_id, channel, native_id, status in await publisher.db_call(store.stale_native):
        adapter = adapters.get(channel)
        if adapter is None:
            continue
        now = publisher.clock()
        try:
            await adapter.cancel_scheduled(native_id)
        except PublishError as exc:
            log.warning("could not delete the post %s scheduled on %s: %s; trying again later", native_id, channel, exc)
            continue
        why = "cancelled" if status == "cancelled" else ("failed" if status == "failed" else "moved")
        note = f"the post scheduled on the network ({native_id}) was deleted there: the delivery was {why}"
        await publisher.db_call(store.forget_native, delivery_id, native_id, now, note)
        log.info("%s: deleted the scheduled post %s (delivery %s)", channel, native_id, why, extra={"channel": channel})
