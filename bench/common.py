"""Shared setup for the benchmarks of issue 7: the machine, the results file, the fake networks with their real
limits, a standard channel layout, fast seeding of a million queued posts, and watching a daemon process.

The standard layout: 2,000 Telegram channels ``tg0000``..``tg1999`` (chat ids ``-1001000000000 - i``) and 50 VK
communities ``vk00``..``vk49`` (group ids ``100 + i``). Which bot or token each channel uses is chosen per
benchmark in its config; the channel names stay the same, so one seeded database of 1,000,000 future posts (spread
over the Telegram channels, due from six hours ahead on) is built once and copied for every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.base import FakeServer  # noqa: E402
from tests.fakes.telegram import FakeChat, FakeTelegram  # noqa: E402
from tests.fakes.vk import FakeGroup, FakeVk  # noqa: E402

BENCH = REPO / "bench"
RESULTS = BENCH / "RESULTS.md"
WORK = Path(os.environ.get("SMM_BENCH_WORK", "/tmp/smm-bench"))
CACHE = WORK / "cache"
PY = sys.executable
PG_URL = os.environ.get("SMM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

N_TG, N_VK = 2000, 50
FUTURE_OFFSET = timedelta(hours=6)  # the million queued posts are due from here on
CACHE_MAX_AGE = 4 * 3600.0  # a cached seed is reused while its first post is still > 2 h ahead


def tg_name(i: int) -> str:
    return f"tg{i:04d}"


def vk_name(i: int) -> str:
    return f"vk{i:02d}"


def tg_chat(i: int) -> int:
    return -1001000000000 - i


def tg_token(bot: int) -> str:
    return f"{700000 + bot}:BENCH-TOKEN-{bot:03d}-not-real-xxxxxxxx"


def vk_token(t: int) -> str:
    return f"vk1.a.BENCH-USER-{t:03d}-not-real"


def vk_user(t: int) -> int:
    return 5000 + t


# -- the machine and the results file -----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def postgres_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


def machine() -> dict[str, str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "scheduler", "adapters"], cwd=REPO, capture_output=True, text=True
    )
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{_ram_gib():.1f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version() or "not reachable",
        "kernel": platform.release(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "fsync": fsync_latency(WORK),
        "commit": commit.stdout.strip() + (" (scheduler/ or adapters/ modified)" if dirty.stdout.strip() else ""),
    }


def fsync_latency(folder: Path, samples: int = 100) -> str:
    """fsync of a 4-KiB append in ``folder``, as each SQLite commit pays (synchronous = FULL): median, p99 and max.
    Every claim commits before its request goes out, so a disk whose fsync stalls shows in B1's lateness."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times = []
    try:
        for _ in range(samples):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
            time.sleep(0.005)
    finally:
        os.close(fd)
        path.unlink()
    return f"{ms(percentile(times, 50))} / {ms(percentile(times, 99))} / {ms(max(times))}"


@dataclass
class Row:
    """One figure of a benchmark: what, the measured value, the goal, and whether it was met."""

    what: str
    value: str
    goal: str = ""
    ok: bool | None = None
    why: str = ""

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "info"
        return "pass" if self.ok else "MISS"


def command_line() -> str:
    args = [PY, "-m", f"bench.{Path(sys.argv[0]).stem}", *sys.argv[1:]]
    return "cd " + shlex.quote(str(REPO)) + " && " + " ".join(shlex.quote(a) for a in args)


def report(bench: str, title: str, rows: Sequence[Row], notes: Sequence[str] = (), *, quick: bool = False) -> None:
    """Print the figures and append them to bench/RESULTS.md with the machine, the date and the command."""
    info = machine()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## {bench}: {title}{' (--quick: smoke sizes, not the goal sizes)' if quick else ''}", ""]
    lines.append(f"- date: {stamp}; commit {info['commit']}")
    lines.append(
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, Linux {info['kernel']}; "
        f"Python {info['python']}, SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}; "
        f"load average at the end {info['load']} (the machine is shared with other test runs); fsync p50 / p99 / "
        f"max {info['fsync']}"
    )
    lines.append(f"- command: `{command_line()}`")
    lines += ["", "| figure | measured | goal | verdict |", "| --- | --- | --- | --- |"]
    for row in rows:
        verdict = row.verdict + (f": {row.why}" if row.why else "")
        lines.append(f"| {row.what} | {row.value} | {row.goal} | {verdict} |")
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results (issue 7)\n\nEach section is appended by one run of a script in bench/.\n"
        )
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(text)


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help="shrink the sizes for a smoke run (figures are not the goal's)")
    p.add_argument("--no-results", action="store_true", help="print only; do not append to bench/RESULTS.md")
    return p


