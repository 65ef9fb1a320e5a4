"""B5 start with 1,000,000 posts queued: from process start to the first due post's request at the network, and RSS.

Goal: <= 1.5 s; RSS <= 80 MB whatever the queue size. One post is due (a second ago) on a Telegram channel of the
fake (real limits on); the clock starts just before ``subprocess.Popen`` of ``smm run``. Three runs at 1M, one at 1k.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    BenchTelegram,
    Daemon,
    Item,
    Row,
    channels_toml,
    env_for,
    fresh_folder,
    insert_items,
    instrument,
    parser,
    report,
    rss_mb,
    seeded_sqlite,
    tg_token,
    write_config,
)


def one_start(q: int, run: int) -> tuple[float, float, float, float]:
    """(seconds to the first request, RSS then, RSS peak 10 s later, seconds to 'daemon started')."""
    folder = fresh_folder(f"b5-{q}-{run}")
    db_url = seeded_sqlite(folder / "smm.db", q)
    insert_items(
        db_url, [Item("tg0000", "telegram", datetime.now(UTC) - timedelta(seconds=1), "first due")], wake=False
    )
    tg = instrument(BenchTelegram([tg_token(b) for b in range(4)]))
    tg.start()
    config = write_config(folder, db_url, channels_toml(tg.url, "http://127.0.0.1:9", lambda i: i % 4, lambda i: 0))
    t_start = time.time()
    daemon = Daemon(config, env_for(4, 1), folder / "daemon.log")
    try:
        first = None
        rss_first = 0.0
        ready = float("nan")
        while time.time() - t_start < 120:
            if ready != ready and "daemon started" in daemon.log():
                ready = time.time()
            sends = [r for r in list(tg.requests) if r.path.endswith("/sendMessage")]
            if sends:
                first = sends[0].received_at
                rss_first = rss_mb(daemon.pid)[0]
                break
            time.sleep(0.005)
        if ready != ready:
            ready = daemon.wait_log("daemon started", timeout=120)
        time.sleep(10)
        peak = rss_mb(daemon.pid)[1]
    finally:
        daemon.stop()
        tg.stop()
    started = daemon.started
    return (first - started) if first else float("inf"), rss_first, peak, ready - started


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    big = 50_000 if args.quick else 1_000_000
    runs = [one_start(big, i) for i in range(args.runs)]
    small = one_start(1000, 0)
    first = statistics.median(r[0] for r in runs)
    peak = max(r[2] for r in runs)
    rows = [
        Row(
            f"process start -> first due post at the network ({big:,} queued)",
            f"median {first:.2f} s (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})",
            "<= 1.5 s",
            first <= 1.5,
            "" if first <= 1.5 else f"{first - 1.5:.2f} s over ({first / 1.5:.1f}x)",
        ),
        Row("same with 1,000 queued", f"{small[0]:.2f} s"),
        Row(
            "'daemon started' seen in the log after (polled)",
            f"{statistics.median(r[3] for r in runs):.2f} s at {big:,}, {small[3]:.2f} s at 1k",
        ),
        Row(
            f"RSS peak (VmHWM) 10 s after the first post, {big:,} queued",
            f"{peak:.1f} MiB (at the first post {statistics.median(r[1] for r in runs):.1f} MiB)",
            "<= 80 MB",
            peak * 1.048576 <= 80,
            "" if peak * 1.048576 <= 80 else f"{peak * 1.048576:.0f} MB",
        ),
        Row("RSS peak with 1,000 queued", f"{small[2]:.1f} MiB", "<= 80 MB", small[2] * 1.048576 <= 80),
    ]
    notes = ["2,000 Telegram + 50 VK channels configured; the database file is in the page cache (copied just before)."]
    if not args.no_results:
        report("B5", "start with 1M queued", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
