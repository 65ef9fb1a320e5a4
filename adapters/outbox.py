"""The ``outbox`` network: each published post becomes a folder of files, for trying the product and dry runs.

A post goes to ``<path>/<UTC time>-<key>/``: ``post.txt`` (the text, then the link), a copy of each media file,
and ``post.json`` (everything, machine-readable). The folder is written under a temporary name and renamed when
complete, so a reader never sees half a post, and publishing the same key twice returns the first folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from adapters.base import MB, Adapter, Capabilities, OutgoingPost, PublishResult, RateLimit
from adapters.errors import AuthError, PublishError, TransientError


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxAdapter(Adapter):
    """Writes posts into a folder."""

    network = "outbox"
    capabilities = Capabilities(
        max_text=100_000,
        max_media=20,
        media_types=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}),
        max_media_bytes=200 * MB,
    )
    can_read_back = True
    idempotent_window = float("inf")

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _now) -> None:
        self.path = Path(path)
        self._clock = clock
        self._uri_root: str | None = None

    def _scan(self, key: str) -> tuple[Path | None, list[Path]]:
        """The post's folder (None if it was not published) and what killed attempts at it left half written.

        One pass over the folder's entries (a glob per post compiled a pattern and walked the folder twice: most of
        the daemon's CPU per post in B10)."""
        found: Path | None = None
        stale: list[Path] = []
        suffix = f"-{key}"
        try:
            entries = os.scandir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None, []
        with entries:
            for entry in entries:
                if not entry.name.endswith(suffix):
                    continue
                if entry.name.startswith("."):
                    if entry.name.startswith(".writing-"):
                        stale.append(Path(entry.path))
                elif found is None and os.path.isfile(os.path.join(entry.path, "post.json")):
                    found = Path(entry.path)
        return found, stale

    def _result(self, folder: Path) -> PublishResult:
        if self._uri_root is None:
            self._uri_root = self.path.resolve().as_uri()
        return PublishResult(remote_id=folder.name, remote_url=f"{self._uri_root}/{folder.name}")

    async def publish(self, post: OutgoingPost) -> PublishResult:
        # Written on the event loop: a few small files, the sync of one of them and a rename (on a thread, the hop
        # cost more than the writing: B10 at a thousand posts a second went from 0.55 to 0.65 ms of CPU a post).
        key = post.key or os.urandom(8).hex()
        when = post.publish_at or self._clock()
        name = f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{key}"
        final = self.path / name
        tmp = self.path / f".writing-{name}"
        with _translate(self.path):
            # The post if it was published already, and what an earlier attempt at it left half written (the
            # process was killed), under its own time.
            existing, stale = self._scan(post.key) if post.key else (None, [])
            if existing is not None:
                return self._result(existing)
            self.path.mkdir(parents=True, exist_ok=True)
            for leftover in stale:  # this attempt's own temporary folder among them
                shutil.rmtree(leftover, ignore_errors=True)
            tmp.mkdir()
            media = []
            for i, item in enumerate(post.media, start=1):
                target = tmp / f"media-{i}{item.path.suffix}"
                shutil.copyfile(item.path, target)
                media.append({"file": target.name, "mime": item.mime, "size": item.size})
            body = post.text + (f"\n\n{post.link}" if post.link and post.link not in post.text else "")
            (tmp / "post.txt").write_text(body + "\n", encoding="utf-8")
            sidecar = {
                "key": post.key,
                "text": post.text,
                "link": post.link,
                "media": media,
                "published_at": when.astimezone(UTC).isoformat(),
            }
            with (tmp / "post.json").open("w", encoding="utf-8") as f:
                f.write(json.dumps(sidecar, ensure_ascii=False, indent=2))  # one write (dump() makes dozens)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        _sync_folder(self.path)
        return self._result(final)

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        if not post.key:
            return None
        with _translate(self.path):
            existing, _ = self._scan(post.key)
        return self._result(existing) if existing is not None else None

    async def check(self) -> str:
        with _translate(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        return f"folder {self.path} is writable"

    def rate_limits(self) -> tuple[RateLimit, ...]:
        return (RateLimit(f"outbox:{self.path}", 1000, 1),)


def _sync_folder(path: Path) -> None:
    """Make the rename of a post's folder survive a power cut, where the file system can: the post is in place
    whatever this says (some network and FUSE file systems refuse to sync a folder), so a failure is not the post's."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _translate:
    """Filesystem errors as publish errors: a full disk passes, a folder we may not write to needs a person."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, OSError):
            return
        reason = exc.strerror or str(exc)
        error: PublishError
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN):
            error = TransientError(f"cannot write to the outbox {self.path}: {reason}")
        else:
            error = AuthError(f"cannot write to the outbox {self.path}: {reason}; fix the folder or its permissions")
        raise error from exc
