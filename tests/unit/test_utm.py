"""UTM tagging of single URLs and of URLs in text, plain and in Telegram's HTML and MarkdownV2."""

from __future__ import annotations

import logging

import pytest

from adapters.telegram_markup import scan_html, scan_markdown_v2
from scheduler.utm import UtmConfig, on_domains, tag_text, tag_url, trim, utm_params

P = {"utm_source": "telegram", "utm_medium": "social", "utm_campaign": "spring"}
TAGS = "utm_source=telegram&utm_medium=social&utm_campaign=spring"


@pytest.mark.parametrize(
    ("url", "tagged"),
    [
        ("https://example.org", f"https://example.org?{TAGS}"),
        ("https://example.org/", f"https://example.org/?{TAGS}"),
        ("https://example.org/a?b=1", f"https://example.org/a?b=1&{TAGS}"),
        ("https://example.org/a?", f"https://example.org/a?{TAGS}"),
        ("https://example.org/a?b=1&", f"https://example.org/a?b=1&{TAGS}"),
        # the fragment stays last
        ("https://example.org/a#part-2", f"https://example.org/a?{TAGS}#part-2"),
        ("https://example.org/a?b=1#x?y=2", f"https://example.org/a?b=1&{TAGS}#x?y=2"),
        # existing parameters are kept byte for byte, never re-encoded
        ("https://example.org/s?q=caf%C3%A9+au+lait&x=%2F", f"https://example.org/s?q=caf%C3%A9+au+lait&x=%2F&{TAGS}"),
        ("https://example.org/p%20q/?a=b;c=d", f"https://example.org/p%20q/?a=b;c=d&{TAGS}"),
        # IDN hosts and non-ASCII paths stay as written
        ("https://пример.рф/статья?id=1", f"https://пример.рф/статья?id=1&{TAGS}"),
        ("https://xn--e1afmkfd.xn--p1ai/", f"https://xn--e1afmkfd.xn--p1ai/?{TAGS}"),
        # utm_* already there win, the missing ones are added
        (
            "https://example.org/?utm_source=newsletter&utm_campaign=own",
            "https://example.org/?utm_source=newsletter&utm_campaign=own&utm_medium=social",
        ),
        (
            "https://example.org/?UTM_MEDIUM=email",
            "https://example.org/?UTM_MEDIUM=email&utm_source=telegram&utm_campaign=spring",
        ),
        (f"https://example.org/?{TAGS}", f"https://example.org/?{TAGS}"),
        # with a port, user info and an upper-case scheme
        ("HTTPS://user@example.org:8443/x", f"HTTPS://user@example.org:8443/x?{TAGS}"),
        # not http(s): untouched
        ("mailto:someone@example.org", "mailto:someone@example.org"),
        ("tg://resolve?domain=x", "tg://resolve?domain=x"),
    ],
)
def test_tag_url(url: str, tagged: str) -> None:
    assert tag_url(url, P) == tagged


def test_values_are_percent_encoded() -> None:
    params = {"utm_source": "vk", "utm_campaign": "чёрная пятница & co/2026", "utm_content": "a=b#c"}
    assert tag_url("https://example.org/", params) == (
        "https://example.org/?utm_source=vk&utm_campaign=%D1%87%D1%91%D1%80%D0%BD%D0%B0%D1%8F%20%D0%BF%D1%8F%D1%82"
        "%D0%BD%D0%B8%D1%86%D0%B0%20%26%20co%2F2026&utm_content=a%3Db%23c"
    )


def test_params_from_config_and_post() -> None:
    assert utm_params(UtmConfig(enabled=True), "vk") == {"utm_source": "vk", "utm_medium": "social"}
    config = UtmConfig(enabled=True, source="vkontakte", medium="smm", campaign="always")
    assert utm_params(config, "vk", None, "hero") == {
        "utm_source": "vkontakte",
        "utm_medium": "smm",
        "utm_campaign": "always",
        "utm_content": "hero",
    }
    assert utm_params(config, "vk", "spring")["utm_campaign"] == "spring"  # the post's campaign wins


