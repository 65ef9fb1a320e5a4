"""Attacks through a post's text (issue 22): C1 control characters, and bidi controls shown on a terminal.

C1 controls (U+0080-U+009F; U+009B is a one-character CSI, as ESC [ is) are refused in a post, from the command
line and from a CSV file, as C0 controls are. Bidi controls are fair text in Arabic or Hebrew, so they are kept,
but ``smm queue`` and ``smm show`` print them escaped: raw, U+202E turns "gnp.exe" into "exe.png" on screen.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import CliResult, make_png, run_cli, write_config

RLO = "\u202e"
ISOLATE = "\u2066"


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path / "config.toml", sqlite_url)


def smm(config: Path, *args: str) -> CliResult:
    return run_cli(*args, config=config)


@pytest.mark.parametrize("char", ["\x85", "\x9b", "\x9f", "\x80"])
def test_smm_add_refuses_a_c1_control_character(config: Path, char: str) -> None:
    result = smm(config, "add", f"ok{char}[31mred", "--json")
    assert result.code == 2, result
    assert result.err == f"smm: error: the text contains the control character U+{ord(char):04X} at position 3\n"
    assert json.loads(smm(config, "queue", "--json").out) == []


def test_smm_add_refuses_a_c1_control_character_in_a_link_or_a_text_for_a_network(config: Path) -> None:
    result = smm(config, "add", "x", "--link", "https://example.org/\x9b31m")
    assert result.code == 2, result
    assert "contains a control character" in result.err
    result = smm(config, "add", "x", "--text-for", "outbox=ok\x9b")
    assert result.code == 2, result
    assert result.err == "smm: error: --text-for outbox: the text contains the control character U+009B at position 3\n"


def test_smm_import_refuses_a_row_with_a_c1_control_character(tmp_path: Path, config: Path) -> None:
    path = tmp_path / "posts.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], ["fine"], ["bad\x9b2J"], ["fine too"]])
    result = smm(config, "import", str(path))
    assert result.code == 2, result
    assert result.err == f"smm: error: {path}:3: the text contains the control character U+009B at position 4\n"
    assert json.loads(smm(config, "queue", "--json").out) == []


def test_bidi_controls_are_kept_in_the_post_and_printed_escaped(tmp_path: Path, config: Path) -> None:
    media = make_png(tmp_path / f"photo{RLO}gnp.exe", 2, 2)
    text = f"invoice{RLO}fdp.exe\nsecond {ISOLATE}line"
    view = json.loads(
        smm(config, "add", text, "--media", str(media), "--link", f"https://example.org/{RLO}x", "--json").out
    )
    assert view["text"] == text  # stored as given
    queue = smm(config, "queue")
    show = smm(config, "show", str(view["id"]))
    for result in (queue, show):
        assert result.code == 0, result
        assert RLO not in result.out and ISOLATE not in result.out
    assert "invoice\\u202efdp.exe" in queue.out
    assert "  text: invoice\\u202efdp.exe\n        second \\u2066line\n" in show.out
    assert "  link: https://example.org/\\u202ex\n" in show.out
    assert "  media: photo\\u202egnp.exe (image/png 2x2," in show.out
