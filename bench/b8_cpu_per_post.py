"""B8 CPU per post at 50 posts/s sustained (claim, request, record), and requests in flight per host.

Goal: <= 25 % of one core; <= 10 requests in flight per host. The B1 workload (bench/stream.py) for a shorter
window; CPU is the daemon process's own (all threads), between the first and the last due time.
"""

from __future__ import annotations

from bench.common import Row, parser, report
from bench.stream import run_stream, summary


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--duration", type=float, default=None, help="seconds of load (default 120; --quick 20)")
    p.add_argument("--queued", type=int, default=None, help="future posts queued (default 1,000,000; --quick 20,000)")
    args = p.parse_args()
    duration = args.duration or (20.0 if args.quick else 120.0)
    n_future = args.queued or (20_000 if args.quick else 1_000_000)
    result = run_stream("b8", rate=50.0, duration=duration, n_future=n_future)
    s = summary(result)
    pct = 100 * result.cpu_seconds / result.window
    sent = len([k for k in result.published])
    # The figure means something only if the daemon kept up with 50 posts/s: a daemon that publishes a quarter of
    # them spends a quarter of the CPU.
    kept_up = sent >= 0.95 * result.planned
    per_post = result.cpu_seconds / max(1, s["n"])
    if pct > 25:
        why = f"{pct / 25:.1f}x the goal"
    elif not kept_up:
        why = f"not measured at 50 posts/s: only {sent:,} of {result.planned:,} published (see B1)"
    else:
        why = ""
    rows = [
        Row(
            "daemon CPU at 50 posts/s",
            f"{pct:.1f}% of one core ({result.cpu_seconds:.1f} s in {result.window:.0f} s)",
            "<= 25% of one core",
            pct <= 25 and kept_up,
            why,
        ),
        Row(
            "CPU per post",
            f"{1000 * per_post:.1f} ms ({s['n']:,} posts sent in the window; "
            f"x 50/s = {100 * per_post * 50:.0f}% of a core)",
        ),
        Row(
            "CPU per post by thread",
            ", ".join(
                f"{kind} {1000 * seconds / max(1, s['n']):.1f} ms"
                for kind, seconds in sorted(result.extra["thread_cpu"].items(), key=lambda kv: -kv[1])
            ),
        ),
        Row(
            "requests in flight per host, max",
            f"Telegram fake {result.tg_max_inflight}, VK fake {result.vk_max_inflight}",
            "<= 10",
            max(result.tg_max_inflight, result.vk_max_inflight) <= 10,
        ),
        Row("published / planned", f"{sent:,} / {result.planned:,}; lateness p99 {1000 * s['p99']:.0f} ms"),
        Row("daemon RSS max", f"{result.max_rss:.1f} MiB"),
    ]
    notes = [f"{n_future:,} future posts queued; channels as B1. Daemon log: {result.extra['daemon_log']}"]
    if not args.no_results:
        report("B8", "CPU per post at 50 posts/s", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
