"""The real daemon in a subprocess against a temporary database and the outbox network."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import store
from scheduler.channels import AdapterFactory
from scheduler.config import load_config
from scheduler.daemon import DAEMON_SQLITE_CACHE_KIB, Daemon, open_daemon
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.sdnotify import Notifier
from scheduler.service import show_post
from tests.conftest import write_config
from tests.support import DaemonProcess, outbox_folders, smm, smm_env, wait_for

pytestmark = pytest.mark.slow

FAST = '[daemon]\ntick = "1s"\nreconcile_delay = "1s"\nshutdown_grace = "10s"\n'


def outbox_posts(tmp_path: Path, name: str = "outbox") -> list[dict[str, object]]:
    """The posts published in the outbox (a folder being written has a hidden name until it is complete)."""
    return [json.loads((p / "post.json").read_text()) for p in outbox_folders(tmp_path / name)]


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "config.toml", db_url, extra_top=FAST)


def show(config: Path, post_id: int) -> dict[str, object]:
    result = smm("show", str(post_id), "--json", config=config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def add(config: Path, *args: str) -> int:
    result = smm("add", *args, "--json", config=config)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["id"])


def test_now_post_is_published_within_two_seconds(config: Path, tmp_path: Path) -> None:
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        post_id = add(config, "hello right now", "--now")
        queued_at = time.monotonic()
        wait_for(lambda: outbox_posts(tmp_path), timeout=2.0, what="the post in the outbox")
        elapsed = time.monotonic() - queued_at
        assert elapsed < 2.0
        daemon.wait_log(rf"published post {post_id} to outbox")
        assert f"queued post {post_id} on outbox for " in daemon.log
        assert daemon.stop() == 0
    assert show(config, post_id)["deliveries"][0]["status"] == "published"  # type: ignore[index]
    assert outbox_posts(tmp_path)[0]["text"] == "hello right now"


def test_post_at_a_time_goes_out_within_a_second_of_it(config: Path, tmp_path: Path) -> None:
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        due = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        post_id = add(config, "on time", "--at", due.isoformat())
        wait_for(lambda: outbox_posts(tmp_path), timeout=8, what="the post")
        assert daemon.stop() == 0
    delivery = show(config, post_id)["deliveries"][0]  # type: ignore[index]
    published = datetime.fromisoformat(delivery["published_at"].replace("Z", "+00:00"))
    assert due <= published <= due + timedelta(seconds=1)


def test_second_daemon_on_one_sqlite_file_refuses_to_start(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    with DaemonProcess(config) as first:
        first.wait_ready()
        second = smm("run", config=config, timeout=30)
        assert second.returncode == 1
        assert "another `smm run`" in second.stdout + second.stderr
        assert "publish posts twice" in second.stdout + second.stderr
        assert first.proc.poll() is None
        assert first.stop() == 0


def test_posts_a_second_apart_each_go_out_on_time_with_the_default_tick(tmp_path: Path, db_url: str) -> None:
    """The cycle that starts the first post's worker must still plan a wake-up for the second one: with the
    default 2-minute tick, nothing else would look at the queue in time."""
    config = write_config(tmp_path / "config.toml", db_url)
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        first = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        ids = [add(config, f"post {i}", "--at", (first + timedelta(seconds=i)).isoformat()) for i in range(3)]
        wait_for(lambda: len(outbox_posts(tmp_path)) == 3, timeout=10, what="three posts")
        assert daemon.stop() == 0
    for i, post_id in enumerate(ids):
        delivery = show(config, post_id)["deliveries"][0]  # type: ignore[index]
        published = datetime.fromisoformat(delivery["published_at"].replace("Z", "+00:00"))
        due = first + timedelta(seconds=i)
        assert due <= published <= due + timedelta(seconds=1), (i, published, due)


def test_sighup_reloads_the_config_and_survives_a_broken_one(config: Path, tmp_path: Path, db_url: str) -> None:
    good = config.read_text()
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        extra = f'[[channels]]\nname = "second"\nnetwork = "outbox"\npath = "{tmp_path / "second"}"\n'
        config.write_text(good + extra)
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"config reloaded: 2 channels")
        add(config, "to the new channel", "--channel", "second", "--now")
        wait_for(lambda: outbox_folders(tmp_path / "second"), timeout=5)

        cli_config = tmp_path / "cli.toml"
        cli_config.write_text(good + extra)
        config.write_text(good + "\n[[channels]]\nname = 'bad'\nnetwork = 'vkontakte'\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"config reload failed, keeping the running config: .*vkontakte")
        add(cli_config, "still publishing", "--channel", "outbox", "--now")
        wait_for(lambda: len(outbox_posts(tmp_path)) == 1, timeout=5, what="a publish after a failed reload")
        assert daemon.stop() == 0


def test_sigterm_repeated_until_exit_still_stops_cleanly(tmp_path: Path, sqlite_url: str) -> None:
    """An impatient operator (or a supervisor) sends SIGTERM again and again: the stop stays clean, exit code 0."""
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        while daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log


def test_sigusr1_logs_the_queue_summary(config: Path) -> None:
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        add(config, "a queued post")
        daemon.signal(signal.SIGUSR1)
        daemon.wait_log(r"channel outbox: 1 queued, next (Tue|Fri) ")
        assert daemon.stop() == 0


def test_the_daemons_threads_carry_their_pools_names_in_the_system(config: Path) -> None:
    # Linux, as the daemon's home (systemd) is: prctl names the threads, /proc shows the names.
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()
        add(config, "a post for the readers and the writer", "--now")
        daemon.wait_log(r"published post \d+ to outbox")
        names = {p.read_text().strip() for p in Path(f"/proc/{daemon.proc.pid}/task").glob("*/comm")}
        assert daemon.stop() == 0
    assert {"smm-db_0", "smm-db-read_0"} <= names, names


def test_cli_writing_while_the_daemon_publishes_never_sees_a_lock(config: Path, tmp_path: Path) -> None:
    with DaemonProcess(config) as daemon:
        daemon.wait_ready()

        def burst(i: int) -> list[subprocess.CompletedProcess[str]]:
            return [smm("add", f"burst {i}-{j}", "--now", config=config) for j in range(6)]

        with ThreadPoolExecutor(4) as pool:
            results = [r for batch in pool.map(burst, range(4)) for r in batch]
        wait_for(lambda: len(outbox_posts(tmp_path)) == 24, timeout=20, what="24 posts in the outbox")
        assert daemon.stop() == 0
        output = daemon.log + "".join(r.stdout + r.stderr for r in results)
    assert all(r.returncode == 0 for r in results)
    assert "locked" not in output.lower()
    assert sorted(p["text"] for p in outbox_posts(tmp_path)) == sorted(
        f"burst {i}-{j}" for i in range(4) for j in range(6)
    )


def test_run_once_applies_migrations_and_publishes_what_is_due(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url, extra_top=FAST)
    cfg = load_config(config)
    db = Database(cfg.database_url)
    assert db.schema_revision() is None
    db.dispose()
    result = smm("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    add(config, "due now", "--now")
    future = add(config, "not yet")
    result = smm("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert [p["text"] for p in outbox_posts(tmp_path)] == ["due now"]
    assert show(config, future)["deliveries"][0]["status"] == "queued"  # type: ignore[index]


def test_a_crash_leftover_is_reconciled_not_resent_blindly(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url, extra_top=FAST)
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    now = datetime.now(UTC)
    post = add_post(cfg, db, NewPost(text="claimed, then the daemon died", channels=["outbox"], now=True), now)
    with db.write() as session:
        # The dead daemon's lease has run out (on PostgreSQL a live lease would belong to a running daemon).
        claim = store.claim(session, "outbox", now, "dead-daemon", timedelta(seconds=0))
    assert claim is not None
    db.dispose()
    result = smm("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert "1 delivery was being published when a daemon stopped" in result.stderr
    db = Database(cfg.database_url)
    delivery = show_post(db, post["id"])["deliveries"][0]
    db.dispose()
    assert delivery["status"] == "published"
    assert len(outbox_posts(tmp_path)) == 1


def test_late_post_after_downtime_is_reslotted_and_logged(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    cfg = load_config(config)
    db = Database(cfg.database_url)
    db.check_schema()
    past = datetime.now(UTC) - timedelta(hours=3)
    post = add_post(cfg, db, NewPost(text="missed while down", channels=["outbox"], now=True), past)
    db.dispose()
    result = smm("run", "--once", config=config)
    assert result.returncode == 0
    assert f"post {post['id']} to outbox" in result.stderr and "late; moved to the next free slot" in result.stderr
    assert outbox_posts(tmp_path) == []


def test_logs_for_journald_and_json(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    add(config, "logged", "--now")
    log_file = tmp_path / "journal.log"
    with log_file.open("w") as out:
        st = os.fstat(out.fileno())
        subprocess.run(
            [sys.executable, "-m", "scheduler", "--config", str(config), "run", "--once"],
            stdout=out,
            stderr=out,
            env=smm_env({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}),
            check=True,
        )
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    assert lines and all(line[:3] in ("<6>", "<4>", "<3>", "<7>") or line.startswith("<") for line in lines)
    assert any(line.startswith("<6>smm.publish: published post") for line in lines)
    assert not any(line[:4].isdigit() for line in lines)  # no timestamps: journald adds its own

    add(config, "as json", "--now")
    result = smm("run", "--once", "--log-format", "json", config=config)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    published = [r for r in records if r.get("action") == "published"]
    assert published and published[0]["channel"] == "outbox" and published[0]["level"] == "info"
    assert {"ts", "level", "logger", "msg", "post_id", "remote_url"} <= set(published[0])


def test_sd_notify_ready_watchdog_status_and_stopping(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    address = f"@smm-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:])
    sock.settimeout(0.2)
    messages: list[str] = []

    def received(field: str) -> bool:
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        return any(field in m for m in messages)

    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
    with DaemonProcess(config, env=env) as daemon:
        wait_for(lambda: received("READY=1"), timeout=20, what="READY=1")
        wait_for(lambda: received("WATCHDOG=1"), timeout=5, what="WATCHDOG=1")
        assert any("STATUS=" in m for m in messages)
        # Two posts published within a second: the second status line is held back, then sent (not left stale).
        add(config, "one", "--now")
        add(config, "two", "--now")
        wait_for(lambda: received("STATUS=2 published, 0 publishing"), timeout=10, what="the latest status")
        daemon.signal(signal.SIGTERM)
        wait_for(lambda: received("STOPPING=1"), timeout=10, what="STOPPING=1")
        assert daemon.stop() == 0
    sock.close()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = subprocess.run(["which", "systemd-analyze"], capture_output=True, text=True)
    unit = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "smm-scheduler.service"
    text = unit.read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=",
        "Restart=on-failure",
        "LoadCredential=",
        "User=smm-scheduler",
    ):
        assert needed in text
    if analyze.returncode != 0:
        pytest.skip("systemd-analyze is not installed")
    copy = tmp_path / "smm-scheduler.service"
    copy.write_text(text.replace("/opt/smm-scheduler/bin/smm", str(Path(sys.executable).parent / "smm")))
    verify = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_sigterm_during_a_publish_lets_it_finish_and_records_it(tmp_path: Path, sqlite_url: str) -> None:
    from tests.fakes.base import Fault
    from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram

    fake = FakeTelegram().start()
    try:
        body = (
            f'[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@testchannel"\ntoken_env = "TG"\n'
            f'api_url = "{fake.url}"\n'
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top=FAST)
        post_id = add(config, "slow network", "--now")
        fake.inject("sendMessage", Fault.delay(2.0))
        with DaemonProcess(config, env={"TG": DEFAULT_TOKEN}) as daemon:
            wait_for(lambda: fake.calls("sendMessage"), timeout=10, what="the request in flight")
            daemon.signal(signal.SIGTERM)
            assert daemon.proc.wait(20) == 0
            log = daemon.log
        assert "stopping; letting in-flight posts finish" in log
        assert f"published post {post_id} to tg" in log
        assert "stopped (1 post published this run)" in log
        delivery = show(config, post_id)["deliveries"][0]  # type: ignore[index]
        assert delivery["status"] == "published"
        assert len(fake.published) == 1
    finally:
        fake.stop()


def test_the_daemons_sqlite_connections_keep_a_small_page_cache(tmp_path: Path) -> None:
    # SQLite's default is 2 MiB per connection, filled by the daily summary and kept for months (B5, B7).
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}")
    daemon = open_daemon(str(config))
    try:
        daemon.rt.db.check_schema()
        with daemon.rt.db.write() as writer, daemon.rt.db.read() as reader:
            sizes = [s.connection().exec_driver_sql("PRAGMA cache_size").scalar() for s in (writer, reader)]
        assert sizes == [-DAEMON_SQLITE_CACHE_KIB, -DAEMON_SQLITE_CACHE_KIB]
    finally:
        daemon.release()


def test_a_daemon_on_sqlite_never_loads_the_postgresql_dialect(tmp_path: Path) -> None:
    # 2 MiB of Python objects (4 MiB resident) that only a cluster on PostgreSQL uses (B5's RSS goal).
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}", extra_top=FAST)
    add(config, "due now", "--now")
    code = (
        "import sys\n"
        "from scheduler.daemon import run_daemon\n"
        f"assert run_daemon({str(config)!r}, once=True) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=smm_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert [p["text"] for p in outbox_posts(tmp_path)] == ["due now"]


def test_a_held_back_status_line_never_replaces_the_stopping_one(tmp_path: Path) -> None:
    address = f"@smm-test-stopping-{os.getpid()}-{time.monotonic_ns()}"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind("\0" + address[1:])
    systemd.setblocking(False)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}")
    # The daemon is built from its parts, with a notifier of the test's.
    cfg = load_config(config)
    notifier = Notifier({"NOTIFY_SOCKET": address})
    daemon = Daemon(cfg, Database(cfg.database_url), AdapterFactory(), load=lambda: cfg, notifier=notifier)

    async def scenario() -> None:
        daemon.progress.report()  # sent
        daemon.publisher.published_count += 1
        daemon.progress.report()  # held back: a timer will send it
        assert daemon.progress.timer is not None
        daemon.request_stop("test")
        await asyncio.sleep(1.2)  # the timer fires after the stopping line went out

    try:
        asyncio.run(scenario())
        messages = []
        while True:
            try:
                messages.append(systemd.recv(4096).decode())
            except BlockingIOError:
                break
        assert messages[-1] == "STOPPING=1\nSTATUS=stopping: finishing in-flight posts", messages
    finally:
        systemd.close()
        notifier.close()
        daemon.release()


def test_sigterm_while_waiting_for_the_database_at_start_exits_0(tmp_path: Path) -> None:
    """systemd stops a unit whose database never came up: that is a clean stop, exit 0 (README: SIGTERM exits 0)."""
    nothing_listens = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    config = write_config(tmp_path / "config.toml", nothing_listens, extra_top=FAST)
    with DaemonProcess(config) as daemon:
        daemon.wait_log(r"database unavailable at start: .*retrying in 1s")
        daemon.signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0, daemon.log
        log = daemon.log
    assert "stopped before the database became available" in log
    assert "Traceback" not in log


def test_run_in_process_leaves_no_signal_blocked_for_the_processes_started_after_it(tmp_path: Path) -> None:
    """A blocked signal is inherited by every process started later: after an in-process `smm run --once` (tests,
    a script), a daemon started from the same process could not be stopped with SIGTERM."""
    from scheduler.daemon import HANDLED_SIGNALS, run_daemon

    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}", extra_top=FAST)
    handlers = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    try:
        assert run_daemon(str(config), once=True) == 0
        assert not set(HANDLED_SIGNALS) & signal.pthread_sigmask(signal.SIG_BLOCK, [])
        with DaemonProcess(config) as daemon:
            daemon.wait_ready()
            assert daemon.stop(timeout=10) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
