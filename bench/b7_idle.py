"""B7 idle: 1,000,000 posts queued, nothing due for an hour; watch the daemon for a 10-minute window.

Goal: <= 0.1 % of one core, <= 1 wake-up a minute, RSS <= 80 MB. CPU from /proc/<pid>/stat; wake-ups counted two
ways: waits that slept and returned (``strace -f -T -e trace=...``, when strace is installed: a call of epoll_wait,
futex, ... that lasted 1 ms or more is a sleep that ended, a wake-up; the event loop's zero-timeout polls while it
has work are not), per thread, and context switches of all the daemon's threads (/proc/<pid>/task/*/status).
The daemon runs with the default [daemon] settings (tick 2 min since f4e5a41, 60 s before; lease 5 min).
RSS goal: 80 MB = 80,000,000 bytes = 76.3 MiB (B5 reads it the same way).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import signal
import subprocess
import time

from bench.common import (
    BenchTelegram,
    Daemon,
    Row,
    channels_toml,
    context_switches,
    cpu_seconds,
    env_for,
    fresh_folder,
    instrument,
    parser,
    report,
    rss_mb,
    seeded_sqlite,
    tg_token,
    write_config,
)

SYSCALLS = "epoll_wait,epoll_pwait,select,pselect6,poll,ppoll,futex,nanosleep,clock_nanosleep"


def _wake_ups(strace_out: pathlib.Path) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """From ``strace -f -T`` output: calls per system call, calls that slept (>= 1 ms) per system call, and the
    threads that slept and woke."""
    calls: dict[str, int] = {}
    wakes: dict[str, int] = {}
    threads: set[str] = set()
    if not strace_out.exists():
        return calls, wakes, threads
    for line in strace_out.read_text().splitlines():
        # "<tid> name(args) = r <secs>", or split in two by another thread: "<tid> <... name resumed>...) = r <secs>"
        m = re.match(r"(\d+)\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>).*<(\d+\.\d+)>$", line)
        if not m:
            continue
        tid, name, took = m.group(1), m.group(2), float(m.group(3))
        calls[name] = calls.get(name, 0) + 1
        if took >= 0.001:
            wakes[name] = wakes.get(name, 0) + 1
            threads.add(tid)
    return calls, wakes, threads


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--window", type=float, default=None, help="seconds watched (default 600; --quick 60)")
    p.add_argument("--settle", type=float, default=30.0, help="seconds after start before watching")
    args = p.parse_args()
    window = args.window or (60.0 if args.quick else 600.0)
    n_future = 1_000_000
    folder = fresh_folder("b7")
    db_url = seeded_sqlite(folder / "smm.db", n_future)
    tg = instrument(BenchTelegram([tg_token(b) for b in range(4)]))
    tg.start()
    config = write_config(folder, db_url, channels_toml(tg.url, "http://127.0.0.1:9", lambda i: i % 4, lambda i: 0))
    daemon = Daemon(config, env_for(4, 1), folder / "daemon.log")
    strace_out = folder / "strace.txt"
    try:
        daemon.wait_log("daemon started", timeout=300)
        time.sleep(args.settle)
        pid = daemon.pid
        cpu0, ctx0, t0 = cpu_seconds(pid), context_switches(pid), time.monotonic()
        rss_max = 0.0
        while time.monotonic() - t0 < window:
            time.sleep(max(0.0, min(5.0, window - (time.monotonic() - t0))))
            rss_max = max(rss_max, rss_mb(pid)[0])
        cpu1, ctx1, t1 = cpu_seconds(pid), context_switches(pid), time.monotonic()
        rss, hwm = rss_mb(pid)
        threads = len(list(pathlib.Path(f"/proc/{pid}/task").iterdir()))
        # Then count the system calls with strace, in a window of its own: tracing stops the process at every
        # system call, which would inflate the CPU and context-switch figures above.
        traced_for = 0.0
        if shutil.which("strace"):
            traced_for = min(window, 180.0)
            tracer = subprocess.Popen(
                ["strace", "-f", "-T", "-e", f"trace={SYSCALLS}", "-o", str(strace_out), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(traced_for)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
    finally:
        daemon.stop()
        tg.stop()
    minutes = (t1 - t0) / 60
    traced_minutes = max(traced_for, 1e-9) / 60
    cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
    ctx_per_min = (ctx1 - ctx0) / minutes
    calls, wakes, threads_woken = _wake_ups(strace_out) if traced_for else ({}, {}, set())
    traced = bool(calls)
    loop_wakes = sum(v for k, v in wakes.items() if k in ("epoll_wait", "epoll_pwait", "select", "poll", "ppoll"))
    all_wakes = sum(wakes.values())
    rows = [
        Row(
            "CPU while idle",
            f"{cpu_pct:.3f}% of one core ({cpu1 - cpu0:.2f} s in {t1 - t0:.0f} s)",
            "<= 0.1%",
            cpu_pct <= 0.1,
            "" if cpu_pct <= 0.1 else f"{cpu_pct / 0.1:.1f}x the goal",
        ),
        Row(
            "event-loop wake-ups (epoll_wait/select/poll that slept and returned)",
            f"{loop_wakes / traced_minutes:.1f} a minute (strace, {traced_for:.0f} s)"
            if traced
            else "strace unavailable",
            "<= 1 a minute",
            (loop_wakes / traced_minutes <= 1) if traced else None,
        ),
        Row(
            "wake-ups of all threads (every wait that slept and returned: the loop's, the database threads')",
            f"{all_wakes / traced_minutes:.1f} a minute in {len(threads_woken)} threads "
            f"({', '.join(f'{k} {v}' for k, v in sorted(wakes.items()))}; calls of any length: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})"
            if traced
            else "n/a",
            "<= 1 a minute",
            (all_wakes / traced_minutes <= 1) if traced else None,
        ),
        Row(
            "context switches, all threads",
            f"{ctx_per_min:.1f} a minute ({threads} threads)",
            "<= 1 a minute",
            ctx_per_min <= 1,
            "" if ctx_per_min <= 1 else f"{ctx_per_min:.0f}x the goal",
        ),
        Row(
            "RSS",
            f"{rss:.1f} MiB now, {rss_max:.1f} MiB max in the window, {hwm:.1f} MiB peak since start",
            "<= 80 MB",
            hwm * 1.048576 <= 80,
            "" if hwm * 1.048576 <= 80 else f"peak {hwm * 1.048576:.0f} MB",
        ),
    ]
    notes = [
        f"{n_future:,} posts queued on 2,000 Telegram channels (+50 VK channels configured), the first due 6 h ahead; "
        f"watched for {window:.0f} s after {args.settle:.0f} s of settling.",
        f"strace output: {strace_out}; daemon log: {folder / 'daemon.log'}",
    ]
    if not args.no_results:
        report("B7", "idle with 1M queued", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
