"""Media files: recognising images by their bytes, and the content-addressed media store.

A file given to ``smm add --media`` is checked (a regular, readable, non-empty image of a known type and size) and
copied into the store beside the database, named by its SHA-256, so the queue does not depend on the user's files
staying where they were. Storing the same file twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scheduler.errors import InputError, SmmError

MAX_MEDIA_BYTES = 200 * 1024 * 1024
"""Nothing bigger is accepted whatever the networks allow (each network's own limit is checked too)."""

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


def sniff(head: bytes) -> ImageInfo | None:
    """The image type and size in pixels from a file's first bytes (64 KiB is plenty), or None if not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return ImageInfo("image/png", width, height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return ImageInfo("image/gif", width, height)
    if head.startswith(b"\xff\xd8\xff"):
        return ImageInfo("image/jpeg", *_jpeg_size(head))
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


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None, None


def _jpeg_size_in_file(f: BinaryIO) -> tuple[int | None, int | None]:
    """Walk a JPEG's segments by their lengths (seeking, not reading) to the frame header.

    Camera files can carry several 64 KiB metadata segments (EXIF, XMP, ICC) before it, beyond what
    :func:`sniff` is given.
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


def inspect(path: Path) -> tuple[ImageInfo, int]:
    """Check that ``path`` is a readable, non-empty image file; returns its type and size in bytes."""
    shown = display(path)
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        raise InputError(f"media {shown}: no such file") from None
    except RuntimeError:
        raise InputError(f"media {shown}: a symbolic link loop") from None
    except OSError as exc:
        raise InputError(f"media {shown}: {exc.strerror or exc}") from None
    if resolved.is_dir():
        raise InputError(f"media {shown}: is a directory, not an image file")
    if not resolved.is_file():
        raise InputError(f"media {shown}: not a regular file")
    try:
        size = resolved.stat().st_size
        with resolved.open("rb") as f:
            head = f.read(65536)
            info = sniff(head)
            if info is not None and info.mime == "image/jpeg" and info.width is None and size > len(head):
                info = ImageInfo(info.mime, *_jpeg_size_in_file(f))
    except OSError as exc:
        raise InputError(f"media {shown}: cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise InputError(f"media {shown}: the file is empty")
    if size > MAX_MEDIA_BYTES:
        raise InputError(f"media {shown}: {size / 2**20:.0f} MB is larger than any network accepts")
    if info is None:
        raise InputError(f"media {shown}: not an image smm can publish (JPEG, PNG, GIF, WebP, BMP or TIFF)")
    return info, size


class MediaStore:
    """Content-addressed files under ``root``: ``<root>/<first two hex digits>/<sha256><ext>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, item: StoredMedia) -> Path:
        return self.root / item.sha256[:2] / f"{item.sha256}{item.ext}"

    def add(self, source: Path) -> StoredMedia:
        """Check ``source`` and copy it into the store (once per content)."""
        info, size = inspect(source)
        digest = hashlib.sha256()
        try:
            with source.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise InputError(f"media {display(source)}: cannot read: {exc.strerror or exc}") from None
        item = StoredMedia(digest.hexdigest(), source.name, info.mime, size, info.width, info.height)
        target = self.path_of(item)
        if target.is_file() and target.stat().st_size == size:
            return item
        self._mkdir(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
            _fsync_dir(target.parent)  # the rename itself must survive a power cut: the queue will point here
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            # The user's file was fine (it was read above): this is the store's trouble, not bad input.
            shown = display(source)
            raise SmmError(f"media {shown}: cannot copy into the media store {self.root}: {exc.strerror}") from None
        return item

    def _mkdir(self, directory: Path) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not directory.is_dir():
                directory.mkdir(mode=0o700, exist_ok=True)
                _fsync_dir(self.root)
        except OSError as exc:
            raise SmmError(f"cannot create the media store {exc.filename or directory}: {exc.strerror}") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
