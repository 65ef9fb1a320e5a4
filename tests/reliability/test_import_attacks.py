"""Attacks on ``smm import`` (issue 22): big media held in its write transaction, and malformed CSV files."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest

import scheduler.media
from scheduler.config import load_config
from scheduler.media import ImageInfo
from tests.conftest import CliResult, make_png, run_cli, write_config


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path / "config.toml", sqlite_url)


def smm(config: Path, *args: str) -> CliResult:
    return run_cli(*args, config=config)


def queued(config: Path) -> list[dict[str, object]]:
    posts: list[dict[str, object]] = json.loads(smm(config, "queue", "--json", "--limit", "0").out)
    return posts


def test_media_are_copied_while_other_writers_can_still_write(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying 190 MB of images inside the import's transaction made a concurrent ``smm add`` fail."""
    assert smm(config, "add", "before").code == 0  # the database exists
    for i in range(3):
        make_png(tmp_path / f"img{i}.png", i + 1, 1)
    with (tmp_path / "posts.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["text", "media"], *[[f"post {i}", f"img{i}.png"] for i in range(3)]])
    database = tmp_path / "smm.db"
    locked: list[str] = []
    real = scheduler.media.sniff

    def sniff(head: bytes) -> ImageInfo | None:
        # Every read of an image, the copies included: another process takes the write lock meanwhile, or fails.
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            locked.append(str(exc))
        finally:
            other.close()
        return real(head)

    monkeypatch.setattr(scheduler.media, "sniff", sniff)
    result = smm(config, "import", str(tmp_path / "posts.csv"))
    assert result.code == 0, result
    assert locked == []
    assert len(queued(config)) == 4
    assert len([p for p in load_config(config, env={}).media_dir.rglob("*") if p.is_file()]) == 3


def test_an_import_refused_inside_its_transaction_leaves_no_media_behind(tmp_path: Path, config: Path) -> None:
    """The copies are made before the transaction; when it refuses the rows, they go."""
    assert smm(config, "add", "before").code == 0
    make_png(tmp_path / "offer.png", 2, 2)
    with (tmp_path / "posts.csv").open("w", newline="") as f:
        rows = [[f"offer {i}", "offer.png", "commercial"] for i in range(4)]
        csv.writer(f).writerows([["text", "media", "category"], *rows])
    result = smm(config, "import", str(tmp_path / "posts.csv"))
    assert result.code == 2, result
    assert "consecutive deliveries commercial" in result.err
    media = load_config(config, env={}).media_dir
    assert not media.exists() or [p for p in media.rglob("*") if p.is_file()] == []
    assert len(queued(config)) == 1


def refused(config: Path, path: Path) -> str:
    """The one error line of a refused import, after checking that it wrote nothing."""
    before = queued(config)
    result = smm(config, "import", str(path))
    assert (result.code, result.out) == (2, ""), result
    assert len(result.err.splitlines()) == 1, result.err
    assert queued(config) == before
    return result.err.strip().removeprefix("smm: error: ")


def test_an_unterminated_quote_is_an_error_naming_its_line(tmp_path: Path, config: Path) -> None:
    """Not a post whose text is every following row."""
    assert smm(config, "add", "before").code == 0
    path = tmp_path / "posts.csv"
    path.write_text('text,category\nfirst,news\n"second,news\nthird,news\nfourth,news\n', encoding="utf-8")
    assert refused(config, path) == (
        f'{path}:3: a quoted field starts on this line and is never closed (a " is missing)'
    )


def test_an_unterminated_quote_closed_by_a_later_rows_quote_is_an_error_naming_its_line(
    tmp_path: Path, config: Path
) -> None:
    assert smm(config, "add", "before").code == 0
    path = tmp_path / "posts.csv"
    path.write_text('text,category\n"first,news\nsecond,news\n"third",news\n', encoding="utf-8")
    assert refused(config, path) == (
        f'{path}:2: a quoted field is closed by a " followed by more text '
        '(a " is missing, or one inside should be doubled)'
    )


def test_a_field_over_the_csv_limit_is_one_line_naming_the_row_and_the_limit(tmp_path: Path, config: Path) -> None:
    assert smm(config, "add", "before").code == 0
    path = tmp_path / "posts.csv"
    path.write_text(f'text\nfirst\n"{"x" * 131_073}"\nlast\n', encoding="utf-8")
    assert refused(config, path) == (f"{path}:3: a field is longer than 131,072 characters, the most a field may hold")


@pytest.mark.timeout(30)
def test_a_csv_or_config_that_is_not_a_regular_file_is_one_line_not_a_hang(tmp_path: Path, config: Path) -> None:
    """``smm import /dev/zero`` read until memory ran out, and a FIFO without a writer hung; so did a config."""
    fifo = tmp_path / "posts.csv"
    os.mkfifo(fifo)
    special = "not a regular file (a FIFO, a device or a socket)"
    for source in ("/dev/zero", str(fifo)):
        result = smm(config, "import", source)
        assert (result.code, result.out, result.err) == (2, "", f"smm: error: {source}: {special}; not a CSV file\n")
    result = run_cli("queue", config=fifo)
    assert (result.code, result.err) == (2, f"smm: error: {fifo}: {special}; not a config file\n")
