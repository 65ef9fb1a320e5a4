"""The fault-injection harness: four fake networks, a config with several channels on each, a zygote that forks
daemons, and the accounting that proves no post was lost or published twice.

Used by the crash tests in this folder, the multi-daemon PostgreSQL test and ``bench/crash.py`` (a larger run).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from scheduler.config import load_config
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.models import Delivery, Post, Status
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN, FakeChat, FakeTelegram
from tests.fakes.vk import FakeGroup, FakeVk

REPO = Path(__file__).resolve().parents[2]
_MIGRATION_LOCK = threading.Lock()
TERMINAL = (Status.PUBLISHED.value, Status.FAILED.value, Status.UNKNOWN.value, Status.CANCELLED.value)


class Zygote:
    """Client of ``tests/reliability/zygote.py``: fork daemons from a pre-imported process, learn when they end."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
        )
        self._pids: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._cond = threading.Condition()
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline())
        assert "ready" in ready, ready
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._lock = threading.Lock()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "pid" in message:
                self._pids.put(message["pid"])
            elif "exit" in message:
                with self._cond:
                    self._exits[message["exit"]] = message["status"]
                    self._cond.notify_all()

    def spawn(self, args: list[str], env: dict[str, str], log: Path, *, unsafe: bool = False) -> int:
        request = {"spawn": args, "env": env, "log": str(log), "unsafe": unsafe}
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            return self._pids.get(timeout=30)

    def wait(self, pid: int, timeout: float) -> int | None:
        """The child's exit status (minus the signal number when killed), or None if still running."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits, timeout)
            return self._exits.get(pid)

    def kill(self, pid: int) -> None:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Networks:
    """Running fakes of the four networks with ``per_network`` channels each, and the config to reach them."""

    per_network: int = 3
    vk: FakeVk = field(init=False)
    facebook: FakeFacebook = field(init=False)
    ok: FakeOk = field(init=False)
    telegram: FakeTelegram = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    channels: list[tuple[str, str]] = field(default_factory=list)  # (name, network)

    def __post_init__(self) -> None:
        n = self.per_network
        vk_tokens = {f"vk1.a.crash-user-{i}-not-real": 2000 + i for i in range(n)}
        self.vk = FakeVk(
            user_tokens=vk_tokens,
            community_tokens={},
            groups=[FakeGroup(100 + i, managers={2000 + i: 3}) for i in range(n)],
        ).start()
        self.facebook = FakeFacebook(page_id="5000000000", token="EAAB-crash-page-0-not-real").start()
        for i in range(1, n):
            self.facebook.add_page(f"500000000{i}", f"EAAB-crash-page-{i}-not-real", f"Page {i}")
        self.ok = FakeOk(group_id="70000000000100", token="ok-crash-token-0-not-real").start()
        for i in range(1, n):
            gid = f"7000000000010{i}"
            self.ok.groups[gid] = f"Group {i}"
            self.ok.add_user(f"ok-crash-token-{i}-not-real", f"50000000010{i}", f"Admin {i}", status=None)
            self.ok.set_membership(f"50000000010{i}", "ADMIN", gid=gid)
        self.telegram = FakeTelegram(
            tokens=(DEFAULT_TOKEN,), chats=[FakeChat(-1001000000000 - i, f"crashchan{i}") for i in range(n + 1)]
        ).start()
        self.env = {"TG_TOKEN": DEFAULT_TOKEN, "OK_SECRET": self.ok.application_secret}
        for i, token in enumerate(vk_tokens):
            self.env[f"VK_TOKEN_{i}"] = token
        for i in range(n):
            self.env[f"FB_TOKEN_{i}"] = f"EAAB-crash-page-{i}-not-real"
            self.env[f"OK_TOKEN_{i}"] = f"ok-crash-token-{i}-not-real"

    def config_body(self) -> str:
        n, parts = self.per_network, []
        self.channels = []
        for i in range(n):
            self.channels += [(f"vk{i}", "vk"), (f"fb{i}", "facebook"), (f"ok{i}", "ok")]
            parts.append(
                f'[[channels]]\nname = "vk{i}"\nnetwork = "vk"\ngroup_id = {100 + i}\ntoken_env = "VK_TOKEN_{i}"\n'
                f'api_url = "{self.vk.url}"\ntimeout = "3s"\n'
                f'[[channels]]\nname = "fb{i}"\nnetwork = "facebook"\npage_id = 500000000{i}\n'
                f'token_env = "FB_TOKEN_{i}"\napi_url = "{self.facebook.url}"\ntimeout = "3s"\n'
                f'[[channels]]\nname = "ok{i}"\nnetwork = "ok"\ngroup_id = 7000000000010{i}\n'
                f'application_key = "{self.ok.application_key}"\napplication_secret_env = "OK_SECRET"\n'
                f'token_env = "OK_TOKEN_{i}"\napi_url = "{self.ok.url}"\ntimeout = "3s"\n'
            )
        for i in range(n + 1):
            self.channels.append((f"tg{i}", "telegram"))
            parts.append(
                f'[[channels]]\nname = "tg{i}"\nnetwork = "telegram"\nchat_id = "@crashchan{i}"\n'
                f'token_env = "TG_TOKEN"\napi_url = "{self.telegram.url}"\ntimeout = "3s"\n'
            )
        return "\n".join(parts)

    def stop(self) -> None:
        for fake in (self.vk, self.facebook, self.ok, self.telegram):
            fake.stop()

    def copies(self) -> Counter[str]:
        """How many times each text was published, over all four networks (deleted posts excluded)."""
        texts: Counter[str] = Counter()
        for record in self.vk.published:
            if not record.get("deleted"):
                texts[record["message"]] += 1
        for record in self.facebook.published:
            if not record.get("deleted"):
                texts[record["message"]] += 1
        for record in self.ok.published:
            texts[record["text"]] += 1
        for record in self.telegram.published:
            texts[record["text"] or record["caption"] or ""] += 1
        return texts


DAEMON_SETTINGS = """
[daemon]
tick = "0.2s"
reconcile_delay = "0.3s"
late_grace = "1d"
shutdown_grace = "5s"
lease = "2s"
[retry]
max_attempts = 100
in_call_attempts = 2
in_call_max_wait = "0.5s"
backoff_base = "0.2s"
backoff_cap = "1s"
"""


@dataclass
class Accounting:
    """What the database and the fakes say, and what would be a loss or a duplicate."""

    statuses: Counter[str]
    lost: list[str]
    duplicates: list[str]
    unknown_by_network: Counter[str]
    published_without_copy: list[str]

    @property
    def all_terminal(self) -> bool:
        return not self.lost


def queue_posts(
    config_path: Path, networks: Networks, batch: int, per_channel: int, *, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Queue ``per_channel`` posts, due now, on every channel but those of the ``skip`` networks; returns their
    (unique) texts."""
    config = load_config(config_path)
    db = Database(config.database_url)
    with _MIGRATION_LOCK:  # Alembic's context is process-global: one migration at a time in this process
        db.check_schema()
    texts: list[str] = []
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    try:
        for name, network in networks.channels:
            if network in skip:
                continue
            for j in range(per_channel):
                text = f"batch {batch} post {j} on {name}"
                add_post(config, db, NewPost(text=text, channels=[name], now=True), now)
                texts.append(text)
    finally:
        db.dispose()
    return texts


def account(config_path: Path, networks: Networks) -> Accounting:
    config = load_config(config_path)
    db = Database(config.database_url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(Post.text, Delivery.status, Delivery.network).join(Delivery, Delivery.post_id == Post.id)
            ).all()
    finally:
        db.dispose()
    copies = networks.copies()
    statuses: Counter[str] = Counter(status for _, status, _ in rows)
    lost = [text for text, status, _ in rows if status not in TERMINAL]
    duplicates = [text for text, _, _ in rows if copies[text] > 1]
    unknown = Counter(network for _, status, network in rows if status == Status.UNKNOWN.value)
    missing = [text for text, status, _ in rows if status == Status.PUBLISHED.value and copies[text] != 1]
    return Accounting(statuses, lost, duplicates, unknown, missing)
