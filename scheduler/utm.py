"""UTM tagging: ``utm_source``, ``utm_medium``, ``utm_campaign`` and ``utm_content`` added to links at render time.

The rule: a tagged URL, read again by a WHATWG URL parser (what browsers use), has the scheme, host, path and
fragment of the original and keeps every query pair of the original byte for byte (never re-encoded), followed by
the parameters it did not have (a ``utm_*`` parameter already present wins). The new parameters go at the end of the
query, before the fragment; their values are percent-encoded. A URL is read as that parser reads an http(s) URL:
leading and trailing control characters and spaces are not part of it, tabs and newlines inside it are ignored, a
backslash is a slash, the fragment starts at the first ``#`` and the query at the first ``?`` before it. An http(s)
URL that cannot be tagged that way (no host, a host or port the parser refuses) is left exactly as written, and
the ``-v`` log says why.

URLs in a post's text are found and tagged where they are, markup-aware for Telegram's parse modes:

- in text, a URL starts with ``http:/`` or ``https:/`` (or a backslash for the slash) and runs to the next white
  space or ``«»“”``; punctuation that ends the sentence around it (``.``, ``,``, ``?``, ``!``, ``'``, ...) and a closing
  bracket or quote that opens nowhere in the URL are not part of it (:func:`trim`);
- HTML: text is read as Telegram reads it: entities decoded (``&amp;``, ``&quot;``, ``&#39;``, ...), tags taken
  out (a URL may run across ``<b>``...), nothing inside ``<code>`` or ``<pre>``; the value of a quoted ``href``
  attribute is a URL as a whole; the added text is escaped (``&`` as ``&amp;``);
- MarkdownV2: text is read through its ``\\`` escapes, with the markers of bold, italic, underline, strikethrough
  and spoiler taken out, nothing inside code spans or blocks; a link's ``(...)`` target is a URL as a whole. The
  added text is escaped as the mode requires (``utm\\_source\\=...``), in a target it goes in as it is.

Pure stdlib; nothing here reads the config.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl, quote, unquote

from adapters.telegram_markup import escape

log = logging.getLogger("smm.utm")

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")


@dataclass(frozen=True)
class UtmConfig:
    """A channel's tagging: off, or the values of the parameters (``source`` defaults to the network's name)."""

    enabled: bool = False
    source: str | None = None
    medium: str = "social"
    campaign: str | None = None
    domains: tuple[str, ...] = ()
    """Only URLs on these hosts (or their subdomains) are tagged; empty: every http(s) URL."""


def utm_params(
    config: UtmConfig, network: str, campaign: str | None = None, content: str | None = None
) -> dict[str, str]:
    """The parameters to add for a post (``campaign`` and ``content`` from the post, else the channel's)."""
    params = {"utm_source": config.source or network, "utm_medium": config.medium}
    if campaign or config.campaign:
        params["utm_campaign"] = campaign or config.campaign or ""
    if content:
        params["utm_content"] = content
    return params


# -- one URL, as the WHATWG URL parser reads it ---------------------------------------------------------------------

_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_NO_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_AUTHORITY = re.compile(r"[^/\\?]*")
_FORBIDDEN_IN_DOMAIN = frozenset(" #%/:<>?@[\\]^|\x7f" + "".join(map(chr, range(0x20))))
_HEX = re.compile(r"[0-9A-Fa-f]*")


@dataclass(frozen=True)
class _Url:
    """Where an http(s) URL's query ends in the string as written, and what a parser reads of it."""

    host: str
    """The host, percent-decoded and mapped as far as stdlib can (IDN hosts stay in Unicode)."""
    query: str | None
    """The query (tabs and newlines taken out), None when the URL has no ``?``."""
    end: int
    """Where the query ends: the ``#`` of the fragment, else the end (less trailing controls and spaces)."""


def _read(url: str) -> _Url | str | None:
    """``url`` read as an http(s) URL; a string saying why it cannot be tagged; None if it is not http(s)."""
    start, stop = len(url) - len(url.lstrip(_C0_OR_SPACE)), len(url.rstrip(_C0_OR_SPACE))
    fragment = url.find("#", start, stop)
    end = stop if fragment < 0 else fragment
    clean = url[start:end].translate(_NO_TAB_OR_NEWLINE)
    scheme, colon, rest = clean.partition(":")
    if not colon or scheme.lower() not in ("http", "https"):
        return None
    rest = rest.lstrip("/\\")
    authority = _AUTHORITY.match(rest)
    assert authority is not None
    question = clean.find("?")
    host_port = authority.group().rpartition("@")[2]
    if host_port.startswith("["):
        close = host_port.find("]")
        host, port = host_port[: close + 1], host_port[close + 1 :]
        if close < 0 or (port and not port.startswith(":")):
            return "the host is not a valid IPv6 address"
        port = port[1:]
    else:
        host, _, port = host_port.partition(":")
    if port and not (port.isascii() and port.isdigit() and len(port.lstrip("0")) <= 5 and int(port) <= 65535):
        return f"the port {port!r} is not a number up to 65535"
    if not host:
        return "it has no host"
    key = host.lower() if host.startswith("[") else _domain(host)
    problem = _ipv6_problem(host[1:-1]) if host.startswith("[") else _domain_problem(key)
    if problem:
        return problem
    return _Url(key, clean[question + 1 :] if question >= 0 else None, end)


def _domain(host: str) -> str:
    """A domain as the parser compares it: percent-decoded, compatibility-mapped, lower-case, ``。`` as ``.``."""
    decoded = unicodedata.normalize("NFKC", unquote(host, errors="replace")).lower()
    return decoded.replace("。", ".")


def _ipv6_problem(address: str) -> str | None:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return "the host is not a valid IPv6 address"
    return "the host is not a valid IPv6 address" if "%" in address else None


def _domain_problem(domain: str) -> str | None:
    """Why the parser refuses ``domain`` (see :func:`_domain`), or None."""
    bad = sorted(set(domain) & _FORBIDDEN_IN_DOMAIN)
    if bad:
        return f"the host has {''.join(bad)!r} in it"
    labels = domain.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()
    if _ends_in_number(labels[-1]) and not _ipv4(labels):
        return "the host ends in a number but is not an IPv4 address"
    return None


def _ipv4_number(label: str) -> int | None:
    """A part of an IPv4 address: decimal, ``0x`` hexadecimal or ``0`` octal (WHATWG's IPv4 number parser)."""
    if not label:
        return None
    radix = 10
    if label[:2].lower() == "0x":
        label, radix = label[2:], 16
    elif len(label) > 1 and label[0] == "0":
        label, radix = label[1:], 8
    if not label:
        return 0
    if not (label.isascii() and _HEX.fullmatch(label)):
        return None
    try:
        return int(label, radix)
    except ValueError:
        return None


def _ends_in_number(last: str) -> bool:
    return bool(last) and ((last.isascii() and last.isdigit()) or _ipv4_number(last) is not None)


def _ipv4(labels: list[str]) -> bool:
    """Whether the labels of a host that ends in a number make an IPv4 address."""
    numbers = [_ipv4_number(label) for label in labels]
    if len(numbers) > 4 or any(n is None for n in numbers):
        return False
    *head, last = (n or 0 for n in numbers)
    return all(n <= 255 for n in head) and last < 256 ** (5 - len(numbers))


def _host_key(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _on(host: str, domains: Sequence[str]) -> bool:
    key = _host_key(host)
    return any(key == d or key.endswith("." + d) for d in (_host_key(d) for d in domains))


def on_domains(url: str, domains: Sequence[str]) -> bool:
    """Whether ``url``'s host is one of ``domains`` or under one (IDN hosts compare in either spelling)."""
    if not domains:
        return True
    read = _read(url)
    return isinstance(read, _Url) and _on(read.host, domains)


def _addition(url: str, params: Mapping[str, str], domains: Sequence[str]) -> tuple[int, str] | None:
    """Where in ``url`` the parameters it lacks go and the text to insert there; None to leave it as written."""
    read = _read(url)
    if read is None:
        return None
    if isinstance(read, str):
        log.debug("UTM: %r left as written: %s", url, read)
        return None
    if domains and not _on(read.host, domains):
        log.debug("UTM: %r left as written: %s is not on the tagged domains", url, read.host)
        return None
    present = {key.lower() for key, _ in parse_qsl(read.query or "", keep_blank_values=True)}
    missing = [(k, v) for k, v in params.items() if k.lower() not in present and v]
    if not missing:
        return None
    text = "&".join(f"{key}={quote(value, safe='')}" for key, value in missing)
    if read.query is None:
        separator = "?"
    elif not read.query or read.query.endswith("&"):
        separator = ""
    else:
        separator = "&"
    return read.end, separator + text


def tag_url(url: str, params: Mapping[str, str], domains: Sequence[str] = ()) -> str:
    """``url`` with the UTM parameters it lacks (unchanged when it is not an http(s) URL on ``domains``)."""
    found = _addition(url, params, domains)
    if found is None:
        return url
    at, text = found
    return url[:at] + text + url[at:]


_TRAILING = ".,;:!?…'`»”’›"
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<", '"': '"'}


def trim(url: str) -> str:
    """``url`` without the punctuation that ends the sentence around it.

    That is: ``.,;:!?…'`»”’›``, and a closing bracket (``)]}>``) or ``"`` that opens nowhere in the URL.
    """
    while url:
        last = url[-1]
        opener = _CLOSERS.get(last)
        if opener == last:
            unbalanced = url.count(last) % 2 == 1
        else:
            unbalanced = opener is not None and url.count(last) > url.count(opener)
        if last not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


# -- URLs in text ---------------------------------------------------------------------------------------------------

_TEXT_URL = re.compile(r"https?:[/\\][^\s«»“”]*", re.IGNORECASE)


@dataclass
class _Run:
    """Text as Telegram reads it (markup out, escapes and entities decoded), and where each character ends in the
    raw text, so that text added after a character goes in at that place."""

    text: str
    ends: list[int]


class _Reader:
    """Collects the runs of text of a message, and the link targets in it."""

    def __init__(self) -> None:
        self.runs: list[_Run] = []
        self.targets: list[_Run] = []
        self._chars: list[str] = []
        self._ends: list[int] = []

    def add(self, char: str, end: int) -> None:
        self._chars.append(char)
        self._ends.append(end)

    def flush(self) -> None:
        """End the current run (code, a link's brackets, ...: no URL in text runs across it)."""
        if self._chars:
            self.runs.append(_Run("".join(self._chars), self._ends))
            self._chars, self._ends = [], []


def tag_text(text: str, params: Mapping[str, str], parse_mode: str | None = None, domains: Sequence[str] = ()) -> str:
    """``text`` with every http(s) URL in it tagged, in Telegram ``parse_mode`` (None, "HTML" or "MarkdownV2")."""
    if ":" not in text:
        return text
    if parse_mode in ("HTML", "MarkdownV2"):
        reader = _read_html(text) if parse_mode == "HTML" else _read_markdown_v2(text)
        runs, targets = reader.runs, reader.targets
        in_text: Callable[[str], str] = partial(escape, parse_mode=parse_mode)
        # an href is escaped as text is; a MarkdownV2 link target needs only ")" and "\\" escaped, never added
        in_target = in_text if parse_mode == "HTML" else str
    else:
        runs, targets, in_text, in_target = [_Run(text, list(range(1, len(text) + 1)))], [], str, str
    urls = [(url, ends, in_text) for run in runs for url, ends in _urls_in(run)]
    urls += [(target.text, target.ends, in_target) for target in targets]
    inserts: list[tuple[int, str]] = []
    for url, ends, write in urls:
        found = _addition(url, params, domains)
        if found is not None:
            at, added = found
            inserts.append((ends[at - 1], write(added)))
    for position, added in sorted(inserts, reverse=True):
        text = text[:position] + added + text[position:]
    return text


def _urls_in(run: _Run) -> Iterator[tuple[str, list[int]]]:
    for match in _TEXT_URL.finditer(run.text):
        url = trim(match.group())
        yield url, run.ends[match.start() : match.start() + len(url)]


# Telegram's HTML entities: &lt; &gt; &amp; &quot; and numeric ones (hexadecimal with a lower-case x only), the ``;``
# optional (tdlib, td/telegram/MessageEntity.cpp, decode_html_entity).
_HTML_ENTITY = re.compile(r"&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|(lt|gt|amp|quot)(?![A-Za-z]));?")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[^\s>]*")
_ATTRIBUTE_NAME = re.compile(r"[^\s=>/\"']*")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")


def _html_entity(text: str, i: int) -> tuple[str, int] | None:
    """The character of the entity at ``text[i]`` and where it ends, or None if Telegram reads a plain ``&``."""
    match = _HTML_ENTITY.match(text, i)
    if match is None:
        return None
    hexadecimal, decimal, name = match.groups()
    if name:
        return _NAMED[name], match.end()
    digits = hexadecimal or decimal
    code = int(digits, 16 if hexadecimal else 10)
    if code == 0 or code >= 0x10FFFF or len(digits) + (3 if hexadecimal else 2) >= 10:
        return None
    return chr(code), match.end()


def _read_html(text: str) -> _Reader:
    reader = _Reader()
    code = 0  # how deep inside <code>/<pre>
    i, n = 0, len(text)
    while i < n:
        if text[i] == "<":
            i, name, closing, href = _html_tag(text, i)
            if name in ("code", "pre"):
                reader.flush()
                code = max(0, code - 1) if closing else code + 1
            elif href is not None and not code:
                reader.targets.append(href)
            continue
        entity = _html_entity(text, i) if text[i] == "&" else None
        char, i = entity if entity else (text[i], i + 1)
        if not code:
            reader.add(char, i)
    reader.flush()
    return reader


def _html_tag(text: str, i: int) -> tuple[int, str, bool, _Run | None]:
    """The tag at ``text[i]``: where it ends, its name, whether it is an end tag, and its quoted ``href``."""
    n = len(text)
    closing = text.startswith("</", i)
    name_match = _TAG_NAME.match(text, i + 1 + closing)
    assert name_match is not None
    name, j = name_match.group().lower(), name_match.end()
    href: _Run | None = None
    while not closing and j < n and text[j] != ">":
        if text[j].isspace():
            j += 1
            continue
        attribute_match = _ATTRIBUTE_NAME.match(text, j)
        assert attribute_match is not None
        attribute, j = attribute_match.group(), max(attribute_match.end(), j + 1)
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != "=":
            continue
        j += 1
        while j < n and text[j].isspace():
            j += 1
        if j < n and text[j] in "\"'":
            value, j = _attribute_value(text, j)
            if name == "a" and attribute == "href":
                href = value
        else:
            token = _NAME_TOKEN.match(text, j)
            assert token is not None
            if name == "a" and attribute == "href":
                log.debug("UTM: an unquoted href at %d left as written (Telegram takes quoted values only)", j)
                href = None
            j = max(token.end(), j + 1)
    end = text.find(">", j)
    return (n if end < 0 else end + 1), name, closing, href


def _attribute_value(text: str, j: int) -> tuple[_Run, int]:
    """The quoted attribute value at ``text[j]`` with its entities decoded, and where it ends."""
    quote_char, j = text[j], j + 1
    chars: list[str] = []
    ends: list[int] = []
    while j < len(text) and text[j] != quote_char:
        entity = _html_entity(text, j) if text[j] == "&" else None
        char, j = entity if entity else (text[j], j + 1)
        chars.append(char)
        ends.append(j)
    return _Run("".join(chars), ends), j + 1


_MDV2_MARKERS = "*_~|"
_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")


def _mdv2_escaped(text: str, i: int) -> bool:
    """Whether ``text[i]`` is a ``\\`` that escapes the next character (any ASCII character, as tdlib reads it)."""
    return text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126


def _read_markdown_v2(text: str) -> _Reader:
    reader = _Reader()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if _mdv2_escaped(text, i):
            reader.add(text[i + 1], i + 2)
            i += 2
        elif text.startswith("```", i):
            reader.flush()
            close = text.find("```", i + 3)
            i = n if close < 0 else close + 3
        elif c == "`":
            reader.flush()
            j = i + 1
            while j < n and text[j] != "`":
                j += 2 if _mdv2_escaped(text, j) else 1
            i = j + 1
        elif text.startswith("](", i):
            reader.flush()
            j = i + 2
            chars: list[str] = []
            ends: list[int] = []
            while j < n and text[j] != ")":
                step = 2 if _mdv2_escaped(text, j) else 1
                chars.append(text[j + step - 1])
                j += step
                ends.append(j)
            reader.targets.append(_Run("".join(chars), ends))
            i = j + 1
        elif c in _MDV2_MARKERS:
            i += 1
        elif c in _MDV2_RESERVED:
            reader.flush()
            i += 1
        else:
            reader.add(c, i + 1)
            i += 1
    reader.flush()
    return reader
