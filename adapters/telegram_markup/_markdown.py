"""Telegram MarkdownV2 read as tdlib's ``parse_markdown_v2`` reads it (``td/telegram/MessageEntity.cpp``), in
one pass; ``tg://emoji`` and ``tg://time`` URLs as ``LinkManager.cpp`` reads them."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator

from adapters.telegram_markup._tokens import Locator, Token, clip, date_format, emoji_id, integer, skip

MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
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


def link_url(s: str, i: int, n: int) -> Iterator[Token]:
    """The URL in ``(...)`` from ``s[i]`` (just after the parenthesis) to the ``)`` (or ``n``), read through its
    escapes, as text tokens, each piece with where it is written."""
    while i < n and s[i] != ")":
        if s[i] == "\\" and "\0" < s[i + 1] <= "~":
            yield Token("text", i, i + 2, s[i + 1])
            i += 2
            continue
        end = skip(_URL_RUN, s, i, n) if s[i] != "\\" else i + 1
        yield Token("text", i, end, s[i:end])
        i = end


def _md_url(s: str, i: int, n: int) -> tuple[str, int]:
    """The URL in ``(...)`` from ``s[i]`` and where the ``)`` is (``n`` when there is none)."""
    parts = list(link_url(s, i, n))
    return "".join(part.value for part in parts), parts[-1].end if parts else i


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
        return ("custom_emoji", ids[0]) if ids and emoji_id(ids[0]) else None
    query = _tg_query(url, "time")
    if query is None:
        return None
    date, form = 0, ""
    for key, _, value in (pair.partition("=") for pair in query.split("&")):
        if key == "unix":
            number = integer(value, 32)
            if number is None or number <= 0:
                return None
            date = number
        if key == "format":
            form = value
    return ("date_time", str(date)) if date and date_format(form) else None


def _pre_start(s: str, i: int, n: int) -> tuple[int, str]:
    """After a pre block's ```: where its text starts and its language (tdlib skips one line break)."""
    end = skip(_LANGUAGE, s, i)
    language = ""
    if end != i and end < n and s[end] != "`":
        language, i = s[i:end], end
    if s[i] in "\n\r":
        i += 2 if s[i + 1] in "\n\r" and s[i] != s[i + 1] else 1
    return i, language


def tokenize_markdown_v2(text: str) -> Iterator[Token]:
    s, n, where = text + "\0\0\0", len(text), Locator(text)
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
    s: str, i: int, n: int, stack: list[tuple[str, int]], where: Locator
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
                f"custom emoji at {where(start)} needs (tg://emoji?id=...) or (tg://time?unix=...), not {clip(url)!r}"
            )
            yield Token("error", start, end + 1, problem)
            return None
        kind, argument = found
    yield Token("close", i, end + 1, kind, argument, i + 2, end)
    return end + 1
