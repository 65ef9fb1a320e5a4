"""Attacks on the media store (issue 22): a file swapped or rewritten between the check and the copy.

Each race is made deterministic by a seam: the attacker acts the moment the image's header has been read (the
check), before the bytes are hashed and copied. The stored file must be the checked image, or the post refused;
never another file under the checked file's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import scheduler.media
from scheduler import render
from scheduler.config import ChannelConfig, load_config
from scheduler.errors import InputError
from scheduler.media import ImageInfo, MediaStore
from scheduler.render import PostContent
from tests.conftest import make_png, run_cli, write_config
from tests.reliability.test_hostile_input import NETWORK_CHANNELS
from tests.support import smm

SECRET = b"root:$6$hash-of-the-root-password:19000:0:99999:7:::\n" * 3


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A small file whose PNG header claims ``width`` x ``height`` pixels (nothing here decodes the pixels)."""
    make_png(path, 1, 1)
    with path.open("r+b") as f:
        f.seek(16)
        f.write(struct.pack(">II", width, height))
    return path


def after_first_check(monkeypatch: pytest.MonkeyPatch, attack: Callable[[], None]) -> None:
    """Run ``attack`` once, right after the first image header is read (the check), before anything else."""
    real = scheduler.media.sniff
    done: list[bool] = []

    def sniff(head: bytes) -> ImageInfo | None:
        info = real(head)
        if not done:
            done.append(True)
            attack()
        return info

    monkeypatch.setattr(scheduler.media, "sniff", sniff)


def test_a_file_replaced_after_the_check_is_not_what_gets_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_png(tmp_path / "img.png", 4, 4)
    checked = image.read_bytes()
    (tmp_path / "shadow").write_bytes(SECRET)
    after_first_check(monkeypatch, lambda: os.replace(tmp_path / "shadow", image))
    store = MediaStore(tmp_path / "media")
    item = store.add(image)
    assert item.sha256 == hashlib.sha256(checked).hexdigest()
    assert [p.read_bytes() for p in files_in(tmp_path / "media")] == [checked]


def test_a_symlink_repointed_after_the_check_is_not_followed_to_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = make_png(tmp_path / "real.png", 4, 4).read_bytes()
    (tmp_path / "shadow").write_bytes(SECRET)
    link = tmp_path / "img.png"
    link.symlink_to(tmp_path / "real.png")

    def repoint() -> None:
        (tmp_path / "new-link").symlink_to(tmp_path / "shadow")
        os.replace(tmp_path / "new-link", link)

    after_first_check(monkeypatch, repoint)
    item = MediaStore(tmp_path / "media").add(link)
    assert item.sha256 == hashlib.sha256(checked).hexdigest()
    assert [p.read_bytes() for p in files_in(tmp_path / "media")] == [checked]


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_file_whose_size_changes_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    image = make_png(tmp_path / "img.png", 4, 4)

    def rewrite() -> None:
        if change == "grows":
            with image.open("ab") as f:  # the same file, not a new one: the open descriptor sees it
                f.write(SECRET)
        else:
            os.truncate(image, 20)

    after_first_check(monkeypatch, rewrite)
    with pytest.raises(InputError) as info:
        MediaStore(tmp_path / "media").add(image)
    assert str(info.value) == f"media {image}: the file changed size while it was read; queue it again"
    assert files_in(tmp_path / "media") == []


def test_a_header_rewritten_in_place_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_png(tmp_path / "img.png", 4, 4)

    def widen() -> None:  # the same size in bytes, another size in pixels than the one checked
        with image.open("r+b") as f:
            f.seek(16)
            f.write(struct.pack(">II", 50_000, 50_000))

    after_first_check(monkeypatch, widen)
    with pytest.raises(InputError) as info:
        MediaStore(tmp_path / "media").add(image)
    assert str(info.value) == f"media {image}: the file changed while it was read; queue it again"
    assert files_in(tmp_path / "media") == []


def test_a_stored_copy_changed_behind_the_stores_back_is_not_reused(tmp_path: Path) -> None:
    image = make_png(tmp_path / "img.png", 4, 4)
    store = MediaStore(tmp_path / "media")
    item = store.add(image)
    stored = store.path_of(item)
    stored.write_bytes(SECRET[: item.size].ljust(item.size, b"x"))  # the same size: only the hash tells
    assert store.add(image) == item
    assert stored.read_bytes() == image.read_bytes()


