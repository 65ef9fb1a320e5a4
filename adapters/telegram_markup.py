"""Telegram message markup, read the way the Bot API reads it: one tokenizer for HTML and MarkdownV2.

The Bot API server parses ``parse_mode`` text with tdlib (``td/telegram/MessageEntity.cpp``: ``parse_html``,
``parse_markdown_v2``), then cleans and trims the result (``fix_formatted_text``) and counts what is left against its
limits. :func:`tokenize` follows those parsers rule for rule and in one pass (linear time): it yields the visible
text, the entities' start and end, and, where Telegram would answer "can't parse entities", an error token worded
for the person who wrote the post. Validation (:func:`markup_problems`), length counting (:func:`visible_length`),
UTM tagging and feed rendering can all read the same tokens. Pure stdlib: importing this module loads no client
library.
"""

from __future__ import annotations

import bisect
import functools
import html
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "HTML_TAGS",
    "MAX_TEXT_BYTES",
    "MDV2_RESERVED",
    "PARSE_MODES",
    "Entity",
    "Parsed",
    "Token",
    "compose",
    "escape",
    "markup_problems",
    "normalize_parse_mode",
    "parse",
    "scan",
    "scan_html",
    "scan_markdown_v2",
    "tokenize",
    "visible_length",
    "visible_text",
]

MAX_PROBLEMS = 5
#: The Bot API refuses a text (or caption) longer than this many UTF-8 bytes as written, markup included
#: (telegram-bot-api ``Client::get_formatted_text``: "Text is too long").
MAX_TEXT_BYTES = 1 << 15

PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2"}
_HTML_TYPES = {
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
HTML_TAGS = frozenset(_HTML_TYPES)
MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"

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


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity Telegram creates: ``offset`` and ``length`` count characters of :attr:`Parsed.text`."""

    type: str
    offset: int
    length: int
    argument: str = ""

    @property
    def end(self) -> int:
        """Where the entity ends in :attr:`Parsed.text`."""
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Parsed:
    """A text as the Bot API's parser leaves it, before cleaning and trimming."""

    text: str
    entities: tuple[Entity, ...]
    problems: tuple[str, ...]
    """What Telegram refuses, located; the first is the error Telegram answers with."""


def normalize_parse_mode(value: str | None) -> str | None:
    """``None``, ``"HTML"`` or ``"MarkdownV2"`` (any case); raises ``ValueError`` for anything else."""
    if value is None or value == "" or value.lower() == "none":
        return None
    try:
        return PARSE_MODES[value.lower()]
    except KeyError:
        raise ValueError(f"unknown Telegram parse_mode {value!r}: use HTML, MarkdownV2 or none") from None


def escape(text: str, parse_mode: str | None) -> str:
    """``text`` made safe to put into a message written in ``parse_mode`` (shown exactly as given)."""
    mode = normalize_parse_mode(parse_mode)
    if mode == "HTML":
        return html.escape(text, quote=False)
    if mode == "MarkdownV2":
        return re.sub(r"([_*\[\]()~`>#+\-=|{}.!\\])", r"\\\1", text)
    return text


class _Locator:
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


def tokenize(text: str, parse_mode: str | None) -> Iterator[Token]:
    """The tokens of ``text`` in ``parse_mode`` (``None``, ``"HTML"`` or ``"MarkdownV2"``), in order."""
    if parse_mode == "HTML":
        return _html(text)
    if parse_mode == "MarkdownV2":
        return _markdown_v2(text)
    return iter([Token("text", 0, len(text), text)] if text else [])


# -- HTML (tdlib parse_html) -------------------------------------------------------------------------------------

_SPACE = " \t\r\n\0\v"  # tdlib is_space; "\0" also stands for the end of the text
_HTML_RUN = re.compile(r"[^<&]+")
_TAG_NAME = re.compile(r"[^ \t\r\n\0\v>]*")
_ATTRIBUTE_NAME = re.compile(r"""[^ \t\r\n\0\v=>/"']*""")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")
_QUOTED_RUN = {'"': re.compile(r'[^"&\0]+'), "'": re.compile(r"[^'&\0]+")}
_SKIP_SPACE = re.compile(r"[ \t\r\n\v]*")
_DECIMAL, _HEX, _LETTERS = re.compile(r"[0-9]*"), re.compile(r"[0-9A-Fa-f]*"), re.compile(r"[A-Za-z]*")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _skip(pattern: re.Pattern[str], s: str, i: int, n: int | None = None) -> int:
    """Where the run of ``pattern`` (which may match nothing) from ``s[i]`` ends."""
    found = pattern.match(s, i, len(s) if n is None else n)
    return found.end() if found else i


def _reference(s: str, i: int) -> tuple[str, int]:
    """The character the reference at ``s[i] == "&"`` stands for and where it ends, or ``("", i)`` when tdlib
    leaves it as written: only ``&lt; &gt; &amp; &quot;``, ``&#NNN;`` and ``&#xHHH;`` (lower-case x), ``;``
    optional, no NUL, nothing from U+10FFFF on, at most 9 characters before the ``;``."""
    j = i + 1
    if s[j] == "#":
        hexadecimal = s[j + 1] == "x"
        j += 2 if hexadecimal else 1
        end = _skip(_HEX if hexadecimal else _DECIMAL, s, j)
        if end - i >= 10 or end == j:
            return "", i
        code = int(s[j:end], 16 if hexadecimal else 10)
        if code == 0 or code >= 0x10FFFF:
            return "", i
        char, j = chr(code), end
    else:
        end = _skip(_LETTERS, s, j)
        char = _NAMED.get(s[j:end], "")
        if not char:
            return "", i
        j = end
    return char, j + 1 if s[j] == ";" else j


def _int32(value: str) -> int:
    """tdlib ``to_integer<int32>``: an optional ``-`` and the digits that follow, wrapped as C++ wraps them."""
    negative = value.startswith("-")
    start = 1 if negative else 0
    digits = value[start : _skip(_DECIMAL, value, start)]
    number = 0
    for chunk in range(0, len(digits), 9):
        part = digits[chunk : chunk + 9]
        number = (number * 10 ** len(part) + int(part)) % (1 << 32)
    if number > (1 << 31) - 1:
        number, negative = (1 << 32) - number, not negative
        if number > (1 << 31) - 1:
            return -(1 << 31)
    return -number if negative else number


def _integer(value: str, bits: int) -> int | None:
    """tdlib ``to_integer_safe``: ``value`` when it is written exactly as a signed integer of ``bits`` bits."""
    if not re.fullmatch(r"-?[0-9]{1,20}", value):
        return None
    number = int(value)
    if str(number) != value or not -(1 << (bits - 1)) <= number < (1 << (bits - 1)):
        return None
    return number


def _emoji_id(value: str) -> bool:
    """A custom emoji id as tdlib takes it: a 64-bit integer, not 0."""
    return bool(_integer(value, 64))


def _date_format(value: str) -> bool:
    """tdlib ``FormattedDate::get_date_flags``: ``r``, ``R``, or any of ``tTdDwW``."""
    return value in ("r", "R") or all(c in "tTdDwW" for c in value)


@dataclass(slots=True)
class _Open:
    name: str
    start: int
    shown: int
    argument: str = ""
    date: int = 0


def _html(text: str) -> Iterator[Token]:
    s, n, where = text + "\0", len(text), _Locator(text)
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
            end = _skip(_HTML_RUN, s, i, n)
            yield Token("text", i, end, s[i:end])
            shown += end - i
            i = end
            continue
        begin = i
        if s[i + 1] == "/":
            end = _skip(_TAG_NAME, s, i + 2)
            name = _clip(_lower(s[i + 2 : end]))
            end = _skip(_SKIP_SPACE, s, end)
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
            kind = "expandable_blockquote" if top.name == "blockquote" and top.argument else _HTML_TYPES[top.name]
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


def _clip(value: str, limit: int = 24) -> str:
    """``value`` short enough to quote in a message."""
    return value if len(value) <= limit else f"{value[: limit - 3]}..."


def _start_tag(s: str, begin: int, where: _Locator) -> Generator[Token, None, tuple[Token, _Open] | None]:
    """Read the start tag at ``s[begin]``: its token and stack entry, or None after yielding an error."""
    i = _skip(_TAG_NAME, s, begin + 1)
    name = _lower(s[begin + 1 : i])
    at, shown = where(begin), _clip(name)
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
        i = _skip(_SKIP_SPACE, s, i)
        if s[i] == ">":
            break
        end = _skip(_ATTRIBUTE_NAME, s, i)
        attribute = s[i:end]
        if not attribute:
            yield Token("error", begin, i + 1, f"the tag <{name}> at {at} has {s[i]!r} where an attribute belongs")
            return None
        i = _skip(_SKIP_SPACE, s, end)
        if s[i] != "=":
            if s[i] == "\0":
                yield Token("error", begin, i, f"the tag <{name}> at {at} is never closed with '>'")
                return None
            if name == "blockquote" and attribute == "expandable":
                entry.argument = "1"
            continue
        i = _skip(_SKIP_SPACE, s, i + 1)
        if s[i] in "'\"":
            quote, i = s[i], i + 1
            first, parts = i, []
            while s[i] != quote and s[i] != "\0":
                char, end = _reference(s, i) if s[i] == "&" else ("", i)
                if char:
                    parts.append(char)
                    i = end
                    continue
                end = _skip(_QUOTED_RUN[quote], s, i) if s[i] != "&" else i + 1
                parts.append(s[i:end])
                i = end
            value, value_span = "".join(parts), (first, i)
            if s[i] == quote:
                i += 1
        else:
            end = _skip(_NAME_TOKEN, s, i)
            value, value_span = _lower(s[i:end]), (i, end)
            if s[end] not in _SPACE and s[end] != ">":
                attribute = _clip(attribute)
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
    kind = _HTML_TYPES[name]
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
    if entry.name == "tg-emoji" and not _emoji_id(entry.argument):
        return f"<tg-emoji> needs a numeric emoji-id, not {_clip(entry.argument)!r}"
    if entry.name == "tg-time" and not _date_format(entry.argument):
        return f"<tg-time> has format {_clip(entry.argument)!r}: use r, or letters of wdDtT"
    return None


# -- MarkdownV2 (tdlib parse_markdown_v2) ------------------------------------------------------------------------

_MD_RUN = re.compile(r"[^\\_*\[\]()~`>#+\-=|{}.!\n]+")
_CODE_RUN = re.compile(r"[^\\`]+")
_MD_SPECIAL, _CODE_SPECIAL = frozenset(MDV2_RESERVED + "\\\n"), frozenset("\\`")
_URL_RUN = re.compile(r"[^\\)]+")
_LANGUAGE = re.compile(r"[^ \t\r\n\0\v`]*")
_MD_TYPES = {"*": "bold", "~": "strikethrough", "[": "text_link", "`": "code"}
_MD_MARKERS = {"bold": "*", "italic": "_", "underline": "__", "strikethrough": "~", "spoiler": "||", "code": "`"}
_MD_MARKERS |= {"pre": "```", "text_link": "[", "custom_emoji": "![", "blockquote": ">"}
_MD_NAMES = {"text_link": "link", "custom_emoji": "custom emoji", "pre": "pre block", "code": "inline code"}


def _md_name(kind: str) -> str:
    return f"{_MD_NAMES.get(kind, kind)} '{_MD_MARKERS[kind]}'"


_MD_CLOSERS = {"bold": "*", "underline": "__", "strikethrough": "~", "spoiler": "||", "code": "`", "pre": "```"}
_MD_CLOSERS |= {"text_link": "]", "custom_emoji": "]"}


def _md_closes(kind: str, s: str, i: int) -> bool:
    """Whether the character at ``s[i]`` ends the innermost open entity, of type ``kind`` (never a quote)."""
    if kind == "italic":
        return s[i] == "_" and s[i + 1] != "_"
    closer = _MD_CLOSERS.get(kind, "")
    return s[i] == closer if len(closer) == 1 else bool(closer) and s.startswith(closer, i)


def _md_url(s: str, i: int, n: int) -> tuple[str, int]:
    """The URL in ``(...)`` from ``s[i]`` (just after the parenthesis), read through its escapes, and where the
    ``)`` is (``n`` when there is none)."""
    parts: list[str] = []
    while i < n and s[i] != ")":
        if s[i] == "\\" and "\0" < s[i + 1] <= "~":
            parts.append(s[i + 1])
            i += 2
            continue
        end = _skip(_URL_RUN, s, i, n) if s[i] != "\\" else i + 1
        parts.append(s[i:end])
        i = end
    return "".join(parts), i


def _tg_query(url: str, host: str) -> str | None:
    """The query of ``tg://host?...`` (tdlib ``LinkManager::check_tg_url_host``), or None for another URL."""
    if url[:3].lower() != "tg:":
        return None
    rest = url[5:] if url[3:5] == "//" else url[3:]
    if rest[: len(host)].lower() != host or rest[len(host) : len(host) + 1] not in ("", "/", "?", "#"):
        return None
    rest = rest[len(host) :]
    rest = rest[1:] if rest.startswith("/") else rest
    return rest[1:].split("#", 1)[0] if rest.startswith("?") else None


def _emoji_or_time(url: str) -> tuple[str, str] | None:
    """``("custom_emoji", id)`` or ``("date_time", unix time)`` for the URL of a MarkdownV2 ``![...](...)``, or None
    when tdlib refuses it (``get_link_custom_emoji_id``, then ``get_link_formatted_date``)."""
    query = _tg_query(url, "emoji")
    if query is not None:
        ids = [value for key, _, value in (pair.partition("=") for pair in query.split("&")) if key == "id"]
        return ("custom_emoji", ids[0]) if ids and _emoji_id(ids[0]) else None
    query = _tg_query(url, "time")
    if query is None:
        return None
    date, form = 0, ""
    for key, _, value in (pair.partition("=") for pair in query.split("&")):
        if key == "unix":
            number = _integer(value, 32)
            if number is None or number <= 0:
                return None
            date = number
        if key == "format":
            form = value
    return ("date_time", str(date)) if date and _date_format(form) else None


def _pre_start(s: str, i: int, n: int) -> tuple[int, str]:
    """After a pre block's ```: where its text starts and its language (tdlib skips one line break)."""
    end = _skip(_LANGUAGE, s, i)
    language = ""
    if end != i and end < n and s[end] != "`":
        language, i = s[i:end], end
    if s[i] in "\n\r":
        i += 2 if s[i + 1] in "\n\r" and s[i] != s[i + 1] else 1
    return i, language


def _markdown_v2(text: str) -> Iterator[Token]:
    s, n, where = text + "\0\0\0", len(text), _Locator(text)
    stack: list[tuple[str, int]] = []
    quoted = False  # tdlib have_blockquote
    line_start = True  # a ">" here starts or continues a quote (tdlib can_start_blockquote)
    i = 0
    while i < n:
        c = s[i]
        if c == "\\" and "\0" < s[i + 1] <= "~":
            yield Token("text", i, i + 2, s[i + 1])
            if s[i + 1] != "\r":
                line_start = s[i + 1] == "\n"
            i += 2
            continue
        top = stack[-1][0] if stack else ""
        in_code = top in ("code", "pre")
        run = (
            None
            if c in (_CODE_SPECIAL if in_code else _MD_SPECIAL)
            else (_CODE_RUN if in_code else _MD_RUN).match(s, i, n)
        )
        if run or c == "\\":
            end = run.end() if run else i + 1
            yield Token("text", i, end, s[i:end])
            line_start = line_start and not s[i:end].strip("\r")
            i = end
            continue
        if top and ((quoted and c == "\n" and s[i + 1] != ">") or _md_closes(top, s, i)):
            after = yield from _md_close(s, i, n, stack, where)
            if after is None:
                return
            if c == "\n":
                quoted, line_start = False, True
            i = after
            continue
        start, kind, argument = i, _MD_TYPES.get(c, ""), ""
        if c == "_":
            kind = "underline" if s[i + 1] == "_" else "italic"
        elif c == "|" and s[i + 1] == "|":
            kind = "spoiler"
        elif c == "!" and s[i + 1] == "[":
            kind = "custom_emoji"
        elif c == "`" and s.startswith("```", i):
            kind = "pre"
            i, argument = _pre_start(s, i + 3, n)
        elif c == "\n":
            yield Token("text", i, i + 1, "\n")
            line_start, i = True, i + 1
            continue
        elif c == ">" and line_start:
            if quoted:
                yield Token("markup", i, i + 1)
                i += 1
                continue
            kind, quoted = "blockquote", True
        if not kind:
            yield Token("error", i, i + 1, f"'{c}' at {where(i)} must be escaped as '\\{c}'")
            yield Token("text", i, i + 1, c)
            line_start, i = False, i + 1
            continue
        if kind != "pre":
            i += len(_MD_MARKERS[kind])
        stack.append((kind, start))
        span = (start + 3, start + 3 + len(argument)) if argument else (-1, -1)
        yield Token("open", start, i, kind, argument, *span)
    if quoted and stack:
        kind = "blockquote"
        if stack[-1][0] == "spoiler" and stack[-1][1] == n - 2:
            stack.pop()
            yield Token("close", n, n)
            kind = "expandable_blockquote"
        if stack[-1][0] == "blockquote":
            stack.pop()
            yield Token("close", n, n, kind)
    if stack:
        kind, start = stack[-1]
        yield Token("error", start, n, f"{_md_name(kind)} opened at {where(start)} is never closed")


def _md_close(
    s: str, i: int, n: int, stack: list[tuple[str, int]], where: _Locator
) -> Generator[Token, None, int | None]:
    """Close the innermost entity at ``s[i]``; where reading goes on, or None after yielding an error."""
    kind, start = stack.pop()
    if s[i] == "\n" and kind != "blockquote":
        if kind != "spoiler" or not (start == i - 2 or (start == i - 3 and s[i - 1] == "\r")):
            problem = f"{_md_name(kind)} opened at {where(start)} is never closed (a quote ends with its line)"
            yield Token("error", start, i, problem)
            return None
        yield Token("close", i, i)
        if stack[-1][0] != "blockquote":
            kind, start = stack[-1]
            yield Token("error", start, i, f"{_md_name(kind)} opened at {where(start)} is never closed")
            return None
        stack.pop()
        kind = "expandable_blockquote"
    if kind in ("blockquote", "expandable_blockquote"):
        yield Token("text", i, i + 1, "\n")
        yield Token("close", i + 1, i + 1, kind)
        return i + 1
    if kind not in ("text_link", "custom_emoji") or (kind == "text_link" and s[i + 1] != "("):
        end = i + len(_MD_MARKERS[kind]) if kind in ("underline", "spoiler", "pre") else i + 1
        yield Token("close", i, end, kind)
        return end
    if s[i + 1] != "(":
        yield Token("error", start, i + 1, f"custom emoji at {where(start)} needs (tg://emoji?id=...)")
        return None
    url, end = _md_url(s, i + 2, n)
    if end >= n:
        yield Token("error", i + 1, n, f"the URL of the {_md_name(kind)} at {where(start)} is never closed with ')'")
        return None
    argument = url
    if kind == "custom_emoji":
        found = _emoji_or_time(url)
        if found is None:
            problem = (
                f"custom emoji at {where(start)} needs (tg://emoji?id=...) or (tg://time?unix=...), not {_clip(url)!r}"
            )
            yield Token("error", start, end + 1, problem)
            return None
        kind, argument = found
    yield Token("close", i, end + 1, kind, argument, i + 2, end)
    return end + 1


# -- what the tokens add up to -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def parse(text: str, parse_mode: str | None) -> Parsed:
    """``text`` in ``parse_mode`` as Telegram's parser reads it: the text shown, its entities, what is refused.

    Remembered for the last few texts: validating a post asks for its length and for its problems.
    """
    pieces: list[str] = []
    entities: list[Entity] = []
    problems: list[str] = []
    opened: list[tuple[Token, int]] = []
    linked: list[int] = []  # entities whose URL is their text
    shown = 0
    for token in tokenize(text, parse_mode):
        if token.kind == "text":
            pieces.append(token.value)
            shown += len(token.value)
        elif token.kind == "open":
            opened.append((token, shown))
        elif token.kind == "close":
            start, offset = opened.pop()
            if token.value and shown > offset:
                if token.value == "text_link" and max(token.argument_start, start.argument_start) < 0:
                    linked.append(len(entities))
                entities.append(Entity(token.value, offset, shown - offset, token.argument or start.argument))
        elif token.kind == "error":
            problems.append(token.value)
    plain = "".join(pieces)
    for index in linked:
        entity = entities[index]
        entities[index] = Entity(entity.type, entity.offset, entity.length, plain[entity.offset : entity.end])
    kept = tuple(entity for entity in entities if _kept(entity))
    return Parsed(plain, kept, tuple(problems))


def _kept(entity: Entity) -> bool:
    """Whether tdlib keeps the entity: a link needs a URL (tdlib also drops URLs it cannot parse), a date a time."""
    if entity.type == "text_link":
        return bool(entity.argument.strip())
    if entity.type == "date_time":
        return int(entity.argument or 0) > 0
    return True


# tdlib clean_input_string: C0 controls but "\n" become spaces; "\r", U+2028-U+202E and three combining marks go.
_CLEAN: dict[int, str | None] = {code: " " for code in range(33) if code not in (10, 13)}
_CLEAN |= {13: None, 0x030A: None, 0x0333: None, 0x033F: None} | {code: None for code in range(0x2028, 0x202F)}
_KEPT_CHAR = re.compile("[^\r\u2028-\u202e\u030a\u0333\u033f]")


def _visible(parsed: Parsed) -> str:
    """The text Telegram stores (tdlib ``fix_formatted_text``): cleaned, then without the spaces and line breaks
    at its end and at its start, up to the first entity."""
    plain = parsed.text
    right = plain.translate(_CLEAN).rstrip(" \n")
    limit = len(right)
    kept_at = -1
    for entity in sorted(parsed.entities, key=lambda e: e.offset):
        if kept_at < entity.offset:
            found = _KEPT_CHAR.search(plain, entity.offset)
            kept_at = found.start() if found else len(plain)
        if kept_at < entity.end:  # an entity left empty by cleaning is dropped
            limit = min(limit, len(plain[: entity.offset].translate(_CLEAN)))
            break
    head = right[:limit]
    return right[len(head) - len(head.lstrip(" \n")) :]


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram shows for ``text`` in ``parse_mode``: markup read, cleaned and trimmed as tdlib does."""
    return _visible(parse(text, parse_mode))


def visible_length(text: str, parse_mode: str | None) -> int:
    """The length Telegram checks against its limits: characters (code points) of :func:`visible_text`.

    tdlib counts ``utf8_length`` of the stored text for a bot's message (``message_text_length_max``, 4096) and
    caption (``message_caption_length_max``, 1024), so a character outside the BMP counts once.
    """
    return len(visible_text(text, parse_mode))


def scan(text: str, parse_mode: str | None) -> tuple[str, list[str]]:
    """The text of ``text`` in ``parse_mode`` once its markup is read, and what Telegram refuses in it."""
    parsed = parse(text, parse_mode)
    return parsed.text, list(parsed.problems)


def scan_html(text: str) -> tuple[str, list[str]]:
    """:func:`scan` in HTML."""
    return scan(text, "HTML")


def scan_markdown_v2(text: str) -> tuple[str, list[str]]:
    """:func:`scan` in MarkdownV2."""
    return scan(text, "MarkdownV2")


def compose(text: str, link: str | None, parse_mode: str | None) -> str:
    """The message text: ``text`` with ``link`` on its own line unless the text already contains it."""
    if not link:
        return text
    escaped = escape(link, parse_mode)
    if link in text or escaped in text:
        return text
    if not text.strip():
        return escaped
    separator = "" if text.endswith("\n") else "\n"
    return f"{text}{separator}{escaped}"


def markup_problems(
    text: str, link: str | None, parse_mode: str | None, max_text: int, *, media: bool = False
) -> list[str]:
    """What Telegram refuses in ``text`` sent with ``link`` appended (:func:`compose`): its markup, a text longer
    than ``max_text`` once the link is appended, more than :data:`MAX_TEXT_BYTES` as written, or (without
    ``media``) a message that shows nothing."""
    parsed = parse(text, parse_mode)
    messages = [f"{parse_mode}: {message}" for message in parsed.problems]
    if len(messages) > MAX_PROBLEMS:
        messages[MAX_PROBLEMS:] = [f"{parse_mode}: ... and {len(messages) - MAX_PROBLEMS} more markup problems"]
    composed = compose(text, link, parse_mode)
    final = parsed if composed == text else parse(composed, parse_mode)
    length = len(_visible(final))
    if composed != text and length > max_text:
        messages.append(f"with the link appended the text is {length} characters long; telegram allows {max_text}")
    size = len(composed.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        written = f"the text is {size} bytes long as written (UTF-8, markup included)"
        messages.append(f"{written}; telegram reads at most {MAX_TEXT_BYTES}")
    if not media and not length and not final.problems and composed.strip():
        messages.append("the text shows nothing once telegram removes its markup and the spaces around it")
    return messages
