"""Running the real ``smm`` in subprocesses: the daemon, and CLI commands against the same database; and the log
lines of an in-process run (:func:`captured_log`)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def smm_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_", "NOTIFY_", "WATCHDOG_", "JOURNAL_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def smm(
    *args: str, config: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one ``smm`` command in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--config", str(config), *args],
        env=smm_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def outbox_folders(folder: Path) -> list[Path]:
    """The posts published in an outbox folder, oldest first (not what is hidden: a folder being written, the index
    of keys)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


class DaemonProcess:
    """``smm run`` in a subprocess, its log in a file the test can search."""

    def __init__(
        self, config: Path, *args: str, env: dict[str, str] | None = None, log_path: Path | None = None
    ) -> None:
        self.config = config
        self.log_path = log_path or config.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "--config", str(config), "run", *args],
            env=smm_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 15.0, count: int = 1) -> str:
        regex = re.compile(pattern)

        def found() -> bool:
            if self.proc.poll() is not None and len(regex.findall(self.log)) < count:
                raise AssertionError(f"daemon exited with {self.proc.returncode} before {pattern!r}:\n{self.log}")
            return len(regex.findall(self.log)) >= count

        wait_for(found, timeout, what=f"{pattern!r} in the daemon log:\n{self.log[-3000:]}")
        return self.log

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.wait_log(r"daemon started|run --once", timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextmanager
def captured_log(names: tuple[str, ...], level: int) -> Iterator[list[str]]:
    """Every line logged to the loggers ``names`` ("" is the root) at ``level`` or above while the block runs,
    formatted (so redacted) as the daemon writes them. (An ``smm`` command run in-process replaces the root logger's
    handlers: capture named loggers around such runs.)"""
    from scheduler.log import TextFormatter

    lines: list[str] = []
    formatter = TextFormatter(journald=False)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    handler = Collect(logging.DEBUG)
    loggers = [logging.getLogger(name or None) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield lines
    finally:
        for logger, before in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(before)