def test_domains_limit_what_is_tagged_and_compare_idn_either_way() -> None:
    assert on_domains("https://blog.example.org/x", ["example.org"])
    assert not on_domains("https://example.org.evil.com/", ["example.org"])
    assert not on_domains("https://notexample.org/", ["example.org"])
    assert not on_domains("https://evil.example\\@example.org/", ["example.org"])  # a backslash ends the host
    assert on_domains("https://EXAMPLE.org%2E/", ["example.org"])
    assert on_domains("https://xn--e1afmkfd.xn--p1ai/", ["пример.рф"])
    assert on_domains("https://ПРИМЕР.рф/", ["xn--e1afmkfd.xn--p1ai"])
    assert tag_url("https://youtube.com/watch?v=1", P, ["example.org"]) == "https://youtube.com/watch?v=1"
    text = "ours https://example.org/a and theirs https://youtube.com/watch?v=1"
    assert (
        tag_text(text, P, None, ["example.org"])
        == f"ours https://example.org/a?{TAGS} and theirs https://youtube.com/watch?v=1"
    )


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://x.org/a.", "https://x.org/a"),
        ("https://x.org/a?b=1!", "https://x.org/a?b=1"),
        ("https://x.org/a),", "https://x.org/a"),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("https://en.wikipedia.org/wiki/Foo_(bar))", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("https://x.org/»", "https://x.org/"),
        ("https://x.org/a...", "https://x.org/a"),
    ],
)
def test_trim(url: str, kept: str) -> None:
    assert trim(url) == kept


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        ("Read https://x.org/a.", f"Read https://x.org/a?{TAGS}."),
        ("Read https://x.org/a?b=1, then", f"Read https://x.org/a?b=1&{TAGS}, then"),
        ("(see https://x.org/a)", f"(see https://x.org/a?{TAGS})"),
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", f"(see https://en.wikipedia.org/wiki/Foo_(bar)?{TAGS})"),
        ("«https://x.org/a»", f"«https://x.org/a?{TAGS}»"),
        ('"https://x.org/a"', f'"https://x.org/a?{TAGS}"'),
        ("https://x.org/#top!", f"https://x.org/?{TAGS}#top!"),
        ("two: https://a.org https://b.org/", f"two: https://a.org?{TAGS} https://b.org/?{TAGS}"),
        ("https://пример.рф/путь?q=%D0%B0!", f"https://пример.рф/путь?q=%D0%B0&{TAGS}!"),
        ("no links here", "no links here"),
        ("https:// is not a link", "https:// is not a link"),
        ("line\nhttps://x.org\nnext", f"line\nhttps://x.org?{TAGS}\nnext"),
    ],
)
def test_plain_text(text: str, tagged: str) -> None:
    assert tag_text(text, P) == tagged


HTML_TAGS = TAGS.replace("&", "&amp;")


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        (
            '<a href="https://x.org/?a=1&amp;b=2">read</a>',
            f'<a href="https://x.org/?a=1&amp;b=2&amp;{HTML_TAGS}">read</a>',
        ),
        ("<a href='https://x.org/a.'>x</a>", f"<a href='https://x.org/a.?{HTML_TAGS}'>x</a>"),  # delimited: no trim
        ("See https://x.org/?a=1&amp;b=2.", f"See https://x.org/?a=1&amp;b=2&amp;{HTML_TAGS}."),
        ("<b>https://x.org/a</b>!", f"<b>https://x.org/a?{HTML_TAGS}</b>!"),
        ("https://x.org/a&gt; more", f"https://x.org/a?{HTML_TAGS}&gt; more"),
        ("<code>https://x.org/a</code> https://y.org", f"<code>https://x.org/a</code> https://y.org?{HTML_TAGS}"),
        ("<pre>curl https://x.org</pre>", "<pre>curl https://x.org</pre>"),
        ('<a href="https://x.org/#frag">x</a>', f'<a href="https://x.org/?{HTML_TAGS}#frag">x</a>'),
    ],
)
def test_html(text: str, tagged: str) -> None:
    result = tag_text(text, P, "HTML")
    assert result == tagged
    assert scan_html(result)[1] == []


MD_TAGS = TAGS.replace("_", "\\_").replace("=", "\\=")


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        (r"Read https://x\.org/a\_b?c\=1\.", rf"Read https://x\.org/a\_b?c\=1&{MD_TAGS}\."),
        ("[read](https://x.org/a?b=1)", f"[read](https://x.org/a?b=1&{TAGS})"),
        (r"[read](https://x.org/a\)b)", rf"[read](https://x.org/a\)b?{TAGS})"),
        (r"*https://x\.org/a*", rf"*https://x\.org/a?{MD_TAGS}*"),
        (r"https://x\.org/\#top", rf"https://x\.org/?{MD_TAGS}\#top"),
        (r"\(https://x\.org/a\)", rf"\(https://x\.org/a?{MD_TAGS}\)"),
        ("`https://x.org/a` https://y\\.org", f"`https://x.org/a` https://y\\.org?{MD_TAGS}"),
        ("```\ncurl https://x.org\n```", "```\ncurl https://x.org\n```"),
        (
            r"https://x\.org/?utm\_source\=vk",
            r"https://x\.org/?utm\_source\=vk&utm\_medium\=social&utm\_campaign\=spring",
        ),
    ],
)
def test_markdown_v2(text: str, tagged: str) -> None:
    result = tag_text(text, P, "MarkdownV2")
    assert result == tagged
    assert scan_markdown_v2(result)[1] == []


