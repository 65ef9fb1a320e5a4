"""Hostile input and a hostile environment, beyond the bad-input matrix of ``tests/integration/test_cli.py``.

Each case gets one clear error, and nothing already queued is lost or changed: a text of 100,000 characters, media
bigger than any network takes (sparse files, so nothing big is written), a config readable or writable by others
while it names secret files, a SQLite database locked by another process, read-only, in a read-only folder, or not
a database at all, and PostgreSQL down when the daemon starts or going away while it runs. The PostgreSQL cases
never touch the shared server: a small TCP proxy of the test's own stands between the daemon and it, and is cut.

The tests run as root on CI; root ignores file modes, so the read-only cases run ``smm`` with the capabilities that
bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) dropped from its bounding set.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from scheduler.config import load_config
from scheduler.db import Database
from tests.conftest import CliResult, run_cli, write_config
from tests.support import DaemonProcess, outbox_folders, smm, smm_env, wait_for

pytestmark = pytest.mark.slow

FAST = '[daemon]\ntick = "0.2s"\nreconcile_delay = "0.5s"\nlease = "2s"\nshutdown_grace = "5s"\n'
NETWORK_CHANNELS = """
[[channels]]
name = "tg"
network = "telegram"
chat_id = "@hostile_test"
token_env = "SMM_TG_TOKEN"

[[channels]]
name = "vk"
network = "vk"
group_id = 1
token_env = "SMM_VK_TOKEN"

[[channels]]
name = "fb"
network = "facebook"
page_id = 1
token_env = "SMM_FB_TOKEN"

[[channels]]
name = "ok"
network = "ok"
group_id = 1
application_key = "KEY"
application_secret_env = "SMM_OK_SECRET"
token_env = "SMM_OK_TOKEN"
"""


@dataclass
class Env:
    tmp: Path
    config: Path
    db_url: str

    def __call__(self, *args: str) -> CliResult:
        return run_cli(*args, config=self.config)

    def ok(self, *args: str) -> CliResult:
        result = self(*args)
        assert result.code == 0, result
        return result

    def add(self, *args: str) -> int:
        return int(json.loads(self.ok("add", *args, "--json").out)["id"])

    @property
    def media_dir(self) -> Path:
        return load_config(self.config, env={}).media_dir

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table, and every file of the media store."""
        engine = create_engine(self.db_url)
        try:
            existing = set(inspect(engine).get_table_names())
            with engine.connect() as conn:
                tables = {
                    name: sorted(tuple(str(v) for v in row) for row in conn.execute(text(f"SELECT * FROM {name}")))
                    for name in ("posts", "deliveries", "attempts", "channel_states")
                    if name in existing
                }
        finally:
            engine.dispose()
        media = self.media_dir
        files = sorted(str(p.relative_to(media)) for p in media.rglob("*")) if media.exists() else []
        return {"tables": tables, "media": files}


def one_error_line(result: CliResult | subprocess.CompletedProcess[str], code: int) -> str:
    """The one line ``smm: error: ...`` that a failed command printed, without its prefix."""
    if isinstance(result, subprocess.CompletedProcess):
        result = CliResult(result.returncode, result.stdout, result.stderr)
    assert result.code == code, result
    assert result.out == "", result
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smm: error: "), result.err
    return lines[0].removeprefix("smm: error: ")


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Env:
    return Env(tmp_path, write_config(tmp_path / "config.toml", db_url, extra_top=FAST), db_url)


