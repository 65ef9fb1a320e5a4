"""B9 isolation: ``retry_after = 30`` on one Telegram chat and a 30-s throttle on one VK token during the B1 load.

Goal: the throttled scope resumes within retry_after + 0.5 s; the other channels' lateness p99 changes <= 10 %.
Two runs of the same workload (bench/stream.py): a baseline, then one where, 30 s in, the Telegram fake answers
every send to chat tg0007 with HTTP 429 ``retry_after`` = the seconds left of a 30-s window, and the VK fake answers
every call with one user token (5 communities) with error 6 for 30 s (VK's only per-token "slow down"; it carries no
retry_after, so resumption is timed from the window's end). The throttled scopes carry dense traffic (a post every
3 s on the chat, every second on the token) so their resumption can be timed.
"""

from __future__ import annotations

from bench.common import Row, ms, parser, report
from bench.stream import Faults, run_stream, scope_of, summary


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--duration", type=float, default=None, help="seconds of load per run (default 100; --quick 70)")
    p.add_argument("--queued", type=int, default=None, help="future posts queued (default 1,000,000; --quick 20,000)")
    args = p.parse_args()
    duration = args.duration or (70.0 if args.quick else 100.0)
    n_future = args.queued or (20_000 if args.quick else 1_000_000)
    faults = Faults()
    base = run_stream("b9-base", rate=50.0, duration=duration, n_future=n_future, faults=None)
    hit = run_stream("b9-fault", rate=50.0, duration=duration, n_future=n_future, faults=faults)
    keep_base = scope_of(base, faults)
    keep_hit = scope_of(hit, faults)
    sb, sh = summary(base, keep_base), summary(hit, keep_hit)
    change = (sh["p99"] - sb["p99"]) / sb["p99"] if sb["p99"] > 0 else float("nan")
    e = hit.extra
    tg_delay = e.get("tg_resume_delay")
    vk_delay = e.get("vk_resume_delay")
    rows = [
        Row(
            "Telegram chat: first send after retry_after ends - its end",
            "never resumed"
            if tg_delay is None
            else f"{tg_delay:+.2f} s (429 answered {e.get('tg_429_answers')}x, "
            f"retry_after {e.get('tg_retry_after')} s)",
            "<= +0.5 s",
            tg_delay is not None and tg_delay <= 0.5,
            ""
            if tg_delay is not None and tg_delay <= 0.5
            else (f"{tg_delay - 0.5:.1f} s late" if tg_delay is not None else "never resumed"),
        ),
        Row(
            "VK token: first wall.post after the 30-s error-6 window - its end",
            "never resumed"
            if vk_delay is None
            else f"{vk_delay:+.2f} s (error 6 answered {e.get('vk_error6_answers')}x)",
            "<= +0.5 s",
            vk_delay is not None and vk_delay <= 0.5,
            ""
            if vk_delay is not None and vk_delay <= 0.5
            else (f"{vk_delay - 0.5:.1f} s late" if vk_delay is not None else "never resumed"),
        ),
        Row(
            "others' lateness p99: baseline -> with the throttles",
            f"{ms(sb['p99'])} -> {ms(sh['p99'])} ({100 * change:+.0f}%)",
            "change <= 10%",
            change <= 0.10,
            "" if change <= 0.10 else f"{100 * change:.0f}% worse",
        ),
        Row(
            "others' lateness p50 / max, with the throttles",
            f"{ms(sh['p50'])} / {ms(sh['max'])}; skipped {sh['skipped']}",
        ),
        Row("others' lateness p50 / max, baseline", f"{ms(sb['p50'])} / {ms(sb['max'])}; skipped {sb['skipped']}"),
    ]
    notes = [
        f"{n_future:,} future posts queued; {duration:.0f} s of load per run; throttles from 30 s to 60 s in.",
        f"Daemon logs: {base.extra['daemon_log']}, {hit.extra['daemon_log']}",
    ]
    if not args.no_results:
        report("B9", "isolation of a throttled scope", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