# Issue 17: where a URL ends. The WHATWG reading decides: an apostrophe, quotes and entities inside an href are part
# of the URL, and the parameters go at the true end of its query.
@pytest.mark.parametrize(
    ("text", "mode", "tagged"),
    [
        (
            '<a href="https://en.wikipedia.org/wiki/Ender\'s_Game">x</a>',
            "HTML",
            f'<a href="https://en.wikipedia.org/wiki/Ender\'s_Game?{HTML_TAGS}">x</a>',
        ),
        (
            "See https://en.wikipedia.org/wiki/Ender's_Game.",
            None,
            f"See https://en.wikipedia.org/wiki/Ender's_Game?{TAGS}.",
        ),
        (
            '<a href="https://x.org/?q=&quot;a&quot;">x</a>',
            "HTML",
            f'<a href="https://x.org/?q=&quot;a&quot;&amp;{HTML_TAGS}">x</a>',
        ),
        (
            '<a href="https://x.org/a&lt;b&gt;">x</a>',
            "HTML",
            f'<a href="https://x.org/a&lt;b&gt;?{HTML_TAGS}">x</a>',
        ),
        (
            "<a href='https://example.com/\"quoted\"'>x</a>",
            "HTML",
            f"<a href='https://example.com/\"quoted\"?{HTML_TAGS}'>x</a>",
        ),
        ('see https://example.com/"quoted" now', None, f'see https://example.com/"quoted"?{TAGS} now'),
        ('see "https://example.com/"quoted"" now', None, f'see "https://example.com/"quoted"?{TAGS}" now'),
        # a bare "?" ending a URL: an empty query in an href, the sentence's question mark in text
        ('<a href="http://host/?\'">x</a>', "HTML", f'<a href="http://host/?\'&amp;{HTML_TAGS}">x</a>'),
        ('<a href="https://x.org/p?">x</a>', "HTML", f'<a href="https://x.org/p?{HTML_TAGS}">x</a>'),
        ("Is it https://x.org/p?", None, f"Is it https://x.org/p?{TAGS}?"),
        ("[x](http://host/?')", "MarkdownV2", f"[x](http://host/?'&{TAGS})"),
        # Telegram reads the text without its tags and markers: the URL runs across them
        ("https://x.org/<b>path</b> now", "HTML", f"https://x.org/<b>path?{HTML_TAGS}</b> now"),
        (r"https://x\.org/a_b_c now", "MarkdownV2", rf"https://x\.org/a_b_c?{MD_TAGS} now"),
        # Telegram decodes &#x41; but reads &#X41; as it is: its "#" starts the fragment
        ('<a href="https://x.org/&#x41;">x</a>', "HTML", f'<a href="https://x.org/&#x41;?{HTML_TAGS}">x</a>'),
        ('<a href="https://x.org/&#X41;">x</a>', "HTML", f'<a href="https://x.org/&?{HTML_TAGS}#X41;">x</a>'),
        # tabs and newlines inside a URL are not part of it; leading and trailing spaces neither
        ('<a href=" https://x.org/a\n ">x</a>', "HTML", f'<a href=" https://x.org/a?{HTML_TAGS}\n ">x</a>'),
        # backslashes are slashes in an http(s) URL
        ("<a href='https:\\\\x.org\\a'>x</a>", "HTML", f"<a href='https:\\\\x.org\\a?{HTML_TAGS}'>x</a>"),
    ],
)
def test_where_a_url_ends(text: str, mode: str | None, tagged: str) -> None:
    assert tag_text(text, P, mode) == tagged


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://", "it has no host"),
        ("http://user@/x", "it has no host"),
        ("https://x.org:99999/", "the port '99999' is not a number up to 65535"),
        ("https://x.org:8o/", "the port '8o' is not a number up to 65535"),
        ("http://foo.09/", "the host ends in a number but is not an IPv4 address"),
        ("http://1.2.3.4.5/", "the host ends in a number but is not an IPv4 address"),
        ("http://exa%20mple.org/", "the host has ' ' in it"),
        ("http://[::1/", "the host is not a valid IPv6 address"),
        ("http://[::1]x/", "the host is not a valid IPv6 address"),
    ],
)
def test_an_url_that_cannot_be_tagged_is_left_as_written_and_logged(
    url: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="smm.utm"):
        assert tag_url(url, P) == url
        assert tag_text(f"see {url} now", P) == f"see {url} now"
    assert [r.getMessage() for r in caplog.records] == [f"UTM: {url!r} left as written: {why}"] * 2


def test_an_unquoted_href_is_left_as_written_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = "<a href=https://x.org/>x</a>"
    with caplog.at_level(logging.DEBUG, logger="smm.utm"):
        assert tag_text(text, P, "HTML") == text
    assert "unquoted href" in caplog.text


def test_urls_that_are_not_web_urls_are_left_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="smm.utm"):
        assert tag_text("[x](tg://resolve?domain=x) mailto:a@x.org", P, "MarkdownV2") == (
            "[x](tg://resolve?domain=x) mailto:a@x.org"
        )
    assert caplog.records == []