def sparse_png(path: Path, size: int, width: int = 1, height: int = 1) -> Path:
    """A file that starts like a ``width`` x ``height`` PNG and is ``size`` bytes long, without using the disk."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


# -- text and media -----------------------------------------------------------------------------------------------


def test_a_text_of_100000_characters_is_kept_whole_and_published_on_the_outbox(env: Env) -> None:
    """The outbox takes 100,000 characters: queued, listed, shown and published without a character lost."""
    long_text = ("Grüße, мир 👋 " * 8000)[:99_999] + "!"
    assert len(long_text) == 100_000
    post = env.add(long_text, "--now")
    assert json.loads(env.ok("show", str(post), "--json").out)["text"] == long_text
    listed = env.ok("queue").out.splitlines()
    assert max(len(line) for line in listed) < 200  # one short row, not a 100,000-character line
    result = smm("run", "--once", config=env.config)
    assert result.returncode == 0, result.stderr
    (folder,) = outbox_folders(env.tmp / "outbox")
    assert json.loads((folder / "post.json").read_text(encoding="utf-8"))["text"] == long_text
    assert (folder / "post.txt").read_text(encoding="utf-8") == long_text + "\n"
    assert json.loads(env.ok("show", str(post), "--json").out)["deliveries"][0]["status"] == "published"


def test_a_text_of_100000_characters_is_refused_with_each_networks_limit(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, NETWORK_CHANNELS, outbox=False)
    run_cli("add", "already queued", config=config)
    env = Env(tmp_path, config, sqlite_url)
    before = env.snapshot()
    message = one_error_line(run_cli("add", "x" * 100_000, config=config), code=2)
    for channel, network, limit in (("tg", "telegram", 4096), ("vk", "vk", 16000), ("fb", "facebook", 63206)):
        assert f"channel '{channel}': the text is 100000 characters long; {network} allows {limit}" in message
    assert "channel 'ok': the text is 100000 characters long; ok allows 10000" in message
    assert len(message) < 1000
    assert env.snapshot() == before


def test_media_bigger_than_any_network_takes_is_refused_without_reading_it(env: Env) -> None:
    env.add("already queued")
    before = env.snapshot()
    huge = sparse_png(env.tmp / "huge.png", 300 * 2**20)
    started = time.monotonic()
    message = one_error_line(env("add", "x", "--media", str(huge)), code=2)
    assert message == f"media {huge}: 300 MB is larger than any network accepts"
    assert time.monotonic() - started < 2.0  # the size comes from stat(), not from reading 300 MB
    assert env.snapshot() == before


def test_media_too_big_for_each_network_is_refused_with_each_limit(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, NETWORK_CHANNELS, outbox=False)
    run_cli("add", "already queued", config=config)
    env = Env(tmp_path, config, sqlite_url)
    before = env.snapshot()
    big = sparse_png(tmp_path / "big.png", 60 * 2**20)
    message = one_error_line(run_cli("add", "x", "--media", str(big), config=config), code=2)
    for channel, network, limit in (("tg", "telegram", 10), ("vk", "vk", 50), ("fb", "facebook", 4), ("ok", "ok", 10)):
        assert f"channel '{channel}': " in message and f"60.0 MB; {network} accepts at most {limit} MB" in message
    assert env.snapshot() == before
    assert not env.media_dir.exists()

    wide = sparse_png(tmp_path / "wide.png", 4096, 30000, 30000)
    message = one_error_line(run_cli("add", "x", "--media", str(wide), config=config), code=2)
    assert "channel 'tg': " in message and "channel 'vk': " in message and "30000" in message
    assert env.snapshot() == before


# -- config permissions -------------------------------------------------------------------------------------------


def secret_config(tmp_path: Path, db_url: str, mode: int) -> tuple[Path, Path]:
    """A config in ``mode`` whose VK channel reads its token from a file (mode 600) on an unreachable API."""
    token = tmp_path / "vk.token"
    token.write_text("vk1.a.hostile-file-fake\n")
    token.chmod(0o600)
    body = f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 1\ntoken_file = "{token}"\napi_url = "http://127.0.0.1:1"\n'
    config = write_config(tmp_path / "config.toml", db_url, body, extra_top=FAST)
    config.chmod(mode)
    return config, token


def test_a_config_writable_by_others_is_warned_about_by_the_cli_the_daemon_and_doctor(
    tmp_path: Path, sqlite_url: str
) -> None:
    config, _ = secret_config(tmp_path, sqlite_url, 0o666)
    warning = f"{config} is writable by other users (mode 666)"
    queued = run_cli("add", "still queued", config=config)
    assert queued.code == 0 and warning in queued.err and "chmod go-w" in queued.err
    daemon = smm("run", "--once", config=config)
    assert warning in daemon.stderr
    doctor = smm("doctor", config=config)
    assert f"warn  config: {warning}" in doctor.stdout
    printed = queued.out + queued.err + daemon.stdout + daemon.stderr + doctor.stdout + doctor.stderr
    assert "hostile-file-token" not in printed


def test_a_config_readable_by_others_that_names_secret_files_is_warned_about(tmp_path: Path, sqlite_url: str) -> None:
    config, _ = secret_config(tmp_path, sqlite_url, 0o644)
    result = run_cli("queue", config=config)
    assert result.code == 0
    assert f"{config} is readable by other users" in result.err


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg://smm:pw-not-real@127.0.0.1:fivefour/smm", "fivefour"),
        ("postgresql+psycopg://smm:pw-not-real@127.0.0.1:1/smm?sslmod=require", "sslmod"),
    ],
    ids=["port-not-a-number", "unknown-option"],
)
def test_a_database_url_that_cannot_work_is_a_config_error(tmp_path: Path, url: str, problem: str) -> None:
    config = write_config(tmp_path / "config.toml", url)
    for args in (("add", "x"), ("queue",)):
        message = one_error_line(run_cli(*args, config=config), code=2)
        assert message.startswith(f"{config}: database.url: ") and problem in message, message
        assert "pw-not-real" not in message and "unexpected" not in message


# -- SQLite in trouble --------------------------------------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_a_database_locked_by_another_process_is_one_line_and_loses_nothing(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock longer than the busy timeout. smm has no setting for that timeout
    (30 s, fixed in scheduler.db.Database), so the test shortens it in-process."""
    env = Env(tmp_path, write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST), sqlite_url)
    first = env.add("queued before the lock")
    env.add("another one", "--now")
    before = env.snapshot()
    defaults = Database.__init__.__kwdefaults__
    assert defaults is not None and defaults["busy_timeout_ms"] == 30_000
    monkeypatch.setitem(defaults, "busy_timeout_ms", 300)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "smm.db")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        for args in (("add", "during the lock"), ("cancel", str(first)), ("reschedule", str(first), "--now")):
            message = one_error_line(env(*args), code=1)
            assert message == f"database {tmp_path / 'smm.db'} stayed locked by another process: database is locked"
        # Readers never wait for a writer (WAL): the queue can still be looked at.
        assert "queued before the lock" in env.ok("queue").out
        assert json.loads(env.ok("show", str(first), "--json").out)["text"] == "queued before the lock"
    finally:
        assert holder.stdin is not None
        holder.stdin.write(b"\n")
        holder.stdin.close()
        holder.wait(10)
    assert env.snapshot()["tables"] == before["tables"]
    env.add("after the lock")
    assert len(json.loads(env.ok("queue", "--json").out)) == 3


