"""What the Telegram markup tokenizers yield, and the small readers both of them use."""

from __future__ import annotations

import bisect
import re
from typing import Literal, NamedTuple

TokenKind = Literal["text", "open", "close", "markup", "error"]


class Token(NamedTuple):
    """One piece of a marked-up text, in order: ``text[start:end]`` is what the piece is written as.

    - ``text``: visible characters; ``value`` is what they show (an escape or an HTML entity decoded).
    - ``open`` / ``close``: the markup that starts or ends an entity; ``value`` is its Bot API type (``bold``,
      ``text_link``, ``blockquote``, ...; a closing quote may say ``expandable_blockquote``; a close with no
      type ends markup that made no entity: the ``||`` that makes a MarkdownV2 quote expandable).
    - ``markup``: markup that shows nothing and starts or ends no entity (a ``>`` continuing a quote).
    - ``error``: Telegram refuses the text here; ``value`` says why. Reading stops after it, except after an
      unescaped character, which is then read as if it had been escaped.

    ``argument`` is a link's URL, a code block's language, a custom emoji's id or a date's Unix time, on the token
    whose markup spells it (an HTML start tag, a MarkdownV2 link's ``](...)``); ``argument_start`` and
    ``argument_end`` are where it is written, or -1 when it is not written (a link whose text is its URL).
    """

    kind: TokenKind
    start: int
    end: int
    value: str = ""
    argument: str = ""
    argument_start: int = -1
    argument_end: int = -1


class Locator:
    """Line and column of an offset, in logarithmic time (errors are located as they are found)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: list[int] | None = None

    def __call__(self, index: int) -> str:
        if self._lines is None:
            self._lines = [m.start() for m in re.finditer("\n", self._text)]
        line = bisect.bisect_left(self._lines, index)
        column = index - (self._lines[line - 1] if line else -1)
        return f"line {line + 1}, column {column}"


def skip(pattern: re.Pattern[str], s: str, i: int, n: int | None = None) -> int:
    """Where the run of ``pattern`` (which may match nothing) from ``s[i]`` ends."""
    found = pattern.match(s, i, len(s) if n is None else n)
    return found.end() if found else i


def integer(value: str, bits: int) -> int | None:
    """tdlib ``to_integer_safe``: ``value`` when it is written exactly as a signed integer of ``bits`` bits."""
    if not re.fullmatch(r"-?[0-9]{1,20}", value):
        return None
    number = int(value)
    if str(number) != value or not -(1 << (bits - 1)) <= number < (1 << (bits - 1)):
        return None
    return number


def emoji_id(value: str) -> bool:
    """A custom emoji id as tdlib takes it: a 64-bit integer, not 0."""
    return bool(integer(value, 64))


def date_format(value: str) -> bool:
    """tdlib ``FormattedDate::get_date_flags``: ``r``, ``R``, or any of ``tTdDwW``."""
    return value in ("r", "R") or all(c in "tTdDwW" for c in value)


def clip(value: str, limit: int = 24) -> str:
    """``value`` short enough to quote in a message."""
    return value if len(value) <= limit else f"{value[: limit - 3]}..."
