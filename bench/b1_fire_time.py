"""B1 fire-time accuracy: 50 posts/s for several minutes over 2,000 channels with 1,000,000 future posts queued.

Lateness = when the fake network's handler started on the first publish request of a post - the post's due time.
Goal: p99 <= 25 ms, max <= 250 ms, 0 skipped. Telegram and VK fakes with their real limits (see bench/stream.py).
"""

from __future__ import annotations

from bench.common import Row, ms, parser, report
from bench.stream import per_network, run_stream, summary


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--duration", type=float, default=None, help="seconds of load (default 180; --quick 20)")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--queued", type=int, default=None, help="future posts queued (default 1,000,000; --quick 20,000)")
    args = p.parse_args()
    duration = args.duration or (20.0 if args.quick else 180.0)
    n_future = args.queued or (20_000 if args.quick else 1_000_000)
    result = run_stream("b1", rate=args.rate, duration=duration, n_future=n_future)
    s = summary(result)
    nets = per_network(result)
    rows = [
        Row("posts due", f"{s['planned']:,} at {args.rate:g}/s for {duration:g}s, {n_future:,} future queued"),
        Row("lateness p50", ms(s["p50"])),
        Row("lateness p99", ms(s["p99"]), "<= 25 ms", s["p99"] <= 0.025, _why(s["p99"], 0.025)),
        Row("lateness max", ms(s["max"]), "<= 250 ms", s["max"] <= 0.250, _why(s["max"], 0.250)),
        Row("skipped: not sent by 40 s after the last due time", str(s["skipped"]), "0", s["skipped"] == 0),
        Row("published twice", str(result.duplicates), "0", result.duplicates == 0),
    ]
    for net, v in sorted(nets.items()):
        rows.append(
            Row(
                f"{net} lateness p50 / p99 / max",
                f"{ms(v['p50'])} / {ms(v['p99'])} / {ms(v['max'])} ({v['n']:,} posts)",
            )
        )
    rows.append(Row("daemon CPU during the load", f"{100 * result.cpu_seconds / result.window:.1f}% of one core"))
    rows.append(Row("Telegram 429 (real limits) / VK errors", f"{result.tg_flood_429} / {dict(result.vk_errors) or 0}"))
    notes = [
        "Channels: 1,950 Telegram channels on 4 bots and 50 VK communities on 10 tokens; fakes in the benchmark "
        "process (threaded HTTP servers), the daemon in its own process; both share the machine's 2 cores.",
        f"Daemon log: {result.extra['daemon_log']}",
    ]
    if not args.no_results:
        report("B1", "fire-time accuracy", rows, notes, quick=args.quick)
    else:
        print(rows)


def _why(value: float, goal: float) -> str:
    if value <= goal:
        return ""
    return f"{value / goal:.1f}x the goal (+{(value - goal) * 1000:.0f} ms)"


if __name__ == "__main__":
    main()
