"""Telegram HTML read as tdlib's ``parse_html`` reads it (``td/telegram/MessageEntity.cpp``), in one pass."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from adapters.telegram_markup._tokens import Locator, Token, clip, date_format, emoji_id, skip

HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
HTML_TAGS = frozenset(HTML_TYPES)

_SPACE = " \t\r\n\0\v"  # tdlib is_space; "\0" also stands for the end of the text
_HTML_RUN = re.compile(r"[^<&]+")
_TAG_NAME = re.compile(r"[^ \t\r\n\0\v>]*")
_ATTRIBUTE_NAME = re.compile(r"""[^ \t\r\n\0\v=>/"']*""")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")
_QUOTED_RUN = {'"': re.compile(r'[^"&\0]+'), "'": re.compile(r"[^'&\0]+")}
_SKIP_SPACE = re.compile(r"[ \t\r\n\v]*")
_DECIMAL, _HEX, _LETTERS = re.compile(r"[0-9]*"), re.compile(r"[0-9A-Fa-f]*"), re.compile(r"[A-Za-z]*")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _reference(s: str, i: int) -> tuple[str, int]:
    """The character the reference at ``s[i] == "&"`` stands for and where it ends, or ``("", i)`` when tdlib
    leaves it as written: only ``&lt; &gt; &amp; &quot;``, ``&#NNN;`` and ``&#xHHH;`` (lower-case x), ``;``
    optional, no NUL, nothing from U+10FFFF on, at most 9 characters before the ``;``."""
    j = i + 1
    if s[j] == "#":
        hexadecimal = s[j + 1] == "x"
        j += 2 if hexadecimal else 1
        end = skip(_HEX if hexadecimal else _DECIMAL, s, j)
        if end - i >= 10 or end == j:
            return "", i
        code = int(s[j:end], 16 if hexadecimal else 10)
        if code == 0 or code >= 0x10FFFF:
            return "", i
        char, j = chr(code), end
    else:
        end = skip(_LETTERS, s, j)
        char = _NAMED.get(s[j:end], "")
        if not char:
            return "", i
        j = end
    return char, j + 1 if s[j] == ";" else j


def quoted_value(s: str, i: int) -> Iterator[Token]:
    """The attribute value quoted by ``s[i - 1]``, from ``s[i]`` to its closing quote (or the ``"\\0"`` that ends
    ``s``), as text tokens: its character references decoded, each piece with where it is written."""
    quote = s[i - 1]
    while s[i] != quote and s[i] != "\0":
        char, end = _reference(s, i) if s[i] == "&" else ("", i)
        if char:
            yield Token("text", i, end, char)
            i = end
            continue
        end = skip(_QUOTED_RUN[quote], s, i) if s[i] != "&" else i + 1
        yield Token("text", i, end, s[i:end])
        i = end


def _int32(value: str) -> int:
    """tdlib ``to_integer<int32>``: an optional ``-`` and the digits that follow, wrapped as C++ wraps them."""
    negative = value.startswith("-")
    start = 1 if negative else 0
    digits = value[start : skip(_DECIMAL, value, start)]
    number = 0
    for chunk in range(0, len(digits), 9):
        part = digits[chunk : chunk + 9]
        number = (number * 10 ** len(part) + int(part)) % (1 << 32)
    if number > (1 << 31) - 1:
        number, negative = (1 << 32) - number, not negative
        if number > (1 << 31) - 1:
            return -(1 << 31)
    return -number if negative else number


@dataclass(slots=True)
class _Open:
    name: str
    start: int
    shown: int
    argument: str = ""
    date: int = 0


def tokenize_html(text: str) -> Iterator[Token]:
    s, n, where = text + "\0", len(text), Locator(text)
    stack: list[_Open] = []
    shown = 0
    surrogate = -1
    i = 0
    while i < n:
        c = s[i]
        if c == "&":
            char, end = _reference(s, i)
            if char and 0xD800 <= ord(char) <= 0xDFFF and surrogate < 0:
                surrogate = i
            yield Token("text", i, end if char else i + 1, char or "&")
            shown += 1
            i = end if char else i + 1
            continue
        if c != "<":
            end = skip(_HTML_RUN, s, i, n)
            yield Token("text", i, end, s[i:end])
            shown += end - i
            i = end
            continue
        begin = i
        if s[i + 1] == "/":
            end = skip(_TAG_NAME, s, i + 2)
            name = clip(_lower(s[i + 2 : end]))
            end = skip(_SKIP_SPACE, s, end)
            if not stack:
                yield Token("error", begin, end, f"</{name}> at {where(begin)} closes no open tag")
                return
            top = stack[-1]
            if s[end] != ">":
                yield Token("error", begin, end, f"the end tag </{name}> at {where(begin)} is not closed with '>'")
                return
            if name and name != top.name:
                opened = f"<{top.name}> opened at {where(top.start)}"
                if any(entry.name == name for entry in stack):
                    problem = f"</{name}> at {where(begin)} does not close {opened}: tags must not overlap"
                else:
                    problem = f"</{name}> at {where(begin)} closes no open tag ({opened} is still open)"
                yield Token("error", begin, end + 1, problem)
                return
            stack.pop()
            refused = _closing_problem(top) if shown > top.shown else None
            if refused:
                yield Token("error", top.start, end + 1, f"{refused} (at {where(top.start)})")
                return
            kind = "expandable_blockquote" if top.name == "blockquote" and top.argument else HTML_TYPES[top.name]
            yield Token("close", begin, end + 1, kind)
            i = end + 1
            continue
        if not s[i + 1].isascii() or not s[i + 1].isalpha():
            yield Token("error", i, i + 1, f"a bare '<' at {where(i)} must be written &lt;")
            yield Token("text", i, i + 1, "<")
            shown += 1
            i += 1
            continue
        opened_token = yield from _start_tag(s, begin, where)
        if opened_token is None:
            return
        token, entry = opened_token
        entry.shown = shown
        stack.append(entry)
        yield token
        i = token.end
    if stack:
        top = stack[-1]
        yield Token("error", top.start, n, f"<{top.name}> opened at {where(top.start)} is never closed")
    elif surrogate >= 0:
        problem = f"the character reference at {where(surrogate)} is half of a UTF-16 surrogate pair"
        yield Token("error", surrogate, surrogate + 1, f"{problem}: write the character itself")