# -- statistics ---------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- the fakes, recording request start times and requests in flight ----------------------------------------------


class _Stamped(list):  # type: ignore[type-arg]
    """``FakeServer.requests``: each request appended gets the time its handler started (not after the body)."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def append(self, item: Any) -> None:
        item.received_at = getattr(self._local, "t0", item.received_at)
        super().append(item)


def instrument(fake: FakeServer) -> FakeServer:
    """Stamp every request with its start time and count the requests in flight (``fake.max_inflight``)."""
    local = threading.local()
    lock = threading.Lock()
    fake.requests = _Stamped(local)  # type: ignore[assignment]
    fake.inflight = 0  # type: ignore[attr-defined]
    fake.max_inflight = 0  # type: ignore[attr-defined]
    inner = fake._dispatch

    def dispatch(h: Any) -> None:
        local.t0 = time.time()
        with lock:
            fake.inflight += 1  # type: ignore[attr-defined]
            fake.max_inflight = max(fake.max_inflight, fake.inflight)  # type: ignore[attr-defined]
        try:
            inner(h)
        finally:
            with lock:
                fake.inflight -= 1  # type: ignore[attr-defined]

    fake._dispatch = dispatch  # type: ignore[method-assign]
    return fake


class BenchTelegram(FakeTelegram):
    """FakeTelegram with its real flood limits, a chat lookup by dict (2,000 chats), and per-chat throttles."""

    def __init__(self, tokens: Iterable[str], n_chats: int = N_TG) -> None:
        chats = [FakeChat(tg_chat(i), f"benchchan{i}") for i in range(n_chats)]
        super().__init__(tokens=tuple(tokens), chats=chats, limits=True)
        self._by_ref = {str(c.id): c for c in chats} | {f"@{c.username}".lower(): c for c in chats}
        self.throttles: dict[int, float] = {}  # chat id -> monotonic end of a forced "retry after" window
        self.throttle_log: list[tuple[int, float, int]] = []  # (chat id, wall time, retry_after answered)

    def _find_chat(self, ref: str) -> FakeChat | None:
        return self._by_ref.get(ref) or self._by_ref.get(ref.lower())

    def _flood_check(self, token: str, chat: FakeChat, count: int) -> None:
        end = self.throttles.get(chat.id)
        if end is not None:
            left = end - time.monotonic()
            if left > 0:
                retry = max(1, math.ceil(left))
                self.throttle_log.append((chat.id, time.time(), retry))
                from tests.fakes.telegram import ApiError

                raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        super()._flood_check(token, chat, count)


class BenchVk(FakeVk):
    """FakeVk with its real limits (3 requests/s per token, 50 wall posts a day per community) and token throttles."""

    def __init__(self, tokens_groups: dict[str, list[int]]) -> None:
        users = {token: vk_user(i) for i, token in enumerate(tokens_groups)}
        groups = []
        for token, gids in tokens_groups.items():
            for gid in gids:
                groups.append(FakeGroup(gid, name=f"Bench {gid}", managers={users[token]: 3}))
        super().__init__(user_tokens=users, community_tokens={}, groups=groups, limits=True)
        self.throttles: dict[str, float] = {}  # token -> monotonic end of a forced error-6 window
        self.throttle_log: list[tuple[str, float]] = []
        self.errors: list[tuple[float, int, str]] = []  # (wall time, VK error code, method)

    def _rate_check(self, token: str) -> None:
        end = self.throttles.get(token)
        if end is not None and end > time.monotonic():
            self.throttle_log.append((token, time.time()))
            from tests.fakes.vk import VkError

            raise VkError(6, "Too many requests per second")
        super()._rate_check(token)

    def _handle_method(self, request: Any) -> Any:
        response = super()._handle_method(request)
        if b'"error"' in response.body[:20]:
            code = json.loads(response.body)["error"]["error_code"]
            self.errors.append((time.time(), int(code), self.fault_key(request)))
        return response


# -- configs ------------------------------------------------------------------------------------------------------


DEFAULT_SETTINGS = """
[schedule]
timezone = "UTC"

