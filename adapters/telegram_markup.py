"""Telegram message markup: escaping text for a parse mode, and checking HTML and MarkdownV2 before sending.

The scanners return a message's visible text (what Telegram counts against its limits) and every problem with its
markup, worded for the person who wrote the post, so that Telegram's "can't parse entities" is caught when a post is
queued instead of when the daemon sends it. Pure stdlib: importing this module loads no client library.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from adapters.base import text_length

__all__ = [
    "HTML_TAGS",
    "MDV2_RESERVED",
    "PARSE_MODES",
    "compose",
    "escape",
    "markup_problems",
    "normalize_parse_mode",
    "scan",
    "scan_html",
    "scan_markdown_v2",
    "visible_length",
]

MAX_PROBLEMS = 5

PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2"}
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji", "code", "pre"}
    | {"blockquote"}
)
MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_HTML_TOKEN = re.compile(
    r"(?P<entity>&(?:lt|gt|amp|quot|#[0-9]+|#[xX][0-9a-fA-F]+);)"
    r"|</(?P<end>[A-Za-z][\w-]*)?\s*>"
    r"""|<(?P<start>[A-Za-z][\w-]*)(?P<attributes>(?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*>"""
    r"|(?P<malformed></?[A-Za-z][^<>]*>)"
    r"|(?P<bare>[<>&])"
)
_ATTRIBUTE = re.compile(r"""([^\s=>/]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")


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


def _where(text: str, index: int) -> str:
    line, column = text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)
    return f"line {line}, column {column}"


def scan_html(text: str) -> tuple[str, list[str]]:
    """The visible text of a Telegram HTML message and what is wrong with its markup."""
    out: list[str] = []
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    position = 0
    for token in _HTML_TOKEN.finditer(text):
        out.append(text[position : token.start()])
        position, at, value = token.end(), _where(text, token.start()), token.group()
        if token["entity"]:
            out.append(html.unescape(value))
        elif token["bare"]:
            problems.append(f"a bare {value!r} at {at} must be written {html.escape(value)}")
            out.append(value)
        elif token["malformed"]:
            problems.append(f"the tag {value!r} at {at} is malformed or not supported")
        elif token["start"]:
            name = token["start"].lower()
            attributes = {k.lower(): html.unescape(v.strip("'\"")) for k, v in _ATTRIBUTE.findall(token["attributes"])}
            problem = _tag_problem(name, attributes)
            if problem:
                problems.append(f"{problem} at {at}")
            stack.append((name, token.start()))
        else:
            name = (token["end"] or "").lower()
            names = [opened for opened, _ in stack]
            if not stack or (name and name not in names):
                problems.append(f"</{name}> at {at} closes no open tag")
            elif name and name != names[-1]:
                opened, opened_at = stack[-1]
                problems.append(
                    f"</{name}> at {at} does not close <{opened}> opened at {_where(text, opened_at)}: "
                    "tags must not overlap"
                )
                del stack[len(names) - 1 - names[::-1].index(name)]
            else:
                stack.pop()
    out.append(text[position:])
    problems.extend(f"<{name}> opened at {_where(text, at)} is never closed" for name, at in reversed(stack))
    return "".join(out), problems


def _tag_problem(name: str, attributes: Mapping[str, str]) -> str | None:
    if name not in HTML_TAGS:
        return f"<{name}> is not a tag Telegram supports ({', '.join(sorted(HTML_TAGS))})"
    if name == "a" and not attributes.get("href"):
        return "<a> needs an href"
    if name == "span" and attributes.get("class") != "tg-spoiler":
        return '<span> must be <span class="tg-spoiler">'
    if name == "tg-emoji" and not attributes.get("emoji-id"):
        return "<tg-emoji> needs an emoji-id"
    return None


_MD_NAMES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_MD_NAMES |= {"`": "inline code", "```": "pre block", "[": "link", "![": "custom emoji"}


def _md_closes(marker: str, text: str, i: int) -> bool:
    """Whether the markup at ``text[i]`` ends an entity opened with ``marker``."""
    c, nxt = text[i], text[i + 1 : i + 2]
    if marker == "_":
        return c == "_" and nxt != "_"
    if marker in ("__", "||", "```"):
        return text.startswith(marker, i)
    return c == {"[": "]", "![": "]"}.get(marker, marker)


def scan_markdown_v2(text: str) -> tuple[str, list[str]]:
    """The visible text of a Telegram MarkdownV2 message and what is wrong with its markup.

    Follows the Bot API parser (tdlib ``parse_markdown_v2``): only the innermost open entity can be closed, and
    ``_`` followed by ``_`` never closes an italic entity.
    """
    out: list[str] = []
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    expandable = False
    i, n = 0, len(text)
    while i < n:
        c, nxt = text[i], text[i + 1 : i + 2]
        top = stack[-1][0] if stack else ""
        if c == "\\" and nxt and 0 < ord(nxt) <= 126:
            out.append(nxt)
            i += 2
            continue
        in_code = top in ("`", "```")
        if not in_code and (i == 0 or text[i - 1] == "\n"):
            if text.startswith("**>", i):
                expandable, i = True, i + 3
                continue
            if c == ">":
                i += 1
                continue
            expandable = False
        if c not in ("`" if in_code else MDV2_RESERVED):
            out.append(c)
            i += 1
            continue
        outer = [k for k in range(len(stack) - 1) if _md_closes(stack[k][0], text, i)]
        if top and _md_closes(top, text, i):
            opened_at = stack.pop()[1]
            i += len(top) if top in ("__", "||", "```") else 1
            if top in ("[", "!["):
                i = _link_target(text, i, top, opened_at, problems)
        elif outer and not in_code:
            (marker, at), (inner, inner_at) = stack[outer[-1]], stack[-1]
            problems.append(
                f"'{c}' at {_where(text, i)} closes {_MD_NAMES[marker]} '{marker}' opened at {_where(text, at)} "
                f"while {_MD_NAMES[inner]} '{inner}' opened at {_where(text, inner_at)} is still open"
            )
            del stack[outer[-1] :]
            i += len(marker) if marker in ("__", "||") else 1
        elif c == "|" and nxt == "|" and expandable and text[i + 2 : i + 3] in ("", "\n"):
            i += 2
        elif c in "*~[`_" or c + nxt in ("||", "!["):
            marker = "```" if text.startswith("```", i) else c + nxt if c + nxt in ("__", "||", "![") else c
            stack.append((marker, i))
            i += len(marker)
            if marker == "```":
                i = _skip_language(text, i)
        else:
            problems.append(f"'{c}' at {_where(text, i)} must be escaped as '\\{c}'")
            out.append(c)
            i += 1
    problems.extend(
        f"{_MD_NAMES[marker]} '{marker}' opened at {_where(text, at)} is never closed" for marker, at in reversed(stack)
    )
    return "".join(out), problems


def _link_target(text: str, i: int, marker: str, opened_at: int, problems: list[str]) -> int:
    """Skip the ``(url)`` after a link's ``]``; ``)`` and ``\\`` inside it must be escaped."""
    if text[i : i + 1] != "(":
        if marker == "![":
            problems.append(f"custom emoji at {_where(text, opened_at)} needs (tg://emoji?id=...)")
        return i
    j = i + 1
    while j < len(text) and text[j] != ")":
        j += 2 if text[j] == "\\" else 1
    if j >= len(text):
        problems.append(f"the URL of the link at {_where(text, opened_at)} is never closed with ')'")
    elif marker == "![" and not text[i + 1 : j].startswith("tg://emoji?id="):
        problems.append(f"custom emoji at {_where(text, opened_at)} needs (tg://emoji?id=...)")
    return j + 1


def _skip_language(text: str, i: int) -> int:
    """Skip a pre block's language and the first line break (neither is shown)."""
    end = i
    while end < len(text) and not text[end].isspace() and text[end] != "`":
        end += 1
    if end < len(text) and text[end] != "`":
        i = end
    if text[i : i + 2] in ("\r\n", "\n\r"):
        return i + 2
    return i + 1 if text[i : i + 1] in ("\n", "\r") else i


def scan(text: str, parse_mode: str | None) -> tuple[str, list[str]]:
    """The visible text of ``text`` in ``parse_mode`` and what is wrong with its markup."""
    if parse_mode == "HTML":
        return scan_html(text)
    if parse_mode == "MarkdownV2":
        return scan_markdown_v2(text)
    return text, []


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


def visible_length(text: str, parse_mode: str | None) -> int:
    """The length Telegram counts for ``text`` in ``parse_mode``: UTF-16 code units of the visible text."""
    return text_length(scan(text, parse_mode)[0], utf16=True)


def markup_problems(text: str, link: str | None, parse_mode: str | None, max_text: int) -> list[str]:
    """What is wrong with the markup of ``text``, and whether appending ``link`` makes it longer than ``max_text``."""
    messages = [f"{parse_mode}: {message}" for message in scan(text, parse_mode)[1]]
    if len(messages) > MAX_PROBLEMS:
        messages[MAX_PROBLEMS:] = [f"{parse_mode}: ... and {len(messages) - MAX_PROBLEMS} more markup problems"]
    composed = compose(text, link, parse_mode)
    length = visible_length(composed, parse_mode)
    if composed != text and length > max_text:
        messages.append(f"with the link appended the text is {length} characters long; telegram allows {max_text}")
    return messages
