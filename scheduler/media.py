"""Media files: recognising images by their bytes, and the content-addressed media store.

A file given to ``smm add --media`` is checked (a regular, readable, non-empty image of a known type and size) and
copied into the store beside the database, named by its SHA-256, so the queue does not depend on the user's files
staying where they were. Storing the same file twice stores it once.

The user's file is opened once: what is checked, hashed and copied is what that one open file holds, whatever
happens to the path meanwhile (a file or a symbolic link replaced), and the copy is checked and hashed again
before it is put in place. A copy is written beside the store under a temporary name (*staged*) and renamed into
place (*committed*) only once the post that uses it is being written, so a refused post leaves nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from scheduler.errors import InputError, SmmError

MAX_MEDIA_BYTES = 200 * 1024 * 1024
"""Nothing bigger is accepted whatever the networks allow (each network's own limit is checked too)."""
INCOMING = ".incoming-"
"""The prefix of a copy on its way into the store."""
STALE_INCOMING = timedelta(hours=1)
"""A copy on its way in for longer than this was left by a process that was killed: :meth:`MediaStore.sweep`
removes it."""
_BLOCK = 1 << 20

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
}


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class StoredMedia:
    """A media file in the store, as recorded on a post."""

    sha256: str
    name: str
    mime: str
    size: int
    width: int | None
    height: int | None

    @property
    def ext(self) -> str:
        return EXTENSIONS.get(self.mime, "")

    def as_dict(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "mime": self.mime,
            "size": self.size,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> StoredMedia:
        def opt_int(v: object) -> int | None:
            return int(v) if isinstance(v, int | float | str) and str(v).isdigit() else None

        return cls(
            sha256=str(data["sha256"]),
            name=str(data.get("name", "")),
            mime=str(data["mime"]),
            size=int(str(data["size"])),
            width=opt_int(data.get("width")),
            height=opt_int(data.get("height")),
        )


def stored_path(root: Path, item: StoredMedia) -> Path:
    """Where the store under ``root`` keeps ``item``: ``<root>/<first two hex digits>/<sha256><ext>``."""
    return root / item.sha256[:2] / f"{item.sha256}{item.ext}"


def sniff(head: bytes) -> ImageInfo | None:
    """The image type and size in pixels from a file's first bytes (64 KiB is plenty), or None if not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return ImageInfo("image/png", width, height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return ImageInfo("image/gif", width, height)
    if head.startswith(b"\xff\xd8\xff"):
        return ImageInfo("image/jpeg", *_jpeg_size(io.BytesIO(head)))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageInfo("image/webp", *_webp_size(head))
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return ImageInfo("image/bmp", abs(width), abs(height))
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageInfo("image/tiff", None, None)
    return None


_JPEG_FRAMES = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
"""Start-of-frame markers: the segment that holds the image's size."""


def _jpeg_size(f: BinaryIO) -> tuple[int | None, int | None]:
    """Walk a JPEG's segments by their lengths (seeking, not reading) to the frame header, which holds the size.

    The one JPEG reader: :func:`sniff` runs it over the first bytes of a file, and :func:`_describe` over the whole
    file when the frame header lies beyond them (camera files can carry several 64 KiB metadata segments, EXIF,
    XMP, ICC, before it).
    """
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            return None, None
        if byte != b"\xff":
            continue
        marker = f.read(1)
        while marker == b"\xff":
            marker = f.read(1)
        if not marker or marker[0] in (0xD9, 0xDA):  # end of image, or the pixels start: no frame header
            return None, None
        if marker[0] == 0x01 or 0xD0 <= marker[0] <= 0xD8:
            continue
        header = f.read(2)
        if len(header) < 2:
            return None, None
        if marker[0] in _JPEG_FRAMES:
            frame = f.read(5)
            if len(frame) < 5:
                return None, None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        f.seek(struct.unpack(">H", header)[0] - 2, os.SEEK_CUR)


def _tiff_size_in_file(f: BinaryIO) -> tuple[int | None, int | None]:
    """The ImageWidth and ImageLength tags of a TIFF's first image directory (wherever in the file it is)."""
    f.seek(0)
    header = f.read(8)
    if len(header) < 8:
        return None, None
    order = "<" if header[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", header[4:8])
    f.seek(offset)
    count_bytes = f.read(2)
    if len(count_bytes) < 2:
        return None, None
    (count,) = struct.unpack(order + "H", count_bytes)
    entries = f.read(12 * count)
    found: dict[int, int] = {}
    for i in range(0, len(entries) - 11, 12):
        tag, kind = struct.unpack(order + "HH", entries[i : i + 4])
        if tag in (256, 257) and kind in (3, 4):  # SHORT or LONG
            value = entries[i + 8 : i + 10] if kind == 3 else entries[i + 8 : i + 12]
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value)[0]
    return found.get(256), found.get(257)


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None, None


def display(path: Path) -> str:
    """A path for a one-line message: as is, or quoted with escapes when it holds a line break or another control."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _open(path: Path) -> tuple[int, int]:
    """Open ``path`` for reading once; returns the descriptor and the file's size.

    Refuses what is not a regular file without reading it (a FIFO is opened without blocking).
    """
    shown = display(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"media {shown}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"media {shown}: a symbolic link loop") from None
        if exc.errno == errno.EACCES:
            raise InputError(f"media {shown}: cannot read: {exc.strerror}") from None
        raise InputError(f"media {shown}: {exc.strerror or exc}") from None
    try:
        status = os.fstat(fd)
        mode, size = status.st_mode, status.st_size
        if stat.S_ISDIR(mode):
            raise InputError(f"media {shown}: is a directory, not an image file")
        if not stat.S_ISREG(mode):
            raise InputError(f"media {shown}: not a regular file")
        if size == 0:
            raise InputError(f"media {shown}: the file is empty")
        if size > MAX_MEDIA_BYTES:
            raise InputError(f"media {shown}: {size / 2**20:.0f} MB is larger than any network accepts")
    except BaseException:
        os.close(fd)
        raise
    return fd, size


def _describe(f: BinaryIO, size: int, shown: str) -> ImageInfo:
    """The type and pixel size of the image ``f`` holds (read from its start); refuses a file that is not an image
    smm can publish, or one whose size in pixels cannot be found (the networks' pixel limits could not be checked)."""
    try:
        f.seek(0)
        head = f.read(65536)
        info = sniff(head)
        if info is not None and info.width is None and size > len(head) and info.mime == "image/jpeg":
            info = ImageInfo(info.mime, *_jpeg_size(f))
        elif info is not None and info.mime == "image/tiff":
            info = ImageInfo(info.mime, *_tiff_size_in_file(f))
    except OSError as exc:
        raise InputError(f"media {shown}: cannot read: {exc.strerror or exc}") from None
    if info is None:
        raise InputError(f"media {shown}: not an image smm can publish (JPEG, PNG, GIF, WebP, BMP or TIFF)")
    if not info.width or not info.height:
        kind = info.mime.removeprefix("image/").upper()
        raise InputError(f"media {shown}: no size in pixels found in the {kind} file (damaged or cut short?)")
    return info


def inspect(path: Path) -> tuple[ImageInfo, int]:
    """Check that ``path`` is a readable, non-empty image file; returns its type and size in bytes."""
    fd, size = _open(path)
    with os.fdopen(fd, "rb") as f:
        return _describe(f, size, display(path)), size


def _digest(f: BinaryIO) -> str:
    f.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


class MediaStore:
    """Content-addressed files under ``root``: ``<root>/<first two hex digits>/<sha256><ext>``.

    :meth:`add` stores a file at once; :meth:`stage` copies it beside the store, and :meth:`commit` puts every
    staged copy in place (:meth:`discard`, or leaving :meth:`staging` without committing, removes them).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._staged: list[tuple[Path, Path]] = []

    def path_of(self, item: StoredMedia) -> Path:
        return stored_path(self.root, item)

    def add(self, source: Path) -> StoredMedia:
        """Check ``source`` and copy it into the store (once per content)."""
        with self.staging():
            item = self.stage(source)
            self.commit()
        return item

    @contextmanager
    def staging(self) -> Iterator[MediaStore]:
        """Stage copies in the block; whatever is not committed when it ends (by an error, say) is removed."""
        try:
            yield self
        finally:
            self.discard()

    def stage(self, source: Path, expect: StoredMedia | None = None) -> StoredMedia:
        """Check and copy ``source`` beside the store, from one open file; returns what :meth:`commit` will store.

        ``expect`` is what an earlier check of the same path found (its type, size and pixels): a file that no
        longer matches it was changed after it was checked, and is refused. So is a file whose size changes while
        it is read.
        """
        shown = display(source)
        fd, size = _open(source)
        with os.fdopen(fd, "rb") as f:
            info = _describe(f, size, shown)
            if expect is not None and (info.mime, size, info.width, info.height) != (
                expect.mime,
                expect.size,
                expect.width,
                expect.height,
            ):
                raise InputError(f"media {shown}: the file changed after it was checked; queue it again")
            self._mkdir(self.root)
            try:
                tmp_fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=INCOMING)
            except OSError as exc:
                raise self._trouble(shown, exc) from None
            tmp = Path(tmp_name)
            try:
                with os.fdopen(tmp_fd, "w+b") as out:
                    digest = self._copy(f, out, size, shown)
                    # What is stored is the copy: it must be the image that was checked, with the hash it is named by.
                    if _describe(out, size, shown) != info or _digest(out) != digest:
                        raise InputError(f"media {shown}: the file changed while it was read; queue it again")
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise self._trouble(shown, exc) from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        item = StoredMedia(digest, source.name, info.mime, size, info.width, info.height)
        if _holds(self.path_of(item), digest):
            tmp.unlink(missing_ok=True)
        else:
            self._staged.append((tmp, self.path_of(item)))
        return item

    def _copy(self, f: BinaryIO, out: BinaryIO, size: int, shown: str) -> str:
        """Copy ``f`` (``size`` bytes when checked) into ``out`` and sync it; returns the SHA-256 of what was read."""
        digest = hashlib.sha256()
        copied = 0
        f.seek(0)
        while copied <= size:
            try:
                block = f.read(min(_BLOCK, size + 1 - copied))
            except OSError as exc:
                raise InputError(f"media {shown}: cannot read: {exc.strerror or exc}") from None
            if not block:
                break
            digest.update(block)
            out.write(block)
            copied += len(block)
        if copied != size or os.fstat(f.fileno()).st_size != size:
            raise InputError(f"media {shown}: the file changed size while it was read; queue it again")
        out.flush()
        os.fsync(out.fileno())
        return digest.hexdigest()

    def commit(self) -> None:
        """Put every staged copy in place; each rename is synced (the queue is about to point there)."""
        try:
            while self._staged:
                tmp, target = self._staged[0]
                self._mkdir(target.parent)
                try:
                    os.replace(tmp, target)
                    _fsync_dir(target.parent)
                except OSError as exc:
                    raise SmmError(f"cannot write into the media store {self.root}: {exc.strerror}") from None
                self._staged.pop(0)
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the staged copies that were not committed."""
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def sweep(self, now: datetime, *, deep: bool = False) -> int:
        """Remove the copies a killed process left on their way in (older than :data:`STALE_INCOMING`); ``deep``
        looks in the sub-folders too, where earlier versions wrote them. Returns how many were removed.

        Best effort: what cannot be listed or removed stays for the next sweep (it only takes up space).
        """
        cutoff = (now - STALE_INCOMING).timestamp()
        folders = [self.root]
        removed = 0
        while folders:
            try:
                with os.scandir(folders.pop()) as entries:
                    for entry in entries:
                        if deep and len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
                            folders.append(Path(entry.path))
                        elif entry.name.startswith(INCOMING) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
            except OSError:
                continue
        return removed

    def _trouble(self, shown: str, exc: OSError) -> SmmError:
        # The user's file was fine (it was read): this is the store's trouble, not bad input.
        return SmmError(f"media {shown}: cannot copy into the media store {self.root}: {exc.strerror}")

    def _mkdir(self, directory: Path) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not directory.is_dir():
                directory.mkdir(mode=0o700, exist_ok=True)
                _fsync_dir(self.root)
        except OSError as exc:
            raise SmmError(f"cannot create the media store {exc.filename or directory}: {exc.strerror}") from None


def _holds(target: Path, digest: str) -> bool:
    """Whether ``target`` is a stored file with this content (a copy cut short or changed by hand is not)."""
    try:
        with target.open("rb") as f:
            return _digest(f) == digest
    except OSError:
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