[daemon]
shutdown_grace = "10s"
"""


def channels_toml(
    tg_url: str | None,
    vk_url: str | None,
    tg_bot_of: Callable[[int], int],
    vk_token_of: Callable[[int], int],
    n_tg: int = N_TG,
    n_vk: int = N_VK,
) -> str:
    parts = []
    if tg_url is not None:
        for i in range(n_tg):
            parts.append(
                f'[[channels]]\nname = "{tg_name(i)}"\nnetwork = "telegram"\nchat_id = "{tg_chat(i)}"\n'
                f'token_env = "BENCH_TG_{tg_bot_of(i)}"\napi_url = "{tg_url}"\ntimeout = "10s"\n'
            )
    if vk_url is not None:
        for i in range(n_vk):
            parts.append(
                f'[[channels]]\nname = "{vk_name(i)}"\nnetwork = "vk"\ngroup_id = {100 + i}\n'
                f'token_env = "BENCH_VK_{vk_token_of(i)}"\napi_url = "{vk_url}"\ntimeout = "10s"\n'
            )
    return "\n".join(parts)


def write_config(folder: Path, db_url: str, channels: str, settings: str = DEFAULT_SETTINGS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(f'{settings}\n[database]\nurl = "{db_url}"\n\n{channels}\n', encoding="utf-8")
    return path


def env_for(n_bots: int, n_vk_tokens: int) -> dict[str, str]:
    env = {f"BENCH_TG_{b}": tg_token(b) for b in range(n_bots)}
    env |= {f"BENCH_VK_{t}": vk_token(t) for t in range(n_vk_tokens)}
    return env


# -- seeding ------------------------------------------------------------------------------------------------------


def _sqlite_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def create_schema(db_url: str) -> None:
    """An empty database at the current schema, through ``scheduler.migrate.upgrade``."""
    from scheduler.db import Database
    from scheduler.migrate import upgrade

    db = Database(db_url)
    try:
        upgrade(db)
    finally:
        db.dispose()


@dataclass
class Item:
    """A delivery to insert: channel, network, due time, text."""

    channel: str
    network: str
    due: datetime
    text: str


def insert_items(db_url: str, items: Sequence[Item], *, wake: bool = True) -> None:
    """Insert posts with one delivery each, in one transaction, straight into the tables (executemany / COPY)."""
    if not items:
        return
    now = datetime.now(UTC)
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("BEGIN IMMEDIATE")
            start = (conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0]) + 1
            dstart = (conn.execute("SELECT coalesce(max(id), 0) FROM deliveries").fetchone()[0]) + 1
            stamp = _sqlite_time(now)
            conn.executemany(
                "INSERT INTO posts (id, text, link, category, media, created_at) VALUES (?, ?, NULL, 'news', '[]', ?)",
                ((start + k, it.text, stamp) for k, it in enumerate(items)),
            )
            conn.executemany(
                "INSERT INTO deliveries (id, post_id, channel, network, status, due_at, slotted, next_attempt_at, "
                "attempts, key, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, 0, ?, 0, ?, ?)",
                (
                    (
                        dstart + k,
                        start + k,
                        it.channel,
                        it.network,
                        _sqlite_time(it.due),
                        _sqlite_time(it.due),
                        uuid.uuid4().hex,
                        stamp,
                    )
                    for k, it in enumerate(items)
                ),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        if wake:
            from scheduler.lock import poke

            poke(path)
        return
    _pg_copy(db_url, items, now)
    if wake:
        import psycopg

        with psycopg.connect(_pg_conninfo(db_url), autocommit=True) as conn:
            conn.execute("NOTIFY smm_wake")


def _pg_conninfo(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_copy(db_url: str, items: Sequence[Item], now: datetime) -> None:
    import psycopg

    with psycopg.connect(_pg_conninfo(db_url)) as conn:
        cur = conn.cursor()
        cur.execute("LOCK TABLE posts IN EXCLUSIVE MODE")
        start = cur.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0] + 1  # type: ignore[index]
        dstart = cur.execute("SELECT coalesce(max(id), 0) FROM deliveries").fetchone()[0] + 1  # type: ignore[index]
        with cur.copy("COPY posts (id, text, link, category, media, created_at) FROM STDIN") as copy:
            for k, it in enumerate(items):
                copy.write_row((start + k, it.text, None, "news", "[]", now))
        with cur.copy(
            "COPY deliveries (id, post_id, channel, network, status, due_at, slotted, next_attempt_at, attempts, key, "
            "updated_at) FROM STDIN"
        ) as copy:
            for k, it in enumerate(items):
                copy.write_row(
                    (
                        dstart + k,
                        start + k,
                        it.channel,
                        it.network,
                        "queued",
                        it.due,
                        False,
                        it.due,
                        0,
                        uuid.uuid4().hex,
                        now,
                    )
                )
        for table in ("posts", "deliveries"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()


def future_items(n: int, base: datetime, channels: Sequence[str], network: str = "telegram") -> Iterable[Item]:
    """``n`` posts due from ``base`` on, one a second, round-robin over ``channels``."""
    for k in range(n):
        yield Item(channels[k % len(channels)], network, base + timedelta(seconds=k), f"future post {k}")


def seeded_sqlite(dest: Path, n_future: int) -> str:
    """A SQLite database at ``dest`` with ``n_future`` posts queued on the standard Telegram channels, due from
    six hours ahead; built once (about a minute for a million) and copied from the cache afterwards."""
    from scheduler.db import SCHEMA_HEAD

    CACHE.mkdir(parents=True, exist_ok=True)
    # The schema revision is part of the name: a seed built before a migration is never reused (the daemon would
    # migrate it at start, inside the figures).
    cached = CACHE / f"future-{n_future}-schema{SCHEMA_HEAD}.db"
    meta = cached.with_suffix(".json")
    fresh = (
        meta.exists()
        and time.time() - json.loads(meta.read_text())["built"] < CACHE_MAX_AGE
        and _sqlite_revision(cached) == SCHEMA_HEAD
    )
    if not (cached.exists() and fresh):
        for stale in (cached, meta):
            stale.unlink(missing_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        url = f"sqlite:///{tmp}"
        started = time.monotonic()
        create_schema(url)
        base = datetime.now(UTC) + FUTURE_OFFSET
        names = [tg_name(i) for i in range(N_TG)]
        items = list(future_items(n_future, base, names))
        insert_items(url, items, wake=False)
        del items
        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        tmp.rename(cached)
        meta.write_text(json.dumps({"built": time.time(), "seconds": time.monotonic() - started}))
        print(f"seeded {n_future:,} future posts in {time.monotonic() - started:.1f}s -> {cached}", flush=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    shutil.copyfile(cached, dest)
    return f"sqlite:///{dest}"


def _sqlite_revision(path: Path) -> str | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def compile_bytecode() -> None:
    """Write the project's bytecode, as installing a wheel does. An editable install has none, and with
    ``PYTHONDONTWRITEBYTECODE`` set (this machine's environment sets it) every ``smm`` process would compile each of
    its modules from source: 80 ms on every ``smm add`` that no installed copy pays."""
    import compileall

    for package in ("scheduler", "adapters"):
        compileall.compile_dir(REPO / package, quiet=1)


def fresh_folder(name: str) -> Path:
    """An empty working folder for one benchmark (and the project's bytecode written: :func:`compile_bytecode`)."""
    compile_bytecode()
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# -- the daemon process -------------------------------------------------------------------------------------------


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(stat: Path, *, children: bool = False) -> float:
    """User + system CPU seconds from a /proc ``stat`` file (a process's or one of its threads'); with
    ``children``, the CPU of its children that ended as well."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc/<pid>/stat."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def postgres_cpu_seconds() -> float:
    """User + system CPU of every PostgreSQL process of the machine, those alive and those that ended (counted in
    their parent's children's CPU): the delta over a run is the server's share of it."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == "postgres":
                total += _stat_cpu(proc / "stat", children=True)
        except OSError:  # the process ended
            continue
    return total


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU per kind of thread of a process, by the threads' names in the system: the daemon names its
    pools' threads (``smm-db``, ``smm-db-read``, ``smm-io``); the main thread, running the event loop, keeps the
    process's name and is reported as ``event loop``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            seconds = _stat_cpu(task / "stat")
        except OSError:  # the thread ended
            continue
        kind = name.rsplit("_", 1)[0] if name.startswith("smm-") else "event loop"
        out[kind] = out.get(kind, 0.0) + seconds
    return out


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, number = line.split()[:2]
            values[key] = int(number) / 1024
    return values.get("VmRSS:", 0.0), values.get("VmHWM:", 0.0)


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over all threads: each is the process waking up."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class Daemon:
    """``smm run`` in a subprocess with its log in a file."""

    config: Path
    env: dict[str, str]
    log_path: Path
    args: Sequence[str] = ()
    runner: Sequence[str] = ("-m", "scheduler")
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] = field(init=False)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        from tests.support import smm_env

        self._log = self.log_path.open("wb")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [PY, *self.runner, "--config", str(self.config), "run", *self.args],
            env=smm_env(self.env) | dict(self.extra_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.config.parent,
        )
        self._spy: subprocess.Popen[bytes] | None = None
        spy_dir = os.environ.get("SMM_BENCH_PYSPY")
        if spy_dir:
            # Diagnostics only (it costs the daemon a little CPU): py-spy samples the daemon from its start, all
            # threads including idle ones, into collapsed stacks (flamegraph.pl / speedscope read them).
            spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
            out = Path(spy_dir) / f"{self.log_path.parent.name}-{self.log_path.stem}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            self._spy = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(self.proc.pid),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--idle",
                    "--threads",
                    "--output",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 120.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return time.time()
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited ({self.proc.returncode}) before {needle!r}:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"no {needle!r} in the daemon log after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        if self._spy is not None:
            try:
                self._spy.wait(30)  # py-spy writes its file when the daemon exits
            except subprocess.TimeoutExpired:
                self._spy.kill()
        return code


class Sampler(threading.Thread):
    """Samples a process's CPU seconds and RSS every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, float]] = []  # (wall time, cpu seconds, rss MiB)
        self.threads: list[tuple[float, dict[str, float]]] = []  # (wall time, cpu seconds per kind of thread)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                now = time.time()
                self.samples.append((now, cpu_seconds(self.pid), rss_mb(self.pid)[0]))
                self.threads.append((now, thread_cpu_seconds(self.pid)))
            except (OSError, IndexError):
                return
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def cpu_between(self, t0: float, t1: float) -> float:
        """CPU seconds spent between two wall times (nearest samples)."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return float("nan")
        return inside[-1][1] - inside[0][1]

    def threads_between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds per kind of thread between two wall times (nearest samples)."""
        inside = [t for when, t in self.threads if t0 <= when <= t1]
        if len(inside) < 2:
            return {}
        return {kind: inside[-1][kind] - inside[0].get(kind, 0.0) for kind in inside[-1]}

    def span(self, t0: float, t1: float) -> float:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        return inside[-1][0] - inside[0][0] if len(inside) >= 2 else float("nan")

    def max_rss(self) -> float:
        return max((s[2] for s in self.samples), default=float("nan"))


def sqlite_counts(db_url: str, where: str = "1") -> dict[str, int]:
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=60)
    try:
        return dict(conn.execute(f"SELECT status, count(*) FROM deliveries WHERE {where} GROUP BY status").fetchall())
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
