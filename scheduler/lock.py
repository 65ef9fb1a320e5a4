"""One daemon per SQLite file, and its wake-up socket, through which the CLI tells the daemon that something changed.

Both belong to the file itself, whatever path a config reaches it by, and the kernel drops both when the process
dies: an advisory lock beside the file's real path (a symlink, ``..``, a relative path lead to it), and the wake-up
socket, an abstract name made of the file's device and inode (a hard link or a bind mount lead to it too)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
from pathlib import Path

from scheduler.errors import SmmError


class AlreadyRunning(SmmError):
    """Another daemon is using this database."""


def real_path(database: Path | str) -> Path:
    """The database file's own path: symlinks (of the file and of its folders) followed, ``..`` and ``.`` gone."""
    return Path(os.path.realpath(database))


class DaemonLock:
    """An exclusive ``flock`` on ``<database>.lock`` beside the database's real path, holding the owner's pid, and
    the database's wake-up socket (None where it cannot be bound: the daemon's own wake-ups and tick remain)."""

    def __init__(self, database: Path) -> None:
        self.database = real_path(database)
        self.path = self.database.with_name(self.database.name + ".lock")
        self._fd: int | None = None
        self.socket: socket.socket | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SmmError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another `smm run` (pid {owner}) is already publishing from {self.database}; "
                "a second daemon on one SQLite file could publish posts twice, so this one will not start"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk, a file size limit
            os.close(fd)
            raise SmmError(f"cannot write the lock file {self.path}: {exc.strerror}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(wake_address(self.database))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                os.close(fd)
                raise AlreadyRunning(
                    f"another `smm run` is already publishing from {self.database} (through another path to the "
                    "same file: a hard link or a bind mount); a second daemon on one SQLite file could publish posts "
                    "twice, so this one will not start"
                ) from None
        else:
            sock.setblocking(False)
            self.socket = sock
        self._fd = fd

    def release(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wake_address(database: Path | str) -> str:
    """An abstract Unix socket name (Linux; nothing on the filesystem) for the database file: its device and inode
    (its real path while it does not exist)."""
    try:
        found = os.stat(database)
        identity = f"{found.st_dev}:{found.st_ino}"
    except OSError:
        identity = str(real_path(database))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return f"\0smm-scheduler-wake-{digest}"


def poke(database: str) -> None:
    """Tell a running daemon to look at the queue now; silently does nothing when none listens."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(b"!", wake_address(database))
    except OSError:
        pass