def _drop_file_capabilities() -> None:
    """In the child: lose the capabilities that let root ignore file modes (no-op when not root)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def smm_bound_by_modes(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``smm`` in a subprocess that file modes apply to, even as root."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--config", str(config), *args],
        env=smm_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        preexec_fn=_drop_file_capabilities,
    )


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    """A database in its own folder, with one post due now and one later; modes restored afterwards.

    The posts are added by ``smm`` processes that have ended, so no connection keeps the -wal and -shm files.
    """
    folder = tmp_path / "state"
    folder.mkdir()
    url = f"sqlite:///{folder / 'smm.db'}"
    env = Env(tmp_path, write_config(tmp_path / "config.toml", url, extra_top=FAST), url)
    for args in (("due now", "--now"), ("due later",)):
        assert smm("add", *args, config=env.config).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["smm.db"]
    try:
        yield env
    finally:
        folder.chmod(0o700)
        for path in folder.iterdir():
            path.chmod(0o600)


def test_a_read_only_database_file_refuses_writes_in_one_line_and_still_reads(sqlite_env: Env) -> None:
    env = sqlite_env
    database = env.tmp / "state" / "smm.db"
    before = env.snapshot()
    database.chmod(0o400)
    message = one_error_line(smm_bound_by_modes("add", "refused", config=env.config), code=1)
    assert message == (
        f"database {database} is read-only: attempt to write a readonly database "
        "(check the file's and its folder's permissions)"
    )
    message = one_error_line(smm_bound_by_modes("cancel", "2", config=env.config), code=1)
    assert message.startswith(f"database {database} is read-only: ")
    listed = smm_bound_by_modes("queue", config=env.config)
    assert listed.returncode == 0 and "due later" in listed.stdout, listed.stderr
    assert env.snapshot() == before


def test_a_database_in_a_read_only_folder_is_one_line_for_every_command(sqlite_env: Env) -> None:
    env = sqlite_env
    database = env.tmp / "state" / "smm.db"
    before = env.snapshot()
    (env.tmp / "state").chmod(0o500)
    for args in (("add", "refused"), ("queue",), ("show", "1")):
        message = one_error_line(smm_bound_by_modes(*args, config=env.config), code=1)
        assert message.startswith(f"database {database} is read-only: "), (args, message)
    daemon = smm_bound_by_modes("run", "--once", config=env.config)
    assert daemon.returncode == 1
    assert daemon.stderr.splitlines()[-1].endswith(f"cannot create the lock file {database}.lock: Permission denied")
    (env.tmp / "state").chmod(0o700)
    assert env.snapshot() == before


def test_the_daemon_on_a_read_only_database_fails_with_one_line(sqlite_env: Env) -> None:
    env = sqlite_env
    database = env.tmp / "state" / "smm.db"
    before = env.snapshot()
    database.chmod(0o400)
    daemon = smm_bound_by_modes("run", "--once", config=env.config)
    assert env.snapshot() == before
    assert not (env.tmp / "outbox").exists()
    errors = [line for line in daemon.stderr.splitlines() if " ERROR " in line]
    assert daemon.returncode == 1, daemon.stderr
    assert len(errors) == 1 and f"database {database} is read-only" in errors[0], daemon.stderr


def test_a_file_that_is_not_sqlite_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    """``smm add`` and ``smm queue`` on such a file are in test_cli.py; here the daemon and doctor."""
    notes = tmp_path / "notes.db"
    content = "my notes, not a database\n" * 100
    notes.write_text(content)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{notes}", extra_top=FAST)
    daemon = smm("run", "--once", config=config)
    assert daemon.returncode == 1
    (line,) = daemon.stderr.splitlines()
    assert line.endswith(
        f"ERROR smm.daemon: database {notes} is not an SQLite database, or it is damaged: file is not a database"
    )
    doctor = smm("doctor", config=config)
    assert doctor.returncode == 1
    assert f"FAIL  database: database {notes} is not an SQLite database" in doctor.stdout
    assert "ok    outbox  outbox: folder " in doctor.stdout  # the channels are still checked
    assert notes.read_text() == content


# -- PostgreSQL going away ----------------------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; :meth:`down` refuses new connections and cuts the open ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._open |= {client, server}
                self.connections += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class Outage:
    proxy: TcpProxy
    direct: Path
    """A config on the real server, for queuing and checking while the proxy is down."""
    config: Path
    """The daemon's config: the same database through the proxy, with a password that must never be printed."""
    outbox: Path

    def published(self) -> list[str]:
        if not self.outbox.is_dir():
            return []
        return sorted(json.loads((p / "post.json").read_text())["text"] for p in outbox_folders(self.outbox))

    def statuses(self) -> set[str]:
        """The statuses of every delivery."""
        views = json.loads(run_cli("queue", "--all", "--limit", "0", "--json", config=self.direct).out)
        return {d["status"] for v in views for d in v["deliveries"]}


