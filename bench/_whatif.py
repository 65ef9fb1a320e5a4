"""Run ``smm`` with some of the fixes proposed in bench/RESULTS.md applied as monkeypatches, to measure what each
would change before anyone edits scheduler/: ``SMM_BENCH_WHATIF=wake,index python -m bench._whatif --config ... run``
(bench/common.py's Daemon uses this runner when ``$SMM_BENCH_WHATIF`` is set). Diagnostics only: the patches follow
the daemon of commit db6c32c and are not the product's code.

- ``wake``: the cycle plans its next wake-up at the first queued delivery due strictly after the time it looked at
  (the daemon drops the wake-up when the earliest queued delivery is already due, i.e. the one it just handed to a
  worker, and a finished worker no longer pokes the loop: the next post then waits for the 2-minute tick).
- ``index``: the index ``(channel, status, next_attempt_at)`` (a migration 0006), created before the daemon starts;
  the claim's pick, its "more due" probe and the VK quota planning then search one channel instead of every due
  (or every queued) row.
- ``retry``: a rate-limited publish goes back to the queue for exactly the network's ``retry_after`` (a short one
  is replaced by a 25-35 s jittered backoff today, and the channel's next posts overtake it).
- ``pace``: the worker reserves its slot in the rate limiter after the claim, just before the request (today it
  reserves before the claim, so a claim that waits for the single database thread lets requests bunch up and trip
  the networks' sliding windows). Copies ``Daemon._worker`` of db6c32c with that one change.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

PATCHES = {p.strip() for p in os.environ.get("SMM_BENCH_WHATIF", "").split(",") if p.strip()}


def _next_wake_after(session: Any, after: datetime) -> datetime | None:
    from sqlalchemy import func, select

    from scheduler import claims
    from scheduler.models import Delivery, Status

    queued = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.status == Status.QUEUED, Delivery.next_attempt_at > after
        )
    )
    times = [t for t in (queued, claims.next_lease_expiry(session)) if t is not None]
    return min(times) if times else None


def patch_wake() -> None:
    from scheduler import daemon

    module: Any = daemon
    name = "_look"
    if not hasattr(daemon, "_look"):  # after 13f27ac the cycle's reads live in scheduler.watch
        from scheduler import watch

        module, name = watch, "look"
    original = getattr(module, name)

    def look(session: Any, seen_id: int, due_at: datetime, now: datetime, exclude: set[int]) -> Any:
        result = original(session, seen_id, due_at, now, exclude)
        return replace(result, next_wake=_next_wake_after(session, due_at))

    setattr(module, name, look)


def patch_index(argv: list[str]) -> None:
    from scheduler.config import load_config
    from scheduler.db import sqlite_path

    config = argv[argv.index("--config") + 1] if "--config" in argv else None
    path = sqlite_path(load_config(config).database_url)
    if path is None:
        return
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute(
            "CREATE INDEX IF NOT EXISTS ix_deliveries_channel_status_next_attempt_at "
            "ON deliveries (channel, status, next_attempt_at)"
        )
        conn.commit()
    finally:
        conn.close()


def patch_retry() -> None:
    from scheduler import publisher, retry

    original = retry.decide

    def decide(
        attempts: int, due_at: datetime, now: datetime, policy: Any, retry_after: float | None = None, rng: Any = None
    ) -> Any:
        if retry_after and attempts < policy.max_attempts:
            return retry.Decision(now + timedelta(seconds=retry_after), f"attempt {attempts} of {policy.max_attempts}")
        return original(attempts, due_at, now, policy, retry_after, rng)

    publisher.decide = decide  # type: ignore[assignment]


def patch_pace() -> None:
    import asyncio
    import logging

    from scheduler import claims, daemon
    from scheduler.errors import DatabaseError

    log = logging.getLogger("smm.daemon")

    async def _worker(self: Any, name: str) -> None:
        more = True
        try:
            while more and not self.stopping:
                adapter = self.adapters.get(name)
                if adapter is None or name not in self.config.channel_names:
                    return
                channel = self.config.channel(name)
                if adapter.quotas():
                    await self._plan_quotas(name, adapter)
                paused = self.limiter.paused_until(adapter.rate_limits()) - self.monotonic()
                if paused > 0:  # the network asked for a pause: wait it out before claiming
                    await self._sleep(paused)
                    if self.stopping:
                        return
                if not self.owns(name):
                    return
                claim = await self.db_call(claims.claim, name, self.clock(), self.owner, self._lease())
                if claim is None:
                    return
                more = claim.more_due
                self.inflight.add(claim.delivery_id)
                try:
                    slot = self.host_slots.setdefault(
                        channel.api_root or name, asyncio.Semaphore(daemon.MAX_CONCURRENT_PER_HOST)
                    )
                    async with slot:
                        wait = self.limiter.reserve(adapter.rate_limits(), self.monotonic())
                        if wait > 0:
                            await asyncio.sleep(wait)
                        await self.publisher.publish(claim, adapter, channel)
                finally:
                    self.inflight.discard(claim.delivery_id)
        except DatabaseError as exc:
            self._database_down(exc)
        except Exception:
            log.exception("channel %s: unexpected error in its worker", name, extra={"channel": name})
        finally:
            self.workers.pop(name, None)
            if name in self.rerun:
                self.rerun.discard(name)
                self._start_worker(name)

    daemon.Daemon._worker = _worker  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    unknown = PATCHES - {"wake", "index", "retry", "pace"}
    if unknown:
        raise SystemExit(f"bench._whatif: unknown patches {sorted(unknown)}")
    if "index" in PATCHES:
        patch_index(argv)
    if "wake" in PATCHES:
        patch_wake()
    if "retry" in PATCHES:
        patch_retry()
    if "pace" in PATCHES:
        patch_pace()
    print(f"bench._whatif: patches {sorted(PATCHES) or 'none'}", flush=True)
    from scheduler.cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
