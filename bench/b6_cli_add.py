"""B6 ``smm add`` on a 1,000,000-row database: wall time (median of 20) next to ``python -c pass`` and
``python -c "import sqlalchemy"``, the modules it imports, and a bulk add of 100,000 posts.

Goal: add <= 1.3 x (startup + import sqlalchemy); none of telegram, vk_api, httpx, apscheduler, alembic imported;
bulk add of 100,000 <= 5 s (``smm import FILE.csv`` when it exists).
"""

from __future__ import annotations

import csv
import re
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    PY,
    REPO,
    Row,
    channels_toml,
    fresh_folder,
    parser,
    report,
    seeded_sqlite,
    write_config,
)

FORBIDDEN = ("telegram", "vk_api", "httpx", "apscheduler", "alembic")


def timed(cmds: list[list[str]], env: dict[str, str], n: int) -> list[list[float]]:
    """Wall times of ``n`` runs of each command, taken in turn (one of each, then again), so that a change in the
    machine's load during the benchmark weighs on every command alike and not on their ratio."""
    out: list[list[float]] = [[] for _ in cmds]
    for _ in range(n):
        for cmd, times in zip(cmds, out, strict=True):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise RuntimeError(f"{cmd} failed: {done.stderr[-500:]}")
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--bulk", type=int, default=None, help="posts in the bulk add (default 100,000; --quick 2,000)")
    args = p.parse_args()
    n = 5 if args.quick else 20
    big = 50_000 if args.quick else 1_000_000
    bulk = args.bulk or (2_000 if args.quick else 100_000)
    folder = fresh_folder("b6")
    db_url = seeded_sqlite(folder / "smm.db", big)
    env_vars = {f"BENCH_TG_{b}": "1:x" for b in range(4)} | {"BENCH_VK_0": "x"}
    config = write_config(
        folder, db_url, channels_toml("http://127.0.0.1:9", "http://127.0.0.1:9", lambda i: i % 4, lambda i: 0)
    )
    small = folder / "one"
    small_config = write_config(
        small, db_url, channels_toml("http://127.0.0.1:9", None, lambda i: 0, lambda i: 0, n_tg=1)
    )
    from tests.support import smm_env

    env = smm_env(env_vars)
    smm = [str(Path(PY).with_name("smm"))] if Path(PY).with_name("smm").exists() else [PY, "-m", "scheduler"]
    t_pass, t_sa, t_add, t_add1, t_help = timed(
        [
            [PY, "-c", "pass"],
            [PY, "-c", "import sqlalchemy"],
            [*smm, "--config", str(config), "add", "benchmark post", "--channel", "tg0001"],
            [*smm, "--config", str(small_config), "add", "benchmark post", "--channel", "tg0000"],
            [*smm, "--version"],
        ],
        env,
        n,
    )
    base = statistics.median(t_pass)
    sa = statistics.median(t_sa)
    add = statistics.median(t_add)
    goal = 1.3 * sa
    # Imports on the add path.
    done = subprocess.run(
        [
            PY,
            "-X",
            "importtime",
            "-m",
            "scheduler",
            "--config",
            str(config),
            "add",
            "imports post",
            "--channel",
            "tg0002",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            modules[m.group(4)] = int(m.group(2))
    tops = {name.split(".")[0] for name in modules}
    bad = sorted(t for t in tops if t in FORBIDDEN)
    heavy = sorted(((us, name) for name, us in modules.items() if "." not in name), reverse=True)[:8]
    # Bulk add.
    helptext = subprocess.run([*smm, "--help"], env=env, capture_output=True, text=True).stdout
    has_import = bool(re.search(r"^\s+import\s", helptext, re.M))
    bulk_row: Row
    bulk_note = ""
    if has_import:
        csv_path = folder / "bulk.csv"
        start = datetime.now(UTC) + timedelta(days=30)
        with csv_path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "channels", "at"])
            for k in range(bulk):
                w.writerow([f"bulk post {k}", f"tg{k % 2000:04d}", (start + timedelta(minutes=k)).isoformat()])
        t0 = time.perf_counter()
        done = subprocess.run(
            [*smm, "--config", str(config), "import", str(csv_path)], env=env, capture_output=True, text=True
        )
        took = time.perf_counter() - t0
        bulk_row = Row(
            f"`smm import` of {bulk:,} posts",
            f"{took:.1f} s (exit {done.returncode})",
            "<= 5 s",
            took <= 5 and done.returncode == 0,
            ""
            if took <= 5 and done.returncode == 0
            else f"{took / 5:.1f}x the goal"
            if done.returncode == 0
            else done.stderr.strip()[:200],
        )
    else:
        # No bulk command: the closest a user has is the service behind `smm add`, one post per transaction.
        from scheduler.config import load_config
        from scheduler.db import Database
        from scheduler.intake import NewPost, add_post

        cfg = load_config(str(config))
        db = Database(cfg.database_url)
        start = datetime.now(UTC) + timedelta(days=30)
        t0 = time.perf_counter()
        done_n = 0
        cap = 120.0
        for k in range(bulk):
            at = (start + timedelta(minutes=k)).isoformat()
            add_post(cfg, db, NewPost(text=f"bulk post {k}", channels=[f"tg{k % 2000:04d}"], at=at), datetime.now(UTC))
            done_n += 1
            if time.perf_counter() - t0 > cap:
                break
        took = time.perf_counter() - t0
        db.dispose()
        projected = took / done_n * bulk
        bulk_row = Row(
            f"bulk add of {bulk:,} posts",
            f"no `smm import` command; through the service behind `smm add` (in one process, a transaction each): "
            f"{done_n:,} in {took:.1f} s = {done_n / took:.0f}/s, {projected:.0f} s projected for {bulk:,}",
            "<= 5 s",
            False,
            f"`smm import` missing; the per-post path is {projected / 5:.0f}x the goal",
        )
        bulk_note = (
            "One `smm add` process per post would cost the add time above per post: "
            f"{bulk * add / 3600:.1f} h for {bulk:,}."
        )
    rows = [
        Row(f"python -c pass (median of {n})", f"{1000 * base:.0f} ms"),
        Row('python -c "import sqlalchemy"', f"{1000 * sa:.0f} ms"),
        Row(
            f"smm add on the {big:,}-row database, 2,050-channel config",
            f"{1000 * add:.0f} ms = {add / sa:.2f} x (startup + import sqlalchemy)",
            f"<= 1.3 x = {1000 * goal:.0f} ms",
            add <= goal,
            "" if add <= goal else f"{1000 * (add - goal):.0f} ms over",
        ),
        Row(
            "smm add, same database, 1-channel config",
            f"{1000 * statistics.median(t_add1):.0f} ms = {statistics.median(t_add1) / sa:.2f} x",
        ),
        Row("smm --version", f"{1000 * statistics.median(t_help):.0f} ms"),
        Row("forbidden modules imported by smm add", ", ".join(bad) or "none", "none", not bad),
        Row("modules imported by smm add", f"{len(modules)} ({len(tops)} top-level packages)"),
        bulk_row,
    ]
    notes = [
        f"Each command ran {n} times in turn with the others (medians), so that the machine's load weighs on all "
        "alike. The project's bytecode was written first, as installing a wheel does: this machine sets "
        "PYTHONDONTWRITEBYTECODE, and an editable install without it compiles every module in every run.",
        "Heaviest top-level imports on the add path (cumulative): "
        + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in heavy),
    ]
    if bulk_note:
        notes.append(bulk_note)
    if not args.no_results:
        report("B6", "smm add on a 1M-row database", rows, notes, quick=args.quick)
    else:
        print(rows, notes)


if __name__ == "__main__":
    main()
