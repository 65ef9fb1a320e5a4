"""B2 burst: 10,000 posts due at the same second on one Telegram bot over 2,000 channels, plus 1,000 on one VK token.

Goal: >= 95 % of the ceiling (Telegram 30 messages/s per bot; VK 3 requests/s per user token) until drained; HTTP 429
and VK error 6 <= 0.1 % of requests; each channel's posts go out in their order. Fakes with their real limits.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

from bench.common import (
    N_VK,
    BenchTelegram,
    BenchVk,
    Daemon,
    Item,
    Row,
    Sampler,
    channels_toml,
    env_for,
    fresh_folder,
    insert_items,
    instrument,
    parser,
    percentile,
    report,
    seeded_sqlite,
    tg_name,
    tg_token,
    vk_name,
    vk_token,
    write_config,
)

TEXT = re.compile(r"^b(\d+) (\S+) (\d+)")
TG_CEILING, VK_CEILING = 30.0, 3.0


def rate_figures(times: list[float], ceiling: float) -> tuple[float, float, float]:
    """(mean rate first..last success, share of the ceiling, 10th percentile of 10-second windows' share)."""
    if len(times) < 2:
        return float("nan"), float("nan"), float("nan")
    times = sorted(times)
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span
    windows = []
    t = times[0]
    while t + 10 <= times[-1]:
        windows.append(sum(1 for x in times if t <= x < t + 10) / 10 / ceiling)
        t += 10
    return rate, rate / ceiling, percentile(windows, 10) if windows else float("nan")


def main() -> None:
    args = parser(__doc__).parse_args()
    n_tg, n_vk = (300, 30) if args.quick else (10_000, 1_000)
    n_future = 20_000 if args.quick else 1_000_000
    folder = fresh_folder("b2")
    db_url = seeded_sqlite(folder / "smm.db", n_future)
    tg = instrument(BenchTelegram([tg_token(0)]))
    vk = instrument(BenchVk({vk_token(0): [100 + i for i in range(N_VK)]}))
    assert isinstance(tg, BenchTelegram) and isinstance(vk, BenchVk)
    tg.start()
    vk.start()
    floods = Counter[str]()
    inner = BenchTelegram._flood_check

    def counting(self: BenchTelegram, token: str, chat: object, count: int) -> None:
        try:
            inner(self, token, chat, count)  # type: ignore[arg-type]
        except Exception:
            floods["429"] += 1
            raise

    tg._flood_check = counting.__get__(tg)  # type: ignore[method-assign]
    config = write_config(folder, db_url, channels_toml(tg.url, vk.url, lambda i: 0, lambda i: 0))
    daemon = Daemon(config, env_for(1, 1), folder / "daemon.log")
    sampler = None
    try:
        daemon.wait_log("daemon started", timeout=300)
        sampler = Sampler(daemon.pid, 1.0)
        sampler.start()
        due = datetime.fromtimestamp(int(time.time()) + 6, UTC)
        items = []
        # Per channel j = 0, 1, 2...: the same due second, so order falls back to the insertion (id) order.
        for k in range(n_tg):
            channel = tg_name(k % 2000)
            items.append(Item(channel, "telegram", due, f"b{k} {channel} {k // 2000}"))
        for k in range(n_vk):
            channel = vk_name(k % N_VK)
            items.append(Item(channel, "vk", due, f"b{n_tg + k} {channel} {k // N_VK}"))
        insert_items(db_url, items)
        t0 = due.timestamp()
        budget = n_tg / TG_CEILING * 1.6 + 120
        print(f"b2: {n_tg} Telegram + {n_vk} VK posts due at {due:%H:%M:%S}; waiting up to {budget:.0f}s", flush=True)
        deadline = time.time() + budget
        while time.time() < deadline:
            if len(tg.published) >= n_tg and len(vk.published) >= n_vk:
                break
            time.sleep(2)
        cpu = sampler.cpu_between(t0, time.time())
    finally:
        if sampler is not None:
            sampler.stop()
        daemon.stop()
        tg.stop()
        vk.stop()
    tg_ok = [r["time"] for r in tg.published]
    vk_ok = [r["time"] for r in vk.published]
    tg_sends = [r for r in tg.requests if r.path.endswith("/sendMessage")]
    vk_calls = [r for r in vk.requests if r.path.startswith("/method/")]
    vk6 = sum(1 for _, code, _ in vk.errors if code == 6)
    order_broken = []
    for records, field in ((tg.published, "text"), (vk.published, "message")):
        seq: dict[str, list[int]] = defaultdict(list)
        for r in records:
            m = TEXT.match(r[field] or "")
            if m:
                seq[m.group(2)].append(int(m.group(3)))
        order_broken += [c for c, s in seq.items() if s != sorted(s)]
    tg_rate, tg_share, tg_p10 = rate_figures(tg_ok, TG_CEILING)
    vk_rate, vk_share, vk_p10 = rate_figures(vk_ok, VK_CEILING)
    tg_drain = max(tg_ok) - t0 if tg_ok else float("nan")
    vk_drain = max(vk_ok) - t0 if vk_ok else float("nan")
    rows = [
        Row(
            "Telegram published",
            f"{len(tg.published):,} of {n_tg:,} in {tg_drain:.0f}s",
            f"{n_tg:,}",
            len(tg.published) == n_tg,
        ),
        Row(
            "Telegram rate first..last send",
            f"{tg_rate:.2f}/s = {100 * tg_share:.1f}% of 30/s (10-s windows, 10th pct: {100 * tg_p10:.0f}%)",
            ">= 95% of the ceiling",
            tg_share >= 0.95,
            "" if tg_share >= 0.95 else f"{100 * (0.95 - tg_share):.1f} points short",
        ),
        Row(
            "Telegram 429s",
            f"{floods['429']} of {len(tg_sends):,} requests ({100 * floods['429'] / max(1, len(tg_sends)):.2f}%)",
            "<= 0.1%",
            floods["429"] <= 0.001 * len(tg_sends),
        ),
        Row(
            "VK published",
            f"{len(vk.published):,} of {n_vk:,} in {vk_drain:.0f}s",
            f"{n_vk:,}",
            len(vk.published) == n_vk,
        ),
        Row(
            "VK rate first..last post",
            f"{vk_rate:.2f}/s = {100 * vk_share:.1f}% of 3/s (10-s windows, 10th pct: {100 * vk_p10:.0f}%)",
            ">= 95% of the ceiling",
            vk_share >= 0.95,
            "" if vk_share >= 0.95 else f"{100 * (0.95 - vk_share):.1f} points short",
        ),
        Row(
            "VK error 6",
            f"{vk6} of {len(vk_calls):,} requests ({100 * vk6 / max(1, len(vk_calls)):.2f}%)",
            "<= 0.1%",
            vk6 <= 0.001 * len(vk_calls),
        ),
        Row("channels whose order broke", str(len(order_broken)), "0", not order_broken, ", ".join(order_broken[:5])),
        Row("daemon CPU while draining", f"{cpu:.1f} s"),
        Row("requests in flight per host, max", f"Telegram {tg.max_inflight}, VK {vk.max_inflight}"),  # type: ignore[attr-defined]
    ]
    notes = [
        f"{n_future:,} future posts queued besides the burst; one bot for 2,000 Telegram channels, one VK user token "
        f"for {N_VK} communities ({n_vk // N_VK} posts each, under the 50-a-day quota).",
        "Rates count successful publishes between the first and the last; "
        "VK counts every API request (no uploads here).",
        f"Daemon log: {folder / 'daemon.log'}",
    ]
    if not args.no_results:
        report("B2", "burst drain at the network ceiling", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
