"""Deliveries whose outcome is unclear: recording an attempt in doubt, and settling it later by reading the channel
back, sending again where that cannot duplicate, or asking a person.

:class:`scheduler.publisher.Publisher` calls into this module with itself (:class:`Publisher` here is what this
module needs of it, a protocol, so that this module does not import the publisher back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from adapters import Adapter, OutgoingPost
from adapters.errors import PublishError, ReadBackUnsupported
from scheduler import native, store
from scheduler.alerts import Alert
from scheduler.config import ChannelConfig
from scheduler.log import redact
from scheduler.models import Outcome
from scheduler.store import Claim
from scheduler.timefmt import format_local

log = logging.getLogger("smm.publish")
READ_BACK_SLACK = timedelta(minutes=2)


class Publisher(native.Publisher, Protocol):
    """What settling needs of :class:`scheduler.publisher.Publisher`."""

    @property
    def alert(self) -> Callable[[Alert], None]: ...

    async def rendered(self, claim: Claim, channel: ChannelConfig) -> OutgoingPost:
        """The post as sent to ``channel``."""


def log_extra(claim: Claim, **more: object) -> dict[str, object]:
    """The structured fields of a log line about ``claim``."""
    return {"post_id": claim.post_id, "delivery_id": claim.delivery_id, "channel": claim.channel, **more}


def claim_alert(event: str, claim: Claim, text: str) -> Alert:
    """An alert about ``claim``."""
    return Alert(event, text, channel=claim.channel, post_id=claim.post_id)


async def record_in_doubt(publisher: Publisher, claim: Claim, adapter: Adapter, message: str) -> None:
    """Record that ``claim``'s attempt may or may not have reached the network, to be settled by :func:`reconcile`
    (at once when the network deduplicates a resend, else after ``reconcile_delay``)."""
    now = publisher.clock()
    delay = 0.0 if adapter.idempotent_window else publisher.config.daemon.reconcile_delay
    await publisher.record(store.record_in_doubt, claim, now, redact(message), now + timedelta(seconds=delay))
    log.warning(
        "post %d to %s: %s; checking the channel %s",
        claim.post_id,
        claim.channel,
        redact(message),
        "now" if not delay else f"in {delay:g}s",
        extra=log_extra(claim, action="in_doubt"),
    )


async def reconcile(publisher: Publisher, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> None:
    """Settle a delivery whose attempt may or may not have reached the network."""
    if claim.arming:
        await native.reconcile_arm(publisher, claim, adapter, channel)
        return
    now = publisher.clock()
    if claim.open_since is None:
        await publisher.db_call(store.release, claim, now, "claimed but never sent")
        return
    post = await publisher.rendered(claim, channel)
    since = claim.open_since
    age = (now - since).total_seconds()
    if adapter.can_read_back:
        try:
            found = await adapter.find_published(post, since - READ_BACK_SLACK)
        except ReadBackUnsupported:
            pass
        except PublishError as exc:
            if exc.needs_attention:
                await publisher.flag(claim.channel, redact(str(exc)))
                log.error(
                    "channel %s needs attention: %s (post %d stays in doubt until it can be checked)",
                    claim.channel,
                    redact(str(exc)),
                    claim.post_id,
                    extra=log_extra(claim, action="needs_attention"),
                )
            await _check_later(publisher, claim, now, since, f"could not read {claim.channel} back: {exc}")
            return
        else:
            if found is not None:
                await publisher.published(claim, adapter, found, note="found on the network after an unclear outcome")
                return
            window = adapter.idempotent_window or 0.0
            if age >= publisher.config.daemon.reconcile_delay or age < window:
                await _resend(publisher, claim, now, f"not on {claim.channel} after an unclear outcome; sending again")
                return
            wait = publisher.config.daemon.reconcile_delay - age
            await publisher.db_call(
                store.record_in_doubt,
                claim,
                now,
                "outcome unknown; reading the channel back again shortly",
                now + timedelta(seconds=wait),
            )
            return
    if adapter.idempotent_window and age < adapter.idempotent_window:
        await _resend(
            publisher, claim, now, f"in doubt; resending with the same key inside {claim.network}'s dedup window"
        )
        return
    if channel.on_uncertain == "retry":
        log.warning(
            "post %d to %s: the outcome of attempt %d is unknown and %s cannot be read back; sending again "
            'because on_uncertain = "retry" (a duplicate is possible)',
            claim.post_id,
            claim.channel,
            claim.attempt_number,
            claim.network,
            extra=log_extra(claim, action="resend_uncertain"),
        )
        await _resend(publisher, claim, now, "outcome unknown; sent again (on_uncertain = retry)")
        return
    local = format_local(since, channel.timezone, weekday=False)
    message = (
        f"the outcome is unknown and {claim.network} cannot be read back: check {claim.channel} for this post "
        f"around {local}, then run `smm resolve {claim.post_id} --published [--url URL]` or "
        f"`smm resolve {claim.post_id} --retry`"
    )
    if await publisher.record(store.record_unknown, claim, now, message):
        log.error("post %d to %s: %s", claim.post_id, claim.channel, message, extra=log_extra(claim, action="unknown"))
        publisher.alert(claim_alert("delivery_unknown", claim, message))


async def _resend(publisher: Publisher, claim: Claim, now: datetime, note: str) -> None:
    if await publisher.record(store.record_retry, claim, now, note, now, Outcome.NOT_FOUND):
        log.warning("post %d to %s: %s", claim.post_id, claim.channel, note, extra=log_extra(claim, action="resend"))


async def _check_later(publisher: Publisher, claim: Claim, now: datetime, since: datetime, message: str) -> None:
    if now - since > publisher.config.retry.max_age:
        text = (
            f"{message}; gave up checking after {publisher.config.retry.max_age}: check {claim.channel} by hand, "
            f"then `smm resolve {claim.post_id} --published` or `--retry`"
        )
        if await publisher.record(store.record_unknown, claim, now, redact(text)):
            log.error("post %d to %s: %s", claim.post_id, claim.channel, redact(text), extra=log_extra(claim))
            publisher.alert(claim_alert("delivery_unknown", claim, redact(text)))
        return
    retry_in = min(publisher.config.retry.backoff_cap, max(publisher.config.daemon.reconcile_delay, 30.0))
    await publisher.record(store.record_in_doubt, claim, now, redact(message), now + timedelta(seconds=retry_in))
    log.warning(
        "post %d to %s: %s; trying again in %.0fs",
        claim.post_id,
        claim.channel,
        redact(message),
        retry_in,
        extra=log_extra(claim, action="reconcile_failed"),
    )
