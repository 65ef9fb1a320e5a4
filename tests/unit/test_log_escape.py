"""Values from outside reach log lines and the terminal escaped: one record is one line, and nothing drives the
terminal (no C0 or C1 control, no bidi control)."""

from __future__ import annotations

import json
import logging

import pytest

from scheduler.log import JsonFormatter, TextFormatter, escape_for_terminal

FORGED = "x\n2026-12-06 10:00:00 INFO smm.daemon: published post 999\x1b]0;owned\x07\x1b[31mred\x9b2J\u202eevil\u2066"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, ünïcödé, emoji 🙂 and a \\ backslash", "plain text, ünïcödé, emoji 🙂 and a \\ backslash"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x00\x1b\x7f", "\\x00\\x1b\\x7f"),
        ("c1: \x85 \x9b \x9f", "c1: \\x85 \\x9b \\x9f"),
        (
            "bidi: \u202a\u202b\u202c\u202d\u202e \u2066\u2067\u2068\u2069 \u200e\u200f\u061c",
            "bidi: \\u202a\\u202b\\u202c\\u202d\\u202e \\u2066\\u2067\\u2068\\u2069 \\u200e\\u200f\\u061c",
        ),
        ("lines: \u2028\u2029", "lines: \\u2028\\u2029"),
    ],
)
def test_escape_for_terminal(text: str, expected: str) -> None:
    escaped = escape_for_terminal(text)
    assert escaped == expected
    assert escaped.isprintable()  # bidi controls are format characters (Cf): not printable


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("smm.daemon", logging.WARNING, __file__, 1, message, args, info)


@pytest.mark.parametrize("journald", [False, True])
def test_a_forged_value_stays_on_its_log_line(journald: bool) -> None:
    line = TextFormatter(journald=journald).format(record("feed %r: %s", "blog", FORGED))
    assert "\n" not in line and "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert line.endswith(
        "x\\n2026-12-06 10:00:00 INFO smm.daemon: published post 999\\x1b]0;owned\\x07\\x1b[31mred"
        "\\x9b2J\\u202eevil\\u2066"
    )


def test_a_traceback_keeps_its_lines_but_not_the_escapes() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError as exc:
        line = TextFormatter(journald=False).format(record("it broke", exc=exc))
    assert line.splitlines()[1] == "Traceback (most recent call last):"
    assert "\x1b" not in line and "\u202e" not in line


def test_json_lines_escape_the_message_and_extra_fields() -> None:
    entry = record("%s", FORGED)
    entry.channel = "tg\u202e"
    line = JsonFormatter().format(entry)
    data = json.loads(line)
    assert "\n" not in line and "\x9b" not in line and "\u202e" not in line
    assert data["msg"].startswith("x\\n2026-12-06")
    assert data["channel"] == "tg\\u202e"
