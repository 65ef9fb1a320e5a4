"""The ``outbox`` network: each published post becomes a folder of files, for trying the product and dry runs.

A post goes to ``<path>/<UTC time>-<key>/``: ``post.txt`` (the text, then the link), a copy of each media file,
and ``post.json`` (everything, machine-readable, on one line). The folder is written under a temporary name and
renamed when complete, so a reader never sees half a post, and publishing the same key twice returns the first
folder.

The hidden ``<path>/.keys/`` folder indexes the posts by key: ``.keys/<key>`` is a symbolic link whose target is the
name of the key's folder. A key's link is written (and synced) before its folder is renamed into place, so a post
in place always has its link, and a link whose folder is not there points at what a killed attempt left half
written. Finding a key's post is one ``readlink``, whatever the number of posts (a scan of the folder cost
milliseconds a post at tens of thousands of folders). A folder written before the index existed is indexed on the
first publish.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from adapters.base import MB, Adapter, Capabilities, OutgoingPost, PublishResult, RateLimit
from adapters.errors import AuthError, PermanentError, PublishError, TransientError

if TYPE_CHECKING:
    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader

KEYS = ".keys"
WRITING = ".writing-"
DELETING = ".deleting-"


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxAdapter(Adapter):
    """Writes posts into a folder."""

    network = "outbox"
    title = "outbox"
    capabilities = Capabilities(
        max_text=100_000,
        max_media=20,
        media_types=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}),
        max_media_bytes=200 * MB,
    )
    can_read_back = True
    idempotent_window = float("inf")
    unsupported: ClassVar[Mapping[str, str]] = {
        "results": "the outbox is a folder: nobody sees its posts, so there are no results to read",
        "audience": "the outbox is a folder: it has no audience",
        "comments": "the outbox is a folder: nobody can comment on its posts",
    }

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _now) -> None:
        self.path = Path(path)
        self._clock = clock
        self._root = os.fspath(path)
        self._keys = os.path.join(self._root, KEYS)
        self._indexed = False
        self._uri_root: str | None = None

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        path = table.string("path", "outbox")
        assert path is not None
        return {"path": str((folder / path).resolve()) if not Path(path).is_absolute() else path}

    @classmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> OutboxAdapter:
        return cls(channel.options["path"])

    def _result(self, name: str) -> PublishResult:
        if self._uri_root is None:
            self._uri_root = self.path.resolve().as_uri()
        return PublishResult(remote_id=name, remote_url=f"{self._uri_root}/{name}")

    def _index(self) -> None:
        """Make sure ``.keys`` exists (the folder too), indexing what an earlier version wrote there without it."""
        if self._indexed:
            return
        if not os.path.isdir(self._keys):
            os.makedirs(self._root, exist_ok=True)
            building = os.path.join(self._root, f".keys-building-{os.getpid()}-{os.urandom(4).hex()}")
            os.mkdir(building)
            for key, name in _scan(self._root).items():
                os.symlink(name, os.path.join(building, key))
            _sync_folder(building)
            try:
                os.rename(building, self._keys)
            except OSError:  # another process indexed the folder meanwhile: its index is as good as this one
                shutil.rmtree(building, ignore_errors=True)
                if not os.path.isdir(self._keys):
                    raise
            _sync_folder(self._root)
        self._indexed = True

    def _lookup(self, key: str) -> tuple[str | None, bool]:
        """The name the key's link points at (None without a link), and whether that post is in place."""
        try:
            name = os.readlink(os.path.join(self._keys, key))
        except FileNotFoundError:
            return None, False
        return name, os.path.isfile(os.path.join(self._root, name, "post.json"))

    async def publish(self, post: OutgoingPost) -> PublishResult:
        # Written on the event loop: a few small files, the sync of one of them and a rename (on a thread, the hop
        # costs more than the writing).
        key = post.key or os.urandom(8).hex()
        when = post.publish_at or self._clock()
        name = f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{key}"
        with _translate(self.path):
            try:
                return self._publish(post, key, name, when)
            except FileNotFoundError:
                # The folder or its index was removed while the daemon ran: index it again and write the post.
                self._indexed = False
                return self._publish(post, key, name, when)

    def _publish(self, post: OutgoingPost, key: str, name: str, when: datetime) -> PublishResult:
        self._index()
        link = os.path.join(self._keys, key)
        prior, published = self._lookup(key) if post.key else (None, False)
        if published:
            assert prior is not None
            return self._result(prior)
        if prior is not None:
            # An attempt that was killed: its half-written folder goes, and the link is pointed at this attempt's.
            shutil.rmtree(os.path.join(self._root, WRITING + prior), ignore_errors=True)
            os.unlink(link)
        tmp = os.path.join(self._root, WRITING + name)
        os.symlink(name, link)
        os.mkdir(tmp)
        media = []
        for i, item in enumerate(post.media, start=1):
            target = f"media-{i}{item.path.suffix}"
            _copy(item.path, os.path.join(tmp, target))
            media.append({"file": target, "mime": item.mime, "size": item.size})
        body = post.text + (f"\n\n{post.link}" if post.link and post.link not in post.text else "")
        _write(os.path.join(tmp, "post.txt"), (body + "\n").encode(), sync=False)
        sidecar = {
            "key": post.key,
            "text": post.text,
            "link": post.link,
            "media": media,
            "published_at": when.astimezone(UTC).isoformat(),
        }
        # One line: json's C encoder does not indent (indenting takes the pure-Python one, several times slower).
        _write(os.path.join(tmp, "post.json"), (json.dumps(sidecar, ensure_ascii=False) + "\n").encode(), sync=True)
        # The link must survive a power cut whenever the folder's rename does.
        _sync_folder(self._keys)
        os.replace(tmp, os.path.join(self._root, name))
        _sync_folder(self._root)
        return self._result(name)

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        if not post.key:
            return None
        with _translate(self.path):
            try:
                os.stat(self._root)
            except FileNotFoundError:
                return None  # nothing was ever published there
            self._index()
            name, published = self._lookup(post.key)
        return self._result(name) if published and name is not None else None

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
        """Remove the post's folder: renamed to a hidden name first (a reader never sees half a post), then removed.
        Its key's link stays, so the post is never written again under that key. A folder already gone counts as
        deleted."""
        if not remote_id or remote_id.startswith(".") or os.sep in remote_id or remote_id in (os.curdir, os.pardir):
            raise PermanentError(f"{remote_id!r} is not the name of a post in the outbox {self.path}")
        hidden = os.path.join(self._root, DELETING + remote_id)
        with _translate(self.path):
            try:
                os.replace(os.path.join(self._root, remote_id), hidden)
            except FileNotFoundError:
                pass
            else:
                _sync_folder(self._root)
            shutil.rmtree(hidden, onerror=_gone_already)

    async def check(self) -> str:
        """Whether posts can be written into the folder. Creates nothing: the first post creates the folder."""
        with _translate(self.path):
            existing = self.path
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
            if existing != self.path:
                if not os.access(existing, os.W_OK | os.X_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))
                return f"folder {self.path} does not exist yet; the first post creates it in {existing}"
            probe = self.path / f".check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        return f"folder {self.path} is writable"

    def rate_limits(self) -> tuple[RateLimit, ...]:
        return (RateLimit(f"outbox:{self.path}", 1000, 1),)


def _scan(root: str) -> dict[str, str]:
    """Each key's folder in ``root``: the post in place, else what a killed attempt left half written (as the name
    it would have had, so that the next attempt removes it)."""
    found: dict[str, str] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            name = entry.name
            writing = name.startswith(WRITING)
            if writing:
                name = name[len(WRITING) :]
            elif name.startswith(".") or not os.path.isfile(os.path.join(entry.path, "post.json")):
                continue
            _, sep, key = name.partition("-")
            if sep and key and (not writing or key not in found):
                found[key] = name
    return found


def _gone_already(function: object, path: str, info: tuple[type[BaseException], BaseException, object]) -> None:
    """``shutil.rmtree``'s error handler: a file or folder already gone is what was wanted."""
    if not isinstance(info[1], FileNotFoundError):
        raise info[1]


def _copy(source: Path, target: str) -> None:
    """Copy a media file with its mode: the media store keeps its files private (0600), and so does the copy."""
    with open(source, "rb") as src:
        mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _write(path: str, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path: str) -> None:
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
