"""B10 PostgreSQL scale-out: 1, 2 and 4 ``smm run`` daemons on one PostgreSQL share a backlog of due posts.

Goal: combined claim rate >= 2,000 posts/s; 0 double sends. The network is the ``outbox`` adapter (no fake can take
2,000 requests/s on this machine; outbox has no network, only a folder per post), its folders on /dev/shm so the
disk does not set the pace; 100 outbox channels (one lease group each). 1,000,000 future posts queued besides.
Claim rate = attempts opened / (last attempt's start - first's), from the attempts table.
Also measured: the SQL claim path alone (store.claim_each + store.record_published_each in 4 threads, no
daemon), the ceiling the daemons could reach if publishing cost nothing; and the CPU a post of the daemons and of
PostgreSQL, which share the machine's cores.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    PG_URL,
    Daemon,
    Item,
    Row,
    cpu_seconds,
    create_schema,
    fresh_folder,
    insert_items,
    parser,
    postgres_cpu_seconds,
    report,
    write_config,
)

SCHEMA = "bench_b10"
CHANNELS = 100
SHM = Path("/dev/shm/smm-bench-b10")


def url_for(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def psql(sql: str, schema: str | None = None) -> list[tuple]:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        if schema:
            conn.execute(f"SET search_path TO {schema}")
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def run(n_daemons: int, url: str, due_n: int, folder: Path) -> dict[str, float]:
    psql("DELETE FROM attempts; DELETE FROM instances; DELETE FROM lease_groups", SCHEMA)
    psql("DELETE FROM posts WHERE text LIKE 'due %'", SCHEMA)
    out = SHM / f"n{n_daemons}"
    shutil.rmtree(out, ignore_errors=True)
    body = "".join(
        f'[[channels]]\nname = "out{i:03d}"\nnetwork = "outbox"\npath = "{out / f"o{i:03d}"}"\n'
        for i in range(CHANNELS)
    )
    config = write_config(folder / f"n{n_daemons}", url, body)
    daemons = [Daemon(config, {}, folder / f"n{n_daemons}" / f"daemon{j}.log") for j in range(n_daemons)]
    samplers = []
    try:
        for d in daemons:
            d.wait_log("daemon started", timeout=300)
        time.sleep(3)
        cpu0 = [cpu_seconds(d.pid) for d in daemons]
        pg0 = postgres_cpu_seconds()
        now = datetime.now(UTC)
        items = [Item(f"out{k % CHANNELS:03d}", "outbox", now, f"due {k}") for k in range(due_n)]
        t0 = time.time()
        insert_items(url, items)
        deadline = time.time() + 600
        done = 0
        while time.time() < deadline:
            done = psql("SELECT count(*) FROM deliveries WHERE status = 'published'", SCHEMA)[0][0]
            if done >= due_n:
                break
            time.sleep(0.5)
        wall = time.time() - t0
        cpu = sum(cpu_seconds(d.pid) - c for d, c in zip(daemons, cpu0, strict=True))
        pg_cpu = postgres_cpu_seconds() - pg0
    finally:
        for s in samplers:
            s.stop()
        for d in daemons:
            d.stop()
    first, last, opened = psql("SELECT min(started_at), max(started_at), count(*) FROM attempts", SCHEMA)[0]
    per_owner = psql("SELECT owner, count(*) FROM attempts GROUP BY owner", SCHEMA)
    twice_db = psql(
        "SELECT count(*) FROM (SELECT delivery_id FROM attempts WHERE outcome = 'published' GROUP BY delivery_id "
        "HAVING count(*) > 1) x",
        SCHEMA,
    )[0][0]
    keys: Counter[str] = Counter()
    for channel in out.iterdir() if out.exists() else []:
        for post in channel.iterdir():
            if not post.name.startswith("."):
                keys[post.name.split("-", 1)[1]] += 1
    twice_fs = sum(1 for c in keys.values() if c > 1)
    span = (last - first).total_seconds() if opened > 1 else float("nan")
    return {
        "published": done,
        "claim_rate": (opened - 1) / span if span else float("nan"),
        "wall_rate": done / wall,
        "twice": twice_db + twice_fs,
        "folders": sum(keys.values()),
        "cpu_per_post_ms": 1000 * cpu / max(1, done),
        "pg_cpu_per_post_ms": 1000 * pg_cpu / max(1, done),
        "spread": ", ".join(str(c) for _, c in sorted(per_owner, key=lambda r: -r[1])),
    }


def raw_claims(url: str, seconds: float = 5.0, threads: int = 4) -> float:
    """Claims + records per second through scheduler.store alone, no daemon, no network: each thread claims on its
    share of 100 channels in one statement, then records them published in another, as a daemon's batch does."""
    from scheduler import store
    from scheduler.db import Database

    now = datetime.now(UTC)
    insert_items(url, [Item(f"raw{k % 100}", "outbox", now, f"raw {k}") for k in range(60_000)], wake=False)
    db = Database(url, pool_size=threads)
    count = [0] * threads
    stop = time.monotonic() + seconds
    lease = timedelta(seconds=60)

    def work(i: int) -> None:
        mine = [f"raw{k}" for k in range(i, 100, threads)]
        while time.monotonic() < stop:
            t = datetime.now(UTC)
            with db.write() as s:
                got = [c for c in store.claim_each(s, [(ch, t, f"raw-{i}", lease) for ch in mine]) if c]
            if not got:
                return
            with db.write() as s:
                store.record_published_each(s, [(c, t, "x", None) for c in got])
            count[i] += len(got)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    db.dispose()
    return sum(count) / (time.monotonic() - t0)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--due", type=int, default=None, help="due posts per run (default 10,000; --quick 2,000)")
    args = p.parse_args()
    due_n = args.due or (2_000 if args.quick else 10_000)
    n_future = 20_000 if args.quick else 1_000_000
    folder = fresh_folder("b10")
    psql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    url = url_for(SCHEMA)
    create_schema(url)
    base = datetime.now(UTC) + timedelta(hours=6)
    t = time.monotonic()
    insert_items(
        url,
        [Item(f"out{k % CHANNELS:03d}", "outbox", base + timedelta(seconds=k), f"future {k}") for k in range(n_future)],
        wake=False,
    )
    psql("ANALYZE", SCHEMA)
    seeded = time.monotonic() - t
    results = {n: run(n, url, due_n, folder) for n in (1, 2, 4)}
    raw = raw_claims(url)
    rows = []
    for n, r in results.items():
        rows.append(
            Row(
                f"{n} daemon{'s' if n > 1 else ''}: combined claim rate",
                f"{r['claim_rate']:.0f}/s (published {r['published']:,} at {r['wall_rate']:.0f}/s wall; "
                f"per daemon {r['spread']}; CPU a post: daemons {r['cpu_per_post_ms']:.2f} ms, "
                f"PostgreSQL {r['pg_cpu_per_post_ms']:.2f} ms)",
                ">= 2,000/s",
                r["claim_rate"] >= 2000,
                "" if r["claim_rate"] >= 2000 else f"{100 * (1 - r['claim_rate'] / 2000):.0f} % short",
            )
        )
        rows.append(
            Row(
                f"{n} daemon{'s' if n > 1 else ''}: double sends",
                f"{r['twice']} ({r['folders']:,} outbox folders)",
                "0",
                r["twice"] == 0,
            )
        )
    rows.append(
        Row(
            "SQL claim path alone (claims and records of 25 channels a statement, 4 threads, no daemon)", f"{raw:.0f}/s"
        )
    )
    notes = [
        f"{n_future:,} future posts seeded with COPY in {seeded:.0f} s (then ANALYZE); "
        f"{due_n:,} due posts per run over "
        f"{CHANNELS} outbox channels on /dev/shm; 2 cores shared by the daemons and PostgreSQL.",
        f"Logs: {folder}",
    ]
    if not args.no_results:
        report("B10", "PostgreSQL scale-out", rows, notes, quick=args.quick)
    else:
        print(rows)


if __name__ == "__main__":
    main()
