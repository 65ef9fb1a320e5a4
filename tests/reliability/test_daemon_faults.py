"""Attacks on the daemon itself (issue 22): a second daemon on the same SQLite file through another path, a full
disk at start and while it stays full, a server that keeps a call alive a byte at a time through a shutdown."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support import DaemonProcess, smm_env

pytestmark = pytest.mark.slow

FAST = '[daemon]\ntick = "1s"\nshutdown_grace = "1s"\n'


def run(config: Path, *args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``smm run`` in a fresh process, optionally under a file size limit (writes past it fail, as on a full
    disk)."""

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--config", str(config), "run", *args],
        env=smm_env(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=config.parent,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("spelling", ["symlink", "dotdot"])
def test_a_second_daemon_on_the_same_file_through_another_path_refuses_to_start(tmp_path: Path, spelling: str) -> None:
    real = tmp_path / "data" / "smm.db"
    (tmp_path / "data" / "sub").mkdir(parents=True)
    if spelling == "symlink":
        other = tmp_path / "elsewhere" / "alias.db"
        other.parent.mkdir()
        other.symlink_to(real)
    else:
        (tmp_path / "linked").symlink_to(tmp_path / "data" / "sub")
        other = tmp_path / "linked" / ".." / "smm.db"  # through a symlinked folder: data/sub/.. is data
    first = write_config(tmp_path / "first.toml", f"sqlite:///{real}", extra_top=FAST)
    second = write_config(tmp_path / "second.toml", f"sqlite:///{other}", extra_top=FAST)
    with DaemonProcess(first) as daemon:
        daemon.wait_ready()
        refused = run(second)
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "another `smm run` (pid " in line and f"is already publishing from {real};" in line
    assert "could publish posts twice" in line


def test_a_daemon_that_cannot_write_its_lock_at_start_says_so_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}", extra_top=FAST)
    refused = run(config, file_size_limit=0)
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.endswith(f"cannot write the lock file {tmp_path / 'smm.db.lock'}: File too large"), line
    assert "unexpected" not in line