PG_PASSWORD = "pg-hostile-password-not-real"


@pytest.fixture
def outage(tmp_path: Path, postgres_url: str) -> Iterator[Outage]:
    db_url = postgres_url
    host, port = "127.0.0.1", 5432
    assert f"@{host}:{port}/" in db_url, db_url
    proxy = TcpProxy((host, port))
    through = db_url.replace(f"@{host}:{port}/", f":{PG_PASSWORD}@{host}:{proxy.port}/")
    direct = write_config(tmp_path / "direct.toml", db_url, extra_top=FAST)
    config = write_config(tmp_path / "config.toml", through, extra_top=FAST)
    assert run_cli("db", "upgrade", config=direct).code == 0
    try:
        yield Outage(proxy, direct, config, tmp_path / "outbox")
    finally:
        proxy.down()


def notify_socket() -> tuple[socket.socket, str]:
    address = f"@smm-hostile-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:])
    sock.setblocking(False)
    return sock, address


def received(sock: socket.socket, messages: list[str]) -> list[str]:
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    return messages


def test_the_daemon_waits_for_postgresql_at_start_then_publishes(outage: Outage) -> None:
    texts = [f"queued while the database is away {i}" for i in range(3)]
    for t in texts:
        assert run_cli("add", t, "--now", config=outage.direct).code == 0
    sock, address = notify_socket()
    messages: list[str] = []
    with DaemonProcess(outage.config, env={"NOTIFY_SOCKET": address}) as daemon:
        daemon.wait_log(r"database unavailable at start", timeout=20, count=2)
        assert daemon.proc.poll() is None
        assert not any("READY=1" in m for m in received(sock, messages))
        assert any("STATUS=waiting for the database" in m for m in messages)
        assert outage.published() == []
        outage.proxy.up()
        daemon.wait_ready(timeout=15)
        wait_for(lambda: len(outage.published()) == 3, timeout=10, what="the three posts in the outbox")
        wait_for(lambda: any("READY=1" in m for m in received(sock, messages)), timeout=5, what="READY=1")
        assert daemon.stop() == 0
    sock.close()
    log = daemon.log
    failures = [line for line in log.splitlines() if "database unavailable at start" in line]
    assert len(failures) >= 2
    for line in failures:
        assert " ERROR smm.daemon: database unavailable at start: database postgresql+psycopg://postgres:***@" in line
        assert "retrying in " in line
    assert outage.published() == sorted(texts)
    assert outage.statuses() == {"published"}
    assert "Traceback" not in log
    assert PG_PASSWORD not in log


