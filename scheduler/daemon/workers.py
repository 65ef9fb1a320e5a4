"""The per-channel workers: one task per channel with due posts, which paces the channel, claims one delivery at a
time (the attempt committed before the network is called) and records each outcome while it claims the next."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters import Adapter
from scheduler import store
from scheduler.alerts import Alert
from scheduler.config import ChannelConfig
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.errors import DatabaseError
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter, pace
from scheduler.store import Claim

log = logging.getLogger("smm.daemon")

MAX_CONCURRENT_PER_HOST = 10


class Workers:
    """The channels' workers: started for the channels a look found due, at most one per channel."""

    def __init__(self, rt: Runtime, publisher: Publisher, limiter: Limiter, membership: Membership) -> None:
        self.rt = rt
        self.publisher = publisher
        self.limiter = limiter
        self.membership = membership
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.rerun: set[str] = set()
        self.left_for_next_run: set[str] = set()  # run --once: channels paused by their network
        self.host_slots: dict[str, asyncio.Semaphore] = {}

    def start(self, name: str) -> None:
        """Start the channel's worker; one running already looks again once it is done."""
        rt = self.rt
        if rt.stopping or name in self.left_for_next_run:
            return
        if name in self.tasks:
            self.rerun.add(name)
            return
        if name not in rt.adapters:
            if name not in rt.config.channel_names:
                rt.warn_once(
                    f"unconfigured:{name}",
                    f"deliveries are due on channel {name!r}, which is not in "
                    f"{rt.config.path.name}; they wait until it is configured again (or are cancelled)",
                )
            else:
                rt.warn_once(
                    f"broken:{name}",
                    f"deliveries are due on channel {name!r} but it is disabled: {rt.broken.get(name, 'no adapter')}",
                )
            return
        self.tasks[name] = asyncio.create_task(self._work(name), name=f"channel:{name}")

    async def plan_quotas(self, name: str, adapter: Adapter) -> None:
        """Defer what would exceed the channel's quotas, before the network has to refuse it."""
        for quota in adapter.quotas():
            label = f"{name} ({quota.scope})"
            # Through the group commit: it runs before each claim on the channel, and alone it cost a commit a post.
            deferred = await self.rt.writes.call(store.quota.defer_over_quota, name, quota, self.rt.clock(), label)
            for post_id, due_at, goes_at in deferred:
                log.warning(
                    "post %d to %s: %s",
                    post_id,
                    name,
                    store.quota.deferral_note(label, quota, due_at, goes_at),
                    extra={"channel": name, "post_id": post_id, "action": "deferred"},
                )
                # The alert names the channel itself: the quota by its scope alone.
                note = store.quota.deferral_note(quota.scope, quota, due_at, goes_at)
                self.rt.alert(Alert("quota_deferred", note, channel=name, post_id=post_id))
            if deferred:  # deferred posts have new times, maybe within what was read ahead: look again
                self.rt.poke()

    async def _work(self, name: str) -> None:
        """Publish the channel's due deliveries one at a time, paced; it was started because one was due, and each
        claim says whether another one is (no extra query). A worker that stops before that (a claim that took
        nothing, an error, the channel gone or owned elsewhere) leaves what it was started for to the next look.

        A post's outcome is recorded while the next one is claimed: both writes share a transaction of the group
        commit, where they used to follow each other (a channel's posts went at one per two transactions)."""
        rt = self.rt
        more = True
        drained = False
        recording: asyncio.Task[bool] | None = None
        try:
            while more and not rt.stopping:
                adapter = rt.adapters.get(name)
                if adapter is None or name not in rt.config.channel_names:
                    return
                channel = rt.config.channel(name)
                if adapter.quotas():
                    await self.plan_quotas(name, adapter)
                paused = self.limiter.paused_until(adapter.rate_limits()) - rt.monotonic()
                if rt.once and paused > rt.config.retry.in_call_max_wait:
                    self.left_for_next_run.add(name)
                    log.info(
                        "channel %s: the network asked for a %.0fs pause; its due posts wait for the next run",
                        name,
                        paused,
                        extra={"channel": name, "action": "paused"},
                    )
                    return
                if not await pace(self.limiter, adapter.rate_limits(), rt.monotonic, rt.sleep, rt.is_stopping):
                    return
                if not self.membership.owns(name):
                    return
                claim = await rt.batch_call(store.claim, name, rt.clock(), rt.owner, rt.lease())
                last, recording = recording, None
                if last is not None:
                    await self._recorded(last, claim)
                if claim is None:
                    return
                more = claim.more_due
                recording = await self._publish(claim, adapter, channel)
            drained = not more
        except asyncio.CancelledError:
            if recording is not None:
                recording.cancel()
                recording = None
            raise
        except Exception as exc:
            self._failed(name, exc)
        finally:
            if recording is not None:  # the last post's outcome, still being recorded
                try:
                    await recording
                except Exception as exc:
                    self._failed(name, exc)
            if not drained:
                rt.ahead.forget()
            self.tasks.pop(name, None)
            if name in self.rerun:
                # Something came due on the channel while this worker was busy: look again at once.
                self.rerun.discard(name)
                self.start(name)

    def _failed(self, name: str, exc: Exception) -> None:
        if isinstance(exc, DatabaseError):
            self.rt.health.down(exc)
        else:  # a bug must not silently stop a channel; the next cycle starts a new worker
            log.exception("channel %s: unexpected error in its worker", name, extra={"channel": name}, exc_info=exc)

    async def _recorded(self, recording: asyncio.Task[bool], claim: Claim | None) -> None:
        """Wait for the last post's outcome to be written, which shared a transaction with ``claim`` (or came
        before it); if it cannot be, the claimed post is handed back unsent (best effort: the database may be down)
        and the error raised: a claim left open would be "unknown" after a restart where it cannot be read back."""
        try:
            await recording
        except Exception:
            if claim is not None:
                with contextlib.suppress(DatabaseError):
                    await self.rt.db_call(store.release, claim, self.rt.clock(), "claimed but never sent")
            raise

    async def _publish(self, claim: Claim, adapter: Adapter, channel: ChannelConfig) -> asyncio.Task[bool] | None:
        """Publish a claimed delivery; return once the network has answered, with the task recording its outcome
        when that is still running (None when it is done, or raise its error)."""
        rt = self.rt
        slot = self.host_slots.setdefault(channel.api_root or channel.name, asyncio.Semaphore(MAX_CONCURRENT_PER_HOST))
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: object = None) -> None:
            if not answered.done():
                answered.set_result(None)

        rt.inflight.add(claim.delivery_id)
        task = asyncio.create_task(self.publisher.publish(claim, adapter, channel, slot, on_sent=wake))
        task.add_done_callback(wake)
        task.add_done_callback(lambda _: rt.landed(claim.delivery_id))
        try:
            await answered
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            task.result()
            return None
        return task