def _lower(name: str) -> str:
    return name.lower() if name.isascii() else name


def _start_tag(s: str, begin: int, where: Locator) -> Generator[Token, None, tuple[Token, _Open] | None]:
    """Read the start tag at ``s[begin]``: its token and stack entry, or None after yielding an error."""
    i = skip(_TAG_NAME, s, begin + 1)
    name = _lower(s[begin + 1 : i])
    at, shown = where(begin), clip(name)
    if s[i] == "\0":
        yield Token("error", begin, i, f"the tag <{shown} at {at} is never closed with '>'")
        return None
    if name not in HTML_TAGS:
        supported = ", ".join(sorted(HTML_TAGS))
        yield Token("error", begin, i, f"<{shown}> at {at} is not a tag Telegram supports ({supported})")
        return None
    entry = _Open(name, begin, 0)
    span = (-1, -1)
    while s[i] != ">":
        i = skip(_SKIP_SPACE, s, i)
        if s[i] == ">":
            break
        end = skip(_ATTRIBUTE_NAME, s, i)
        attribute = s[i:end]
        if not attribute:
            yield Token("error", begin, i + 1, f"the tag <{name}> at {at} has {s[i]!r} where an attribute belongs")
            return None
        i = skip(_SKIP_SPACE, s, end)
        if s[i] != "=":
            if s[i] == "\0":
                yield Token("error", begin, i, f"the tag <{name}> at {at} is never closed with '>'")
                return None
            if name == "blockquote" and attribute == "expandable":
                entry.argument = "1"
            continue
        i = skip(_SKIP_SPACE, s, i + 1)
        if s[i] in "'\"":
            quote, i = s[i], i + 1
            first, parts = i, list(quoted_value(s, i))
            i = parts[-1].end if parts else i
            value, value_span = "".join(part.value for part in parts), (first, i)
            if s[i] == quote:
                i += 1
        else:
            end = skip(_NAME_TOKEN, s, i)
            value, value_span = _lower(s[i:end]), (i, end)
            if s[end] not in _SPACE and s[end] != ">":
                attribute = clip(attribute)
                problem = f'the value of {attribute} in <{name}> at {at} must be quoted: {attribute}="..."'
                yield Token("error", begin, end, problem)
                return None
            i = end
        if s[i] == "\0":
            yield Token("error", begin, i, f"the tag <{name}> at {at} is never closed with '>'")
            return None
        span = _attribute(entry, attribute, value, value_span) or span
    if name == "span" and entry.argument != "spoiler":
        yield Token("error", begin, i + 1, f'<span> at {at} must be <span class="tg-spoiler">')
        return None
    kind = HTML_TYPES[name]
    argument = entry.argument
    if name == "tg-time":
        argument = str(entry.date)
    elif name in ("blockquote", "span"):
        argument = ""
    if name == "a" and not argument:
        span = (-1, -1)
    return Token("open", begin, i + 1, kind, argument, *span), entry


def _attribute(entry: _Open, attribute: str, value: str, span: tuple[int, int]) -> tuple[int, int] | None:
    """Keep what tdlib keeps of an attribute; the span of a link's URL."""
    name = entry.name
    if name == "a" and attribute == "href":
        entry.argument = value
        return span
    if name == "code" and attribute == "class" and value.startswith("language-"):
        entry.argument = value[9:]
    elif name == "span" and attribute == "class" and value.startswith("tg-"):
        entry.argument = value[3:]
    elif name == "tg-emoji" and attribute == "emoji-id":
        entry.argument = value
    elif name == "blockquote" and attribute == "expandable":
        entry.argument = "1"
    elif name == "tg-time" and attribute == "unix":
        entry.date = _int32(value)
    elif name == "tg-time" and attribute == "format":
        entry.argument = value
    return None


def _closing_problem(entry: _Open) -> str | None:
    """What tdlib refuses when it closes a non-empty entity."""
    if entry.name == "tg-emoji" and not emoji_id(entry.argument):
        return f"<tg-emoji> needs a numeric emoji-id, not {clip(entry.argument)!r}"
    if entry.name == "tg-time" and not date_format(entry.argument):
        return f"<tg-time> has format {clip(entry.argument)!r}: use r, or letters of wdDtT"
    return None
