"""Reading a file a user names (a config, a CSV to import, a feed): one open, one-line errors, no surprises.

The path is opened once, without blocking (a FIFO without a writer would wait forever), and only a regular file is
read: a device such as ``/dev/zero`` never ends. What is checked is the open file, so a path swapped after the
check changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scheduler.errors import SmmError


def read_user_file(path: str | Path, *, what: str, error: type[SmmError], limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path``; ``error`` with one line naming the path when it cannot be read,
    is not a regular file, or is larger than ``limit`` bytes. ``what`` names what the file should be ("a feed")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a directory, not {what}")
        raise error(f"{path}: not a regular file (a FIFO, a device or a socket); not {what}")
    with open(fd, "rb", closefd=True) as file:
        try:
            data = file.read() if limit is None else file.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if limit is not None and len(data) > limit:
        raise error(f"{path}: larger than {limit // (1024 * 1024)} MB; not {what}")
    return data
