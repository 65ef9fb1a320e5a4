"""Taking a published post down from its network (``smm delete``, an expiry), as an attempt like a publish: claimed
and committed first (:mod:`scheduler.store.deletions`), retried when transient, settled by reading the post back
when unclear (docs/reliability.md#deleting-a-published-post).

- deleted (or the network no longer has the post): the delivery is ``deleted``, with the time;
- a passing error: tried again after a backoff, within the ``[retry]`` policy, then given up as below;
- refused (too old for Telegram, no right, not supported): the delivery stays ``published`` with the error, and the
  operator is told (the ``delivery_failed`` alert);
- unclear (a timeout after sending): the attempt stays open; after ``reconcile_delay`` the post is read back
  (``read_results``) before any resend: gone is deleted, still there is deleted again. A network that cannot be
  read back (Telegram) is sent the delete again: each network answers a delete of a post already gone as done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from adapters import Adapter
from adapters.errors import AmbiguousError, NotSupported, PermanentError, PostTooOld, PublishError, TransientError
from scheduler.alerts import Alert
from scheduler.log import redact
from scheduler.models import Outcome
from scheduler.publisher import Publisher
from scheduler.retry import call_with_retries, decide
from scheduler.store import deletions
from scheduler.store.deletions import Deletion

log = logging.getLogger("smm.delete")


def _extra(d: Deletion, action: str) -> dict[str, object]:
    return {"post_id": d.post_id, "delivery_id": d.delivery_id, "channel": d.channel, "action": action}


def _alert(d: Deletion, text: str) -> Alert:
    """The ``delivery_failed`` alert about a deletion: the post, its channel, and the post's address there."""
    return Alert("delivery_failed", text, channel=d.channel, post_id=d.post_id, link=d.remote_url)


@dataclass
class Deleter:
    """Carries out claimed deletions for the daemon, recording each outcome through ``publisher.record``."""

    publisher: Publisher
    owner: str

    async def delete(self, deletion: Deletion, adapter: Adapter) -> bool:
        """Settle a deletion left unclear, else send it; True once the delivery is ``deleted``."""
        if deletion.open_since is not None:
            settled = await self._settle_unclear(deletion, adapter)
            if not isinstance(settled, Deletion):
                return bool(settled)
            deletion = settled
        return await self._send(deletion, adapter)

    async def _send(self, d: Deletion, adapter: Adapter) -> bool:
        p = self.publisher
        log.log(
            logging.INFO if d.attempt_number > 1 else logging.DEBUG,
            "deleting post %d on %s (attempt %d)",
            d.post_id,
            d.channel,
            d.attempt_number,
            extra=_extra(d, "deleting"),
        )

        async def send() -> None:
            await adapter.delete_post(d.remote_id, d.published_at, p.clock(), d.more_ids)

        try:
            await call_with_retries(send, p.config.retry)
        except AmbiguousError as exc:
            now = p.clock()
            check_at = now + timedelta(seconds=p.config.daemon.reconcile_delay)
            error = redact(f"deletion unclear: {exc}")
            await p.record(deletions.record_delete_in_doubt, d, now, error, check_at)
            log.warning(
                "post %d on %s: %s; reading it back before deleting again",
                d.post_id,
                d.channel,
                error,
                extra=_extra(d, "delete_in_doubt"),
            )
            return False
        except PermanentError as exc:
            await self._refused(d, exc)
            return False
        except TransientError as exc:
            await self._transient(d, exc)
            return False
        return await self._deleted(d, None)

    async def _settle_unclear(self, d: Deletion, adapter: Adapter) -> Deletion | bool | None:
        """Read the post back after an unclear deletion: True when it is gone (recorded), the next attempt when it
        must be deleted again, None when it cannot be told now (looked at again later)."""
        p = self.publisher
        now = p.clock()
        if (now - (d.open_since or now)).total_seconds() < p.config.daemon.reconcile_delay:
            wait = (d.open_since or now) + timedelta(seconds=p.config.daemon.reconcile_delay)
            await p.record(deletions.record_delete_in_doubt, d, now, "deletion unclear; reading it back shortly", wait)
            return None
        try:
            results = await adapter.read_results(d.remote_id)
        except NotSupported:
            why = f"deletion unclear and {adapter.title} cannot be read back: deleting again (gone counts as deleted)"
            return await p.record(deletions.reopen_deletion, d, now, self.owner, Outcome.ABANDONED, why)
        except PublishError as exc:
            retry_at = now + timedelta(seconds=max(30.0, p.config.daemon.reconcile_delay))
            error = redact(f"reading the post back after an unclear deletion: {exc}")
            await p.record(deletions.record_delete_in_doubt, d, now, error, retry_at)
            return None
        if results.gone:
            return await self._deleted(d, "found deleted when read back after an unclear answer")
        why = "still on the network after an unclear deletion: deleting again"
        log.info("post %d on %s: %s", d.post_id, d.channel, why, extra=_extra(d, "delete_again"))
        return await p.record(deletions.reopen_deletion, d, now, self.owner, Outcome.TRANSIENT, why)

    async def _deleted(self, d: Deletion, note: str | None) -> bool:
        if not await self.publisher.record(deletions.record_deleted, d, self.publisher.clock(), note):
            log.error(
                "post %d on %s was deleted but its attempt had already been settled elsewhere",
                d.post_id,
                d.channel,
                extra=_extra(d, "fence"),
            )
            return False
        log.info("deleted post %d on %s", d.post_id, d.channel, extra=_extra(d, "deleted"))
        return True

    async def _refused(self, d: Deletion, exc: PermanentError) -> None:
        p = self.publisher
        if isinstance(exc, PostTooOld) and d.attempt_number > 1:
            message = redact(
                f"an earlier deletion was unclear and it can no longer be deleted or checked ({exc}): "
                "check the channel by hand"
            )
        else:
            message = redact(f"not deleted: {exc}")
        if not await p.record(deletions.record_delete_failed, d, p.clock(), message):
            return
        if exc.needs_attention:
            await p.flag(d.channel, redact(str(exc)))
        log.error("post %d on %s: %s", d.post_id, d.channel, message, extra=_extra(d, "delete_failed"))
        p.alert(_alert(d, message))

    async def _transient(self, d: Deletion, exc: TransientError) -> None:
        p = self.publisher
        now = p.clock()
        message = redact(str(exc))
        decision = decide(d.attempt_number, d.first_at, now, p.config.retry, exc.retry_after)
        if decision.retry_at is None:
            error = f"not deleted: {message}; {decision.reason}. Check the channel, then: smm delete {d.post_id}"
            if await p.record(deletions.record_delete_failed, d, now, error):
                log.error("post %d on %s: %s", d.post_id, d.channel, error, extra=_extra(d, "delete_failed"))
                p.alert(_alert(d, error))
            return
        if await p.record(deletions.record_delete_retry, d, now, f"deleting: {message}", decision.retry_at):
            log.warning(
                "post %d on %s: deleting failed for now (%s); trying again at %s (%s)",
                d.post_id,
                d.channel,
                message,
                decision.retry_at.isoformat(timespec="seconds"),
                decision.reason,
                extra=_extra(d, "delete_retry"),
            )
