"""UTM tagging: ``utm_source``, ``utm_medium``, ``utm_campaign`` and ``utm_content`` added to links at render time.

The rule: a tagged URL, read again by a WHATWG URL parser (what browsers use), has the scheme, host, path and
fragment of the original and keeps every query pair of the original byte for byte (never re-encoded), followed by
the parameters it did not have (a ``utm_*`` parameter already present wins). The new parameters go at the end of the
query, before the fragment; their values are percent-encoded. A URL is read as that parser reads an http(s) URL:
leading and trailing control characters and spaces are not part of it, tabs and newlines inside it are ignored, a
backslash is a slash, the fragment starts at the first ``#`` and the query at the first ``?`` before it. An http(s)
URL that cannot be tagged that way (no host, a host or port the parser refuses) is left exactly as written, and
the ``-v`` log says why.

URLs in a post's text are found and tagged where they are, markup-aware for Telegram's parse modes (the text is
read by :func:`adapters.telegram_markup.tokenize`, as Telegram reads it; where Telegram stops reading, so does
tagging):

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl, quote, unquote

from adapters.telegram_markup import Token, escape, tokenize, written_argument

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
    import unicodedata

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


def _extend(chars: list[str], ends: list[int], token: Token, text: str) -> None:
    """Add a text token of ``text``: a run, as written, or one character (an escape, a reference) where it ends."""
    if len(token.value) == token.end - token.start:
        chars.append(text[token.start : token.end])
        ends.extend(range(token.start + 1, token.end + 1))
    else:
        chars.append(token.value)
        ends.append(token.end)


def _target(tokens: Iterable[Token], text: str) -> _Run:
    """A link's target in ``text``, read as one run."""
    chars: list[str] = []
    ends: list[int] = []
    for token in tokens:
        _extend(chars, ends, token, text)
    return _Run("".join(chars), ends)


class _Reader:
    """Collects the runs of text of a message, and the link targets in it."""

    def __init__(self) -> None:
        self.runs: list[_Run] = []
        self.targets: list[_Run] = []
        self._chars: list[str] = []
        self._ends: list[int] = []

    def add(self, token: Token, text: str) -> None:
        _extend(self._chars, self._ends, token, text)

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
        reader = _read_marked_up(text, parse_mode)
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


_UNQUOTED_HREF = re.compile(r"""<a\s(?:[^>]*\s)?href\s*=\s*(?=[^\s'"])""", re.IGNORECASE)
_FORMATTING = frozenset(("bold", "italic", "underline", "strikethrough", "spoiler"))
"""Entities whose MarkdownV2 markers a URL runs across (Telegram reads the text without them)."""
_MDV2_MARKERS = "*_~|"


def _read_marked_up(text: str, parse_mode: str) -> _Reader:
    """The runs of text and the link targets of ``text``, read by Telegram's tokenizer.

    Nothing inside code or a pre block is read. In HTML a URL runs across every tag; in MarkdownV2 only across
    the markers of formatting, and other markup (a link's brackets, a quote's ``>``, a character that must be
    escaped) ends the run. Reading stops where Telegram stops reading.
    """
    reader = _Reader()
    html = parse_mode == "HTML"
    # tdlib ends a tag at a NUL; a NUL in an href is read (and tagged) as the character it is
    read = text.replace("\0", "\x01") if html else text
    code = 0  # how deep inside code or a pre block
    refused = -1  # where the last error is: the unescaped character read there is not text
    for token in tokenize(read, parse_mode):
        kind = token.kind
        if kind == "text":
            if token.start == refused:
                if text[refused] not in _MDV2_MARKERS:
                    reader.flush()
            elif not code:
                reader.add(token, text)
        elif kind == "error":
            refused = token.start
            unquoted = _UNQUOTED_HREF.match(text, token.start) if html else None
            if unquoted:
                log.debug(
                    "UTM: an unquoted href at %d left as written (Telegram takes quoted values only)", unquoted.end()
                )
        elif token.value in ("code", "pre"):
            reader.flush()
            code = code + 1 if kind == "open" else max(0, code - 1)
        elif code:
            continue
        elif token.value == "text_link" and token.argument_start >= 0:
            if not html:
                reader.flush()
            reader.targets.append(_target(written_argument(read, token, parse_mode), text))
        elif not html and token.value not in _FORMATTING:
            reader.flush()
    reader.flush()
    return reader
