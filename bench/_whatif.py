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
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import replace
from datetime import datetime
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


def main(argv: list[str]) -> None:
    unknown = PATCHES - {"wake", "index"}
    if unknown:
        raise SystemExit(f"bench._whatif: unknown patches {sorted(unknown)}")
    if "index" in PATCHES:
        patch_index(argv)
    if "wake" in PATCHES:
        patch_wake()
    print(f"bench._whatif: patches {sorted(PATCHES) or 'none'}", flush=True)
    from scheduler.cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
