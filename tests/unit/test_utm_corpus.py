"""UTM tagging against the WHATWG URL test data, judged by a WHATWG-conformant parser (ada).

Every valid absolute http(s) URL of ``urltestdata.json`` is tagged as a post's link and inside a text in each parse
mode. The rule: the tagged URL, parsed again, has the scheme, user info, host, port, path and fragment of the
original and keeps every original query pair byte for byte, followed by the added parameters. A URL inside a text
is the URL as a sentence reads it: :func:`scheduler.utm.trim` takes the sentence's punctuation off its end.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import ada_url
import pytest

from adapters.telegram_markup import scan_html, scan_markdown_v2
from scheduler.utm import tag_text, tag_url, trim
from tests.url_corpus import url_test_data

P = {"utm_source": "telegram", "utm_medium": "social", "utm_campaign": "spring"}


def _valid_absolute_web_urls() -> list[str]:
    """Inputs that parse on their own (without the case's base) to the http(s) URL the case expects."""
    urls = []
    for case in url_test_data():
        if case.get("failure") or case["protocol"] not in ("http:", "https:"):
            continue
        try:
            parsed = ada_url.URL(case["input"])
        except ValueError:
            continue
        if parsed.href == case["href"]:
            urls.append(case["input"])
    return urls


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _valid_absolute_web_urls()


def _parses(url: str) -> bool:
    try:
        ada_url.URL(url)
    except ValueError:
        return False
    return True


def _pairs(search: str) -> list[str]:
    return [pair for pair in search.removeprefix("?").split("&") if pair]


def _rule_broken(original: str, tagged: str) -> str | None:
    """Why ``tagged`` is not ``original`` correctly tagged with ``P``, or None when it is."""
    try:
        before = ada_url.URL(original)
    except ValueError:
        return f"{original!r} does not parse"
    try:
        after = ada_url.URL(tagged)
    except ValueError:
        return "the tagged URL does not parse"
    for part in ("protocol", "username", "password", "host", "pathname", "hash"):
        if getattr(after, part) != getattr(before, part):
            return f"{part} {getattr(before, part)!r} became {getattr(after, part)!r}"
    kept, pairs = _pairs(before.search), _pairs(after.search)
    if pairs[: len(kept)] != kept:
        return f"query pairs {kept} became {pairs}"
    present = {key.lower() for key in ada_url.parse_search_params(before.search)}
    wanted = [f"{key}={value}" for key, value in P.items() if key not in present]
    if pairs[len(kept) :] != wanted:
        return f"added {pairs[len(kept) :]}, expected {wanted}"
    return None


def _listing(failures: list[tuple[str, str]]) -> str:
    return f"{len(failures)} of the corpus URLs:\n" + "\n".join(f"{url!r}: {why}" for url, why in failures)


def _new_markup_problems(mode: str | None, before: str, after: str) -> list[str]:
    """What Telegram would refuse in ``after`` (the tagged text), when it takes ``before``."""
    scan = {"HTML": scan_html, "MarkdownV2": scan_markdown_v2}.get(mode or "")
    if scan is None or scan(before)[1]:
        return []
    return scan(after)[1]


def _mdv2_escape(text: str) -> str:
    return re.sub(r"([_*\[\]()~`>#+\-=|{}.!\\])", r"\\\1", text)


def _mdv2_unescape(text: str) -> str:
    return re.sub(r"\\([\x01-\x7e])", r"\1", text)


def _html_text_escape(text: str) -> str:
    return html.escape(text, quote=False)


def _same(text: str) -> str:
    return text


def test_the_corpus_is_the_real_one(corpus: list[str]) -> None:
    assert len(corpus) >= 160
    assert 'https://example.com/"quoted"' in corpus
    assert "http://host/?'" in corpus


def test_every_corpus_url_as_a_link(corpus: list[str]) -> None:
    failures = [(url, why) for url in corpus if (why := _rule_broken(url, tag_url(url, P)))]
    assert not failures, _listing(failures)


# (parse mode, template, how the URL is written in it, how to read it back) of a URL that is a whole href or target
DELIMITED: dict[str, tuple[str | None, str, Callable[[str], str], Callable[[str], str]]] = {
    "HTML href, double quotes": ("HTML", '<a href="{}">x</a>', lambda u: html.escape(u, quote=True), html.unescape),
    "HTML href, single quotes": ("HTML", "<a href='{}'>x</a>", lambda u: html.escape(u, quote=True), html.unescape),
    "MarkdownV2 link": ("MarkdownV2", "[x]({})", lambda u: re.sub(r"([)\\])", r"\\\1", u), _mdv2_unescape),
}


@pytest.mark.parametrize("context", list(DELIMITED))
def test_every_corpus_url_as_a_link_target(corpus: list[str], context: str) -> None:
    mode, template, write, read = DELIMITED[context]
    head, tail = template.split("{}")
    failures = []
    for url in corpus:
        original = template.format(write(url))
        result = tag_text(original, P, mode)
        value = result[len(head) : len(result) - len(tail)]
        if problems := _new_markup_problems(mode, original, result):
            failures.append((url, f"Telegram would refuse {result!r}: {problems}"))
        elif not (result.startswith(head) and result.endswith(tail)):
            failures.append((url, f"the markup around the URL changed: {result!r}"))
        elif write(read(value)) != value:
            failures.append((url, f"the added text is not written as {context} requires: {value!r}"))
        elif why := _rule_broken(url, read(value)):
            failures.append((url, why))
    assert not failures, _listing(failures)


# In running text a URL starts with http:/ or https:/ (or a backslash) and ends at white space: the corpus URLs that
# do are written there.
TEXT: dict[str, tuple[str | None, Callable[[str], str], Callable[[str], str]]] = {
    "plain text": (None, _same, _same),
    "HTML text": ("HTML", _html_text_escape, html.unescape),
    "MarkdownV2 text": ("MarkdownV2", _mdv2_escape, _mdv2_unescape),
}


@pytest.mark.parametrize("context", list(TEXT))
def test_every_corpus_url_in_a_text(corpus: list[str], context: str) -> None:
    in_text = [url for url in corpus if re.match(r"(?i)https?:[/\\]", url) and not any(c.isspace() for c in url)]
    assert len(in_text) >= 140
    mode, write, read = TEXT[context]
    failures = []
    for url in in_text:
        seen = trim(url)
        rest = url[len(seen) :] + " now."
        original = write(f"See {url} now.")
        result = tag_text(original, P, mode)
        text = read(result)
        if problems := _new_markup_problems(mode, original, result):
            failures.append((url, f"Telegram would refuse {result!r}: {problems}"))
        elif write(text) != result:
            failures.append((url, f"the added text is not written as {context} requires: {result!r}"))
        elif not (text.startswith("See ") and text.endswith(rest)):
            failures.append((url, f"the text around the URL changed: {text!r}"))
        elif not _parses(seen):
            if result != original:
                failures.append((url, f"{seen!r} does not parse, yet the text became {result!r}"))
        elif why := _rule_broken(seen, text[4 : len(text) - len(rest)]):
            failures.append((url, why))
    assert not failures, _listing(failures)
