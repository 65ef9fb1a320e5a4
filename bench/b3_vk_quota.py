"""B3 VK daily quota: 60 posts due within 24 h on one VK community (the fake refuses the 51st with error 214).

Goal: 0 error-214 rejections; the 10 over the limit deferred to the next window and reported in the log and in
``smm queue`` before anything is rejected. The posts are queued through the service behind ``smm add --at``; they
are due one a second from a few seconds ahead (within 24 h, so the run takes a minute, not a day).
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    PY,
    REPO,
    BenchVk,
    Daemon,
    Row,
    create_schema,
    env_for,
    fresh_folder,
    instrument,
    parser,
    report,
    vk_token,
    write_config,
)

LIMIT = 50


def smm_queue(config: str) -> str:
    from tests.support import smm_env

    out = subprocess.run(
        [PY, "-m", "scheduler", "--config", config, "queue", "--channel", "vk00", "--limit", "0"],
        capture_output=True,
        text=True,
        env=smm_env(),
        cwd=REPO,
        timeout=60,
    )
    return out.stdout + out.stderr


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--posts", type=int, default=60)
    args = p.parse_args()
    n = args.posts
    folder = fresh_folder("b3")
    db_url = f"sqlite:///{folder / 'smm.db'}"
    create_schema(db_url)
    vk = instrument(BenchVk({vk_token(0): [100]}))
    assert isinstance(vk, BenchVk)
    vk.start()
    body = (
        f'[[channels]]\nname = "vk00"\nnetwork = "vk"\ngroup_id = 100\ntoken_env = "BENCH_VK_0"\n'
        f'api_url = "{vk.url}"\ntimeout = "10s"\n'
    )
    config = write_config(folder, db_url, body)
    from scheduler.config import load_config
    from scheduler.db import Database
    from scheduler.intake import NewPost, add_post

    cfg = load_config(str(config))
    db = Database(cfg.database_url)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    for k in range(n):
        at = (start + timedelta(seconds=k)).isoformat()
        add_post(cfg, db, NewPost(text=f"limited post {k}", channels=["vk00"], at=at), datetime.now(UTC))
    db.dispose()
    queue_before = smm_queue(str(config))
    daemon = Daemon(config, env_for(0, 1), folder / "daemon.log")
    try:
        daemon.wait_log("daemon started", timeout=120)
        time.sleep(2)
        queue_started = smm_queue(str(config))
        deadline = start.timestamp() + n + 60
        while time.time() < deadline:
            if len(vk.published) >= min(n, LIMIT) and time.time() > start.timestamp() + n + 10:
                break
            time.sleep(1)
    finally:
        daemon.stop()
        vk.stop()
    queue_after = smm_queue(str(config))
    log = daemon.log()
    conn = sqlite3.connect(folder / "smm.db")
    rows = conn.execute("SELECT status, next_attempt_at, note, last_error FROM deliveries ORDER BY due_at").fetchall()
    conn.close()
    horizon = (start + timedelta(hours=23)).strftime("%Y-%m-%d %H:%M:%S")
    deferred = [r for r in rows if r[0] == "queued" and r[1] and r[1] >= horizon]
    noted = [r for r in rows if r[2]]
    failed = [r for r in rows if r[0] in ("failed", "unknown")]
    e214 = sum(1 for _, code, _ in vk.errors if code == 214)
    log_lines = [
        line for line in log.splitlines() if "defer" in line.lower() or "quota" in line.lower() or "a day" in line
    ]
    in_queue = [line for line in queue_after.splitlines() if "defer" in line.lower() or "quota" in line.lower()]
    in_queue_early = [line for line in queue_started.splitlines() if "defer" in line.lower() or "quota" in line.lower()]
    want = max(0, n - LIMIT)
    rows_out = [
        Row("published", f"{len(vk.published)} of {n}", f"{min(n, LIMIT)}", len(vk.published) == min(n, LIMIT)),
        Row("error-214 rejections from the fake", str(e214), "0", e214 == 0),
        Row(
            "deferred to the next 24-h window",
            f"{len(deferred)} (with a note: {len(noted)})",
            str(want),
            len(deferred) == want,
        ),
        Row("failed or unknown", str(len(failed)), "0", not failed),
        Row(
            "reported in the log",
            f"{len(log_lines)} lines",
            ">= 1",
            bool(log_lines),
            log_lines[0][:160] if log_lines else "",
        ),
        Row(
            "reported by `smm queue` once the daemon started",
            f"{len(in_queue_early)} lines (after the run: {len(in_queue)})",
            ">= 1 before anything is rejected",
            bool(in_queue_early),
        ),
    ]
    notes = [
        f"`smm queue --channel vk00` before the daemon started: "
        f"{sum(1 for x in queue_before.splitlines() if 'defer' in x.lower())} "
        "lines mention a deferral (deferral is the daemon's job here, so none is expected before it runs).",
        "Sample of the log: " + (" / ".join(line[20:200] for line in log_lines[:2]) or "none"),
        "Sample of `smm queue` after the run: " + (" / ".join(x[:200] for x in in_queue[:2]) or "none"),
        f"Daemon log: {folder / 'daemon.log'}",
    ]
    if not args.no_results:
        report("B3", "VK daily quota known ahead", rows_out, notes, quick=args.quick)
    else:
        print(rows_out, notes)


if __name__ == "__main__":
    main()
