"""Telegram message markup, read the way the Bot API reads it: one tokenizer for HTML and MarkdownV2.

The Bot API server parses ``parse_mode`` text with tdlib (``td/telegram/MessageEntity.cpp``: ``parse_html``,
``parse_markdown_v2``), then cleans and trims the result (``fix_formatted_text``) and counts what is left against its
limits. :func:`tokenize` follows those parsers rule for rule and in one pass (linear time): it yields the visible
text, the entities' start and end, and, where Telegram would answer "can't parse entities", an error token worded
for the person who wrote the post. Validation (:func:`markup_problems`), length counting (:func:`visible_length`),
UTM tagging and feed rendering can all read the same tokens (``_html`` and ``_markdown`` read the two modes,
``_tokens`` holds what both yield). Pure stdlib: importing this package loads no client library.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module

from adapters.telegram_markup._tokens import Token, TokenKind

__all__ = [
    "HTML_TAGS",
    "MAX_TEXT_BYTES",
    "MDV2_RESERVED",
    "PARSE_MODES",
    "Entity",
    "Parsed",
    "Token",
    "TokenKind",
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
    "written_argument",
]

MAX_PROBLEMS = 5
#: The Bot API refuses a text (or caption) longer than this many UTF-8 bytes as written, markup included
#: (telegram-bot-api ``Client::get_formatted_text``: "Text is too long").
MAX_TEXT_BYTES = 1 << 15

PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2"}

# The two readers load when a text in their mode is first read: most channels use neither, and `smm add` of a
# plain post should not pay for them.
_LAZY = {"HTML_TAGS": "_html", "MDV2_RESERVED": "_markdown"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(f"adapters.telegram_markup.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def tokenize(text: str, parse_mode: str | None) -> Iterator[Token]:
    """The tokens of ``text`` in ``parse_mode`` (``None``, ``"HTML"`` or ``"MarkdownV2"``), in order."""
    if parse_mode == "HTML":
        from adapters.telegram_markup._html import tokenize_html

        return tokenize_html(text)
    if parse_mode == "MarkdownV2":
        from adapters.telegram_markup._markdown import tokenize_markdown_v2

        return tokenize_markdown_v2(text)
    return iter([Token("text", 0, len(text), text)] if text else [])


def written_argument(text: str, token: Token, parse_mode: str | None) -> Iterator[Token]:
    """How ``token``'s argument is written in ``text``, as text tokens (each the characters it reads as, and where
    they are written): a link's URL in an HTML ``href`` (character references decoded) or a MarkdownV2 ``(...)``
    (escapes read), a code block's language as it is; nothing when the argument is not written."""
    start, end = token.argument_start, token.argument_end
    if start < 0:
        return iter(())
    if parse_mode == "HTML" and text[start - 1] in "'\"":
        from adapters.telegram_markup._html import quoted_value

        return quoted_value(text[:end] + "\0", start)
    if parse_mode == "MarkdownV2" and token.kind == "close":
        from adapters.telegram_markup._markdown import link_url

        return link_url(text + "\0", start, end)
    return iter([Token("text", start, end, token.argument)])


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