def test_smm_add_refuses_a_file_swapped_for_another_image_after_its_checks(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post's checks passed on a small image; a 50,000 px one put in its place must not be queued."""
    config = write_config(tmp_path / "config.toml", sqlite_url)
    image = make_png(tmp_path / "img.png", 4, 4)
    png_claiming(tmp_path / "huge.png", 50_000, 50_000)

    def problems(content: PostContent, channel: ChannelConfig, media_root: Path) -> list[str]:
        found = render.problems(content, channel, media_root)
        os.replace(tmp_path / "huge.png", image)
        return found

    monkeypatch.setattr("scheduler.intake.problems", problems)
    result = run_cli("add", "x", "--media", str(image), config=config)
    assert result.code == 2, result
    assert result.err.splitlines()[-1] == (
        f"smm: error: media {image}: the file changed after it was checked; queue it again"
    )
    assert files_in(load_config(config, env={}).media_dir) == []
    assert json.loads(run_cli("queue", "--json", config=config).out) == []


def jpeg_without_frame_header() -> bytes:
    """A JPEG's start, metadata and scan, but no start-of-frame segment: nothing says how big it is."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xda" + struct.pack(">H", 8) + bytes(6) + bytes(100) + b"\xff\xd9"


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("noframe.jpg", jpeg_without_frame_header(), "JPEG"),
        ("noframe-big.jpg", jpeg_without_frame_header() + bytes(70_000), "JPEG"),
        ("zero.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(8) + bytes(20), "PNG"),
        ("noifd.tif", b"II*\x00\x08\x00\x00\x00" + bytes(16), "TIFF"),
    ],
)
def test_an_image_without_a_size_in_pixels_is_refused(tmp_path: Path, name: str, data: bytes, kind: str) -> None:
    """Stored with ``width: null``, it would skip every network's pixel limits."""
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        MediaStore(tmp_path / "media").add(path)
    assert str(info.value) == f"media {path}: no size in pixels found in the {kind} file (damaged or cut short?)"
    assert files_in(tmp_path / "media") == []


# -- pixel limits, names in messages, leftovers, modes ------------------------------------------------------------


def test_a_50000_pixel_square_is_refused_for_facebook_and_ok_naming_the_users_file(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, NETWORK_CHANNELS, outbox=False)
    huge = png_claiming(tmp_path / "huge.png", 50_000, 50_000)
    result = run_cli("add", "x", "--media", str(huge), config=config)
    assert result.code == 2, result
    message = result.err.removeprefix("smm: error: ").strip()
    for channel, network in (("fb", "facebook"), ("ok", "ok")):
        assert f"channel '{channel}': huge.png: 50000x50000 px; {network} needs width + height <= 30000" in message
    assert "0000000000" not in message  # the store's name for a file being checked
    assert files_in(load_config(config, env={}).media_dir) == []


def test_smm_add_removes_copies_a_killed_add_left_over_an_hour_ago(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    media = load_config(config, env={}).media_dir
    media.mkdir(parents=True)
    old, fresh = media / ".incoming-killed", media / ".incoming-running"
    old.write_bytes(b"half a copy")
    fresh.write_bytes(b"a copy being written")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert run_cli("add", "x", "--media", str(make_png(tmp_path / "p.png")), config=config).code == 0
    assert not old.exists()
    assert fresh.exists()  # another smm add may be writing it


def test_the_daemon_removes_leftover_copies_at_start_and_the_outbox_keeps_the_stores_mode(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    assert run_cli("add", "x", "--now", "--media", str(make_png(tmp_path / "p.png")), config=config).code == 0
    media = load_config(config, env={}).media_dir
    legacy = next(p for p in media.iterdir() if p.is_dir()) / ".incoming-abc"  # where earlier versions wrote them
    legacy.write_bytes(b"half a copy")
    two_hours_ago = time.time() - 7200
    os.utime(legacy, (two_hours_ago, two_hours_ago))
    result = smm("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert not legacy.exists()
    assert "removed 1 media copy left by a killed process" in result.stderr
    [stored] = files_in(media)
    [published] = (tmp_path / "outbox").glob("*/media-1.png")
    assert published.read_bytes() == stored.read_bytes()
    assert stat.S_IMODE(stored.stat().st_mode) == stat.S_IMODE(published.stat().st_mode) == 0o600
