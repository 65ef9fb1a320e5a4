"""Media: recognising images and their size from their bytes, refusing what is not one, and the content store.

The images are built here, byte by byte: small but well-formed files of each type (the JPEG is a real baseline
JPEG, the GIF a real LZW stream), so the tests need no image library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from scheduler.errors import InputError, SmmError
from scheduler.media import MAX_MEDIA_BYTES, ImageInfo, MediaStore, StoredMedia, inspect, sniff
from tests.conftest import make_png

# -- tiny images --------------------------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(width: int, height: int, *, sof: int = 0xC0, app_segments: int = 0) -> bytes:
    """A grey baseline JPEG: one component, one-code Huffman tables, every block "DC 0, end of block"."""

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    parts = [b"\xff\xd8", segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    parts += [segment(0xE1, b"Exif\x00\x00" + bytes(65000)) for _ in range(app_segments)]  # big EXIF/XMP blocks
    parts.append(segment(0xDB, b"\x00" + bytes([1] * 64)))
    parts.append(segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"))
    one_code = bytes([1] + [0] * 15) + b"\x00"
    parts.append(segment(0xC4, b"\x00" + one_code + b"\x10" + one_code))
    parts.append(segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    blocks = -(-width // 8) * -(-height // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    parts.append(bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)))
    parts.append(b"\xff\xd9")
    return b"".join(parts)


def gif(width: int, height: int) -> bytes:
    """A two-colour GIF89a; the LZW stream sends a clear code before every pixel, so codes stay 3 bits wide."""
    codes = [4, 0] * (width * height) + [5]
    value = sum(code << (3 * i) for i, code in enumerate(codes))
    data = value.to_bytes(-(-3 * len(codes) // 8), "little")
    blocks = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02"
        + blocks
        + b"\x00\x3b"
    )


def bmp(width: int, height: int, *, top_down: bool = False) -> bytes:
    row = (b"\x80\x80\x80" * width).ljust((3 * width + 3) // 4 * 4, b"\x00")
    pixels = row * height
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    dib = struct.pack(
        "<IiiHHIIiiII", 40, width, -height if top_down else height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0
    )
    return header + dib + pixels


def riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width: int, height: int) -> bytes:
    frame = b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + bytes(10)
    return riff(b"VP8 ", frame)


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return riff(b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + bytes(8))


def webp_extended(width: int, height: int) -> bytes:
    return riff(b"VP8X", b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


def tiff(width: int, height: int, *, big_endian: bool = False) -> bytes:
    """A TIFF header and its first image directory, holding only the width (SHORT) and height (LONG) tags."""
    order = ">" if big_endian else "<"
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    entries = struct.pack(order + "HHIHH", 256, 3, 1, width, 0) + struct.pack(order + "HHII", 257, 4, 1, height)
    return magic + struct.pack(order + "I", 8) + struct.pack(order + "H", 2) + entries + bytes(4)


TIFF = tiff(5, 3)


# -- sniffing -----------------------------------------------------------------------------------------------------

IMAGES = [
    ("png", png(3, 2), ImageInfo("image/png", 3, 2)),
    ("png-wide", png(1200, 1), ImageInfo("image/png", 1200, 1)),
    ("jpeg", jpeg(16, 8), ImageInfo("image/jpeg", 16, 8)),
    ("jpeg-odd", jpeg(1000, 700), ImageInfo("image/jpeg", 1000, 700)),
    ("jpeg-progressive-header", jpeg(640, 480, sof=0xC2), ImageInfo("image/jpeg", 640, 480)),
    ("gif", gif(5, 4), ImageInfo("image/gif", 5, 4)),
    ("webp-lossy", webp_lossy(320, 240), ImageInfo("image/webp", 320, 240)),
    ("webp-lossless", webp_lossless(7, 9), ImageInfo("image/webp", 7, 9)),
    ("webp-extended", webp_extended(4000, 3000), ImageInfo("image/webp", 4000, 3000)),
    ("bmp", bmp(3, 2), ImageInfo("image/bmp", 3, 2)),
    ("bmp-top-down", bmp(3, 2, top_down=True), ImageInfo("image/bmp", 3, 2)),
    ("tiff", TIFF, ImageInfo("image/tiff", 5, 3)),
    ("tiff-big-endian", tiff(2, 70000, big_endian=True), ImageInfo("image/tiff", 2, 70000)),
]


@pytest.mark.parametrize(("data", "expected"), [(d, e) for _, d, e in IMAGES], ids=[n for n, _, _ in IMAGES])
def test_sniff_type_and_size(data: bytes, expected: ImageInfo, tmp_path: Path) -> None:
    # A TIFF's size is in its image directory, found by an offset: inspect() reads it from the file.
    assert sniff(data) == (expected if expected.mime != "image/tiff" else ImageInfo("image/tiff", None, None))
    path = tmp_path / "image.bin"  # the name does not matter, the bytes do
    path.write_bytes(data)
    assert inspect(path) == (expected, len(data))


def test_the_conftest_png_helper_is_a_png() -> None:
    assert sniff(make_png(Path("x.png"), 4, 3).read_bytes()) == ImageInfo("image/png", 4, 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world\n",
        b"%PDF-1.7\n",
        b"\x89PNG\r\n\x1a\n",  # a PNG cut after its signature
        b"GIF89a\x01",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x18ftypheic",  # HEIC: not something every network takes
    ],
)
def test_sniff_refuses_what_is_not_an_image(data: bytes) -> None:
    assert sniff(data) is None


def test_jpeg_size_after_more_than_64_kib_of_metadata(tmp_path: Path) -> None:
    # Camera JPEGs can carry several 64 KiB APP segments (EXIF, XMP, ICC) before the frame header.
    data = jpeg(4032, 3024, app_segments=2)
    assert data.index(b"\xff\xc0") > 65536
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    assert inspect(path) == (ImageInfo("image/jpeg", 4032, 3024), len(data))


# -- what inspect refuses -----------------------------------------------------------------------------------------


def refused(path: Path) -> str:
    with pytest.raises(InputError) as info:
        inspect(path)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert refused(tmp_path / "nope.png") == f"media {tmp_path}/nope.png: no such file"


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    assert refused(tmp_path / "link.png") == f"media {tmp_path}/link.png: no such file"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    assert refused(tmp_path / "empty.png") == f"media {tmp_path}/empty.png: the file is empty"


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "album").mkdir()
    assert refused(tmp_path / "album") == f"media {tmp_path}/album: is a directory, not an image file"


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    assert refused(tmp_path / "notes.png") == (
        f"media {tmp_path}/notes.png: not an image smm can publish (JPEG, PNG, GIF, WebP, BMP or TIFF)"
    )


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert refused(tmp_path / "a.png") == f"media {tmp_path}/a.png: a symbolic link loop"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    assert refused(tmp_path / "pipe.png") == f"media {tmp_path}/pipe.png: not a regular file"


def test_larger_than_any_network_accepts(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as f:  # sparse: costs no disk
        f.write(png(1, 1))
        f.truncate(MAX_MEDIA_BYTES + 1)
    assert refused(path) == f"media {path}: 200 MB is larger than any network accepts"


def test_a_symlink_to_an_image_is_accepted(tmp_path: Path) -> None:
    make_png(tmp_path / "real.png", 2, 2)
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    assert inspect(tmp_path / "link.png")[0] == ImageInfo("image/png", 2, 2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = make_png(tmp_path / "secret.png")
    path.chmod(0)
    assert refused(path) == f"media {path}: cannot read: Permission denied"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_unreadable_file_as_root_without_dac_override(tmp_path: Path) -> None:
    # Root reads anything; without the capabilities that let it ignore file modes, it is refused like anyone.
    path = make_png(tmp_path / "secret.png")
    path.chmod(0)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from scheduler.errors import InputError\n"
        "from scheduler.media import inspect\n"
        "try:\n    inspect(Path(sys.argv[1]))\nexcept InputError as e:\n    print(e)\n"
    )
    dropped = "-dac_override,-dac_read_search"
    result = subprocess.run(
        ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", "--", sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"media {path}: cannot read: Permission denied"


# -- the store ----------------------------------------------------------------------------------------------------


def test_store_is_content_addressed_and_stores_once(tmp_path: Path) -> None:
    data = png(3, 2)
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "copy of a.PNG").write_bytes(data)
    store = MediaStore(tmp_path / "state" / "media")
    first = store.add(tmp_path / "a.png")
    second = store.add(tmp_path / "copy of a.PNG")
    digest = hashlib.sha256(data).hexdigest()
    assert first == StoredMedia(digest, "a.png", "image/png", len(data), 3, 2)
    assert second == StoredMedia(digest, "copy of a.PNG", "image/png", len(data), 3, 2)
    target = tmp_path / "state" / "media" / digest[:2] / f"{digest}.png"
    assert store.path_of(first) == target
    assert target.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "state" / "media").rglob("*") if p.is_file()) == [target.name]


def test_store_names_files_by_type_not_by_the_users_extension(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(jpeg(8, 8))  # a JPEG named .png
    store = MediaStore(tmp_path / "media")
    item = store.add(tmp_path / "photo.png")
    assert (item.mime, item.ext) == ("image/jpeg", ".jpg")
    assert store.path_of(item).suffix == ".jpg"


def test_store_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        make_png(tmp_path / "p.png")
        store = MediaStore(tmp_path / "media")
        item = store.add(tmp_path / "p.png")
    finally:
        os.umask(old)
    target = store.path_of(item)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "media").stat().st_mode) == 0o700
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".incoming-")]


def test_store_replaces_a_damaged_copy(tmp_path: Path) -> None:
    data = png(2, 2)
    (tmp_path / "p.png").write_bytes(data)
    store = MediaStore(tmp_path / "media")
    item = store.add(tmp_path / "p.png")
    store.path_of(item).write_bytes(data[:10])  # e.g. cut short by a full disk, by hand
    assert store.add(tmp_path / "p.png") == item
    assert store.path_of(item).read_bytes() == data


def test_store_writes_survive_a_power_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file and the directory entries naming it are fsynced before add() returns."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    make_png(tmp_path / "p.png")
    store = MediaStore(tmp_path / "media")
    item = store.add(tmp_path / "p.png")
    target = store.path_of(item)
    assert any(".incoming-" in s for s in synced)  # the data, before the rename
    assert str(target.parent) in synced  # the rename
    assert str(tmp_path / "media") in synced  # the new sub-folder


def test_an_invalid_file_leaves_the_store_untouched(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_text("nope")
    store = MediaStore(tmp_path / "media")
    with pytest.raises(InputError):
        store.add(tmp_path / "bad.png")
    assert not (tmp_path / "media").exists()


def test_a_store_that_cannot_be_created_is_not_reported_as_bad_input(tmp_path: Path) -> None:
    make_png(tmp_path / "p.png")
    (tmp_path / "state").write_text("a file where the folder should be")
    with pytest.raises(SmmError) as info:
        MediaStore(tmp_path / "state" / "media").add(tmp_path / "p.png")
    assert not isinstance(info.value, InputError)
    assert info.value.exit_code == 1
    assert str(info.value) == f"cannot create the media store {tmp_path}/state/media: Not a directory"


def test_stored_media_round_trips_through_json() -> None:
    item = StoredMedia("ab" * 32, "x.gif", "image/gif", 10, 5, 4)
    assert StoredMedia.from_dict(item.as_dict()) == item
    assert StoredMedia.from_dict({**item.as_dict(), "width": None, "height": None}).width is None
