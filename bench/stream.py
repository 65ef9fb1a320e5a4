"""The B1 workload, shared by B1, B8 and B9: posts due at a steady rate over 2,000 channels while a million future
posts sit in the queue, published by a real ``smm run`` to the Telegram and VK fakes with their real limits on.

Channels: 1,950 Telegram channels on 4 bots (channel i on bot i % 4) and 50 VK communities on 10 user tokens
(community i on token i % 10), interleaved so that every 40th post goes to VK. Post k is due at
``T0 + k / rate`` and its text carries ``k``; the fakes stamp each request with the time its handler started, so
lateness = start of the first publish request for post k - its due time.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    N_TG,
    N_VK,
    BenchTelegram,
    BenchVk,
    Daemon,
    Item,
    Sampler,
    channels_toml,
    env_for,
    fresh_folder,
    insert_items,
    instrument,
    percentile,
    seeded_sqlite,
    tg_chat,
    tg_name,
    tg_token,
    vk_name,
    vk_token,
)

BOTS, VK_TOKENS = 4, 10
STREAM_TG = 1950  # Telegram channels carrying the stream; with the 50 VK communities, 2,000 channels
LEAD = 8.0  # seconds between inserting the stream and its first due time
TEXT = re.compile(r"^(s|x|y)(\d+) ")


def stream_channels() -> list[tuple[str, str]]:
    """2,000 (channel, network) pairs, a VK community every 40th."""
    order: list[tuple[str, str]] = []
    tg = iter(range(STREAM_TG))
    for slot in range(STREAM_TG + N_VK):
        if slot % 40 == 39:
            order.append((vk_name(slot // 40), "vk"))
        else:
            order.append((tg_name(next(tg)), "telegram"))
    return order


@dataclass
class Faults:
    """B9: a forced ``retry after`` on one Telegram chat and an error-6 window on one VK token."""

    at: float = 30.0  # seconds after T0
    seconds: float = 30.0
    chat_index: int = 7
    vk_token_index: int = 3


@dataclass
class StreamResult:
    planned: int
    lateness: dict[int, float]  # post -> first request start - due (seconds)
    published: set[int]
    due: dict[int, float]
    channel_of: dict[int, str]
    cpu_seconds: float
    window: float
    max_rss: float
    tg_max_inflight: int
    vk_max_inflight: int
    tg_flood_429: int
    vk_errors: Counter[int]
    tg_requests: int
    vk_requests: int
    duplicates: int
    extra: dict[str, Any] = field(default_factory=dict)

    def lateness_of(self, keep: Any = None) -> list[float]:
        return [v for k, v in self.lateness.items() if keep is None or keep(k)]


def run_stream(
    name: str,
    *,
    rate: float,
    duration: float,
    n_future: int,
    faults: Faults | None = None,
    drain: float = 40.0,
) -> StreamResult:
    folder = fresh_folder(name)
    db_url = seeded_sqlite(folder / "smm.db", n_future)
    tg = instrument(BenchTelegram([tg_token(b) for b in range(BOTS)]))
    vk_groups = {vk_token(t): [100 + i for i in range(N_VK) if i % VK_TOKENS == t] for t in range(VK_TOKENS)}
    vk = instrument(BenchVk(vk_groups))
    tg.start()
    vk.start()
    assert isinstance(tg, BenchTelegram) and isinstance(vk, BenchVk)
    floods = Counter[str]()
    inner_flood = BenchTelegram._flood_check

    def counting_flood(self: BenchTelegram, token: str, chat: Any, count: int) -> None:
        try:
            inner_flood(self, token, chat, count)
        except Exception:
            floods["429"] += 1
            raise

    tg._flood_check = counting_flood.__get__(tg)  # type: ignore[method-assign]
    body = channels_toml(tg.url, vk.url, lambda i: i % BOTS, lambda i: i % VK_TOKENS)
    from bench.common import write_config

    config = write_config(folder, db_url, body)
    # Diagnostics: SMM_BENCH_SQL_TRACE=FILE runs the daemon under bench/_sqltrace.py (each statement's count and time).
    trace = os.environ.get("SMM_BENCH_SQL_TRACE")
    daemon = Daemon(
        config,
        env_for(BOTS, VK_TOKENS),
        folder / "daemon.log",
        runner=("-m", "bench._sqltrace") if trace else ("-m", "scheduler"),
        extra_env={"BENCH_SQL_TRACE": trace} if trace else {},
    )
    sampler: Sampler | None = None
    try:
        daemon.wait_log("daemon started", timeout=300)
        sampler = Sampler(daemon.pid, 0.25)
        sampler.start()
        t0 = time.time() + LEAD
        base = datetime.fromtimestamp(t0, UTC)
        order = stream_channels()
        n = int(rate * duration)
        due: dict[int, float] = {}
        channel_of: dict[int, str] = {}
        items: list[Item] = []
        for k in range(n):
            channel, network = order[k % len(order)]
            due[k] = t0 + k / rate
            channel_of[k] = channel
            items.append(Item(channel, network, base + timedelta(seconds=k / rate), f"s{k} due {due[k]:.3f}"))
        extra_ids = 10_000_000
        if faults is not None:
            # The throttled scopes carry dense traffic, so their resumption can be timed: the chat a post every
            # 3 s (its 20-a-minute ceiling), the VK token's five communities a post a second between them.
            chat = tg_name(faults.chat_index)
            for j in range(int(duration / 3)):
                k = extra_ids + j
                due[k], channel_of[k] = t0 + 3 * j, chat
                items.append(Item(chat, "telegram", base + timedelta(seconds=3 * j), f"x{k} due {due[k]:.3f}"))
            groups = [i for i in range(N_VK) if i % VK_TOKENS == faults.vk_token_index]
            for j in range(int(duration)):
                k = extra_ids * 2 + j
                g = vk_name(groups[j % len(groups)])
                due[k], channel_of[k] = t0 + j + 0.5, g
                items.append(Item(g, "vk", base + timedelta(seconds=j + 0.5), f"y{k} due {due[k]:.3f}"))
        insert_items(db_url, items)
        timers: list[threading.Timer] = []
        if faults is not None:

            def throttle() -> None:
                end = time.monotonic() + faults.seconds
                tg.throttles[tg_chat(faults.chat_index)] = end
                vk.throttles[vk_token(faults.vk_token_index)] = end
                vk_window.update(start=time.time(), end=time.time() + faults.seconds)

            vk_window: dict[str, float] = {}
            timer = threading.Timer(max(0.0, t0 + faults.at - time.time()), throttle)
            timer.start()
            timers.append(timer)
        last_due = max(due.values())
        print(f"{name}: {len(items)} posts due from T0 for {last_due - t0:.0f}s; daemon pid {daemon.pid}", flush=True)

        def texts_published() -> set[int]:
            got = set()
            for record in list(tg.published):
                m = TEXT.match(record["text"] or "")
                if m:
                    got.add(int(m.group(2)))
            for record in list(vk.published):
                m = TEXT.match(record["message"] or "")
                if m:
                    got.add(int(m.group(2)))
            return got

        deadline = last_due + drain
        while time.time() < deadline:
            if time.time() > last_due and len(texts_published()) >= len(due):
                break
            time.sleep(1.0)
        cpu = sampler.cpu_between(t0, last_due)
        extra_threads = sampler.threads_between(t0, last_due)
        window = sampler.span(t0, last_due)
    finally:
        if sampler is not None:
            sampler.stop()
        daemon.stop()
        tg.stop()
        vk.stop()
    first: dict[int, float] = {}
    copies: Counter[int] = Counter()
    tg_requests = vk_requests = 0
    for request in list(tg.requests):
        if request.path.endswith("/sendMessage"):
            tg_requests += 1
            m = TEXT.match(request.params.get("text", ""))
            if m:
                k = int(m.group(2))
                first.setdefault(k, request.received_at)
    for request in list(vk.requests):
        if request.path.endswith("/wall.post"):
            vk_requests += 1
            m = TEXT.match(request.params.get("message", ""))
            if m:
                k = int(m.group(2))
                first.setdefault(k, request.received_at)
    for record in tg.published:
        m = TEXT.match(record["text"] or "")
        if m:
            copies[int(m.group(2))] += 1
    for record in vk.published:
        m = TEXT.match(record["message"] or "")
        if m:
            copies[int(m.group(2))] += 1
    lateness = {k: first[k] - due[k] for k in first if k in due}
    extra: dict[str, Any] = {"t0": t0, "daemon_log": str(folder / "daemon.log"), "thread_cpu": extra_threads}
    if faults is not None:
        extra.update(_fault_figures(tg, vk, faults, vk_window))
    return StreamResult(
        planned=len(due),
        lateness=lateness,
        published=set(copies),
        due=due,
        channel_of=channel_of,
        cpu_seconds=cpu,
        window=window,
        max_rss=sampler.max_rss() if sampler else float("nan"),
        tg_max_inflight=tg.max_inflight,  # type: ignore[attr-defined]
        vk_max_inflight=vk.max_inflight,  # type: ignore[attr-defined]
        tg_flood_429=floods["429"] - len(tg.throttle_log),
        vk_errors=Counter(code for _, code, method in vk.errors),
        tg_requests=tg_requests,
        vk_requests=vk_requests,
        duplicates=sum(1 for c in copies.values() if c > 1),
        extra=extra,
    )


def _fault_figures(tg: BenchTelegram, vk: BenchVk, faults: Faults, vk_window: dict[str, float]) -> dict[str, Any]:
    """When each throttled scope was told to wait, and when it next succeeded."""
    out: dict[str, Any] = {}
    chat = tg_chat(faults.chat_index)
    hits = [(t, r) for c, t, r in tg.throttle_log if c == chat]
    if hits:
        t1, retry = hits[0]
        allowed = t1 + retry
        sends = [
            r.received_at
            for r in tg.requests
            if r.path.endswith("/sendMessage") and r.params.get("chat_id") == str(chat)
        ]
        after = [t for t in sends if t >= allowed - 1e-3]
        out["tg_first_429"] = t1
        out["tg_retry_after"] = retry
        out["tg_429_answers"] = len(hits)
        out["tg_resume_delay"] = (min(after) - allowed) if after else None
    token = vk_token(faults.vk_token_index)
    if vk_window:
        end = vk_window["end"]
        ok_posts = [
            r.received_at
            for r in vk.requests
            if r.path.endswith("/wall.post") and r.params.get("access_token") == token and r.received_at >= end
        ]
        out["vk_window"] = (vk_window["start"], end)
        out["vk_error6_answers"] = sum(1 for tok, _ in vk.throttle_log if tok == token)
        out["vk_resume_delay"] = (min(ok_posts) - end) if ok_posts else None
    return out


def scope_of(result: StreamResult, faults: Faults) -> Any:
    """A predicate: True for posts outside the throttled scopes (their chat, the VK token's communities)."""
    chat = tg_name(faults.chat_index)
    groups = {vk_name(i) for i in range(N_VK) if i % VK_TOKENS == faults.vk_token_index}

    def keep(k: int) -> bool:
        return result.channel_of[k] != chat and result.channel_of[k] not in groups and k < 10_000_000

    return keep


def summary(result: StreamResult, keep: Any = None) -> dict[str, float]:
    late = result.lateness_of(keep)
    planned = [k for k in result.due if keep is None or keep(k)]
    skipped = sum(1 for k in planned if k not in result.published)
    return {
        "n": len(late),
        "p50": percentile(late, 50),
        "p99": percentile(late, 99),
        "max": max(late) if late else float("nan"),
        "skipped": skipped,
        "planned": len(planned),
    }


def per_network(result: StreamResult) -> dict[str, dict[str, float]]:
    by: dict[str, list[float]] = defaultdict(list)
    for k, v in result.lateness.items():
        by["vk" if result.channel_of[k].startswith("vk") else "telegram"].append(v)
    return {
        net: {"p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v), "n": len(v)} for net, v in by.items()
    }


__all__ = ["N_TG", "STREAM_TG", "Faults", "StreamResult", "per_network", "run_stream", "scope_of", "summary"]