def test_postgresql_going_away_mid_run_loses_nothing(outage: Outage) -> None:
    outage.proxy.up()
    start = datetime.now(UTC)
    # Due one after another, so that some fall due while the database is away.
    scheduled = []
    for i in range(8):
        when = (start + timedelta(seconds=3 + i * 0.5)).isoformat(timespec="milliseconds")
        scheduled.append(f"due at +{3 + i * 0.5:.1f}s")
        assert run_cli("add", scheduled[-1], "--at", when, config=outage.direct).code == 0
    with DaemonProcess(outage.config) as daemon:
        daemon.wait_ready()
        wait_for(lambda: outage.published(), timeout=10, what="the first post")
        outage.proxy.down()
        cut = time.monotonic()
        queued_during = [f"queued during the outage {i}" for i in range(3)]
        for t in queued_during:
            assert run_cli("add", t, "--now", config=outage.direct).code == 0
        daemon.wait_log(r"database .* is unavailable|LISTEN connection lost|cannot record", timeout=10)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - cut)))
        assert daemon.proc.poll() is None, daemon.log
        during = len(outage.published())
        outage.proxy.up()
        everything = sorted(scheduled + queued_during)
        wait_for(lambda: outage.published() == everything, timeout=20, what=f"all posts published:\n{daemon.log}")
        wait_for(lambda: outage.statuses() == {"published"}, timeout=10, what="all recorded")
        assert daemon.stop() == 0
    assert during < len(everything)  # the outage really held posts back
    assert outage.published() == everything  # each exactly once
    log = daemon.log
    assert "Traceback" not in log and "unexpected error" not in log, log
    assert PG_PASSWORD not in log


def test_postgresql_going_away_between_the_network_and_the_record_publishes_once(outage: Outage) -> None:
    """VK accepts the post while the database is gone: the outcome cannot be recorded, the lease runs out, and
    after the database returns the delivery is settled from VK itself (same guid), not sent twice."""
    from tests.fakes.base import FakeRequest, FakeResponse, Fault
    from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk

    vk = FakeVk()
    vk.start()
    try:
        body = f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = {GROUP_ID}\ntoken_env = "SMM_VK_TOKEN"\n'
        body += f'api_url = "{vk.url}"\n'
        for path in (outage.direct, outage.config):
            write_config(path, load_config(path, env={}).database_url, body, outbox=False, extra_top=FAST)
        handle = vk.handle

        def cut_first(request: FakeRequest) -> FakeResponse:
            if vk.fault_key(request) == "wall.post" and outage.proxy.connections and not vk.published:
                outage.proxy.down()  # the database goes away while VK applies the post
            return handle(request)

        setattr(vk, "handle", cut_first)  # noqa: B010 - an instance hook
        vk.inject("wall.post", Fault.delay(0.3))
        outage.proxy.up()
        with DaemonProcess(outage.config, env={"SMM_VK_TOKEN": USER_TOKEN}) as daemon:
            daemon.wait_ready()
            assert run_cli("add", "accepted while the database was away", "--now", config=outage.direct).code == 0
            daemon.wait_log(r"cannot record an outcome yet", timeout=10)
            time.sleep(2.5)  # past the lease: the answer VK gave is gone with the attempt
            outage.proxy.up()
            wait_for(lambda: outage.statuses() == {"published"}, timeout=15, what=daemon.log)
            assert daemon.stop() == 0
    finally:
        vk.stop()
    assert [p["message"] for p in vk.published] == ["accepted while the database was away"]
    assert "Traceback" not in daemon.log


def test_every_log_line_of_a_postgresql_outage_is_one_line(outage: Outage) -> None:
    outage.proxy.up()
    with DaemonProcess(outage.config) as daemon:
        daemon.wait_ready()
        outage.proxy.down()
        daemon.wait_log(r"LISTEN connection lost", timeout=10, count=2)
        assert daemon.stop() == 0
    stray = [line for line in daemon.log.splitlines() if not line[:4].isdigit()]
    assert stray == []
