"""Telegram markup read as the Bot API reads it: a table of cases, each justified by tdlib's code.

References are to tdlib (github.com/tdlib/td) ``td/telegram/MessageEntity.cpp`` unless another file is named:
``parse_html`` and ``decode_html_entity``, ``parse_markdown_v2``, ``fix_formatted_text`` (cleaning with
``clean_input_string_with_entities``, then trimming), ``MessageContent.cpp`` (the limits compare ``utf8_length``,
code points, with ``message_text_length_max`` and ``message_caption_length_max``) and ``LinkManager.cpp``
(``tg://emoji`` and ``tg://time`` URLs). A row is (text, parse mode, what Telegram refuses or None, the length
Telegram counts when it accepts).
"""

from __future__ import annotations

import random

import pytest

from adapters.telegram_markup import escape, parse, tokenize, visible_length, visible_text

HTML, MD = "HTML", "MarkdownV2"

CASES: list[tuple[str, str | None, str | None, int | None]] = [
    # parse_html: the supported tags; names are lower-cased (to_lower(tag_name))
    ("<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <tg-spoiler>x</tg-spoiler>", HTML, None, 13),
    ("<B>upper</B> <strong>s</strong> <em>e</em> <ins>i</ins> <del>d</del>", HTML, None, 13),
    ("<div>x</div>", HTML, "<div> at line 1, column 1 is not a tag Telegram supports", None),
    ("a<br/>b", HTML, "<br/> at line 1, column 2 is not a tag", None),  # the name runs to a space or '>'
    # attribute values: a quoted string with references decoded, or a name token of [A-Za-z0-9.-], lower-cased
    ('<a href="https://e.com/?a=1&amp;b=2">link</a>', HTML, None, 4),
    ("<a href=https://x.org/>x</a>", HTML, "the value of href in <a> at line 1, column 1 must be quoted", None),
    ("<a href=x.org>x</a>", HTML, None, 1),
    ("<span class=tg-spoiler>x</span>", HTML, None, 1),
    ('<span class="TG-SPOILER">x</span>', HTML, '<span> at line 1, column 1 must be <span class="tg-spoiler">', None),
    ("<span>x</span>", HTML, "must be <span", None),
    ('<a href="x" />', HTML, "has '/' where an attribute belongs", None),  # "Empty attribute name"
    ("<b", HTML, "the tag <b at line 1, column 1 is never closed with '>'", None),
    # a link without a URL uses its text as the URL, and is dropped (not refused) when that is no URL
    ("<a>no href</a>", HTML, None, 7),
    # tg-emoji: emoji-id must be to_integer_safe<int64> and not 0, checked only when the entity is not empty
    ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', HTML, None, 1),
    ('<tg-emoji emoji-id="abc">👍</tg-emoji>', HTML, "<tg-emoji> needs a numeric emoji-id, not 'abc'", None),
    ('<tg-emoji emoji-id="0123">x</tg-emoji>', HTML, "numeric emoji-id", None),
    ('<tg-emoji emoji-id="abc"></tg-emoji>x', HTML, None, 1),
    # tg-time: format letters from FormattedDate::get_date_flags; a unix time <= 0 makes no entity, no error
    ('<tg-time unix="1647531900" format="wDT">22:45 tomorrow</tg-time>', HTML, None, 14),
    ("<tg-time unix=1647531900 format=r>soon</tg-time>", HTML, None, 4),
    ('<tg-time unix="1647531900" format="x">x</tg-time>', HTML, "<tg-time> has format 'x'", None),
    ('<tg-time unix="-5">x</tg-time>', HTML, None, 1),
    ('<pre><code class="language-python">x = 1</code></pre>', HTML, None, 5),
    ("<blockquote expandable>quote</blockquote>", HTML, None, 5),
    # decode_html_entity: lt gt amp quot, &#N and &#xN (lower-case x only), ';' optional; anything else is text
    ("&lt;tag&gt; &amp; &quot;q&quot; &#128512; &#x41;", HTML, None, 15),
    ("&#X41; &#65 &amp", HTML, None, len("&#X41; A &")),
    ("&nbsp; &LT; &ltx;", HTML, None, 17),
    ("&#1114111; &#0;", HTML, None, 15),  # res == 0 or res >= 0x10ffff stays as written
    ("&#xD83D;&#xDE00;", HTML, "half of a UTF-16 surrogate pair", None),  # check_utf8 after decoding
    ("Tom & Jerry > Spike", HTML, None, 19),  # a bare '&' or '>' is text; only '<' starts a tag
    ("a\n1 < 2", HTML, "a bare '<' at line 2, column 3 must be written &lt;", None),
    # nesting: only the innermost tag may be closed; "</>" closes it too
    ("<b>x</>", HTML, None, 1),
    ("<b>open", HTML, "<b> opened at line 1, column 1 is never closed", None),
    ("<b><i>x</b></i>", HTML, "</b> at line 1, column 8 does not close <i> opened at line 1, column 4: tags", None),
    ("x</b>", HTML, "</b> at line 1, column 2 closes no open tag", None),
    # fix_formatted_text: control characters become spaces, '\r' and U+2028-U+202E go, then spaces and line
    # breaks are trimmed at the end, and at the start up to the first entity
    ("  \n<b>x</b> \n ", HTML, None, 1),
    ("<b>  x</b>", HTML, None, 3),
    ("\t x\r\n", None, None, 1),
    ("a\u2028b\u202ec", None, None, 3),
    ("😀" * 3, None, None, 3),  # utf8_length: a character outside the BMP counts once
    # parse_markdown_v2
    ("*bold* _italic_ __underline__ ~strike~ ||spoiler||", MD, None, 36),
    ("*bold _nested_ bold*", MD, None, 16),
    ("[link](https://e.com/a_(b\\))", MD, None, 4),
    ("[text only]", MD, None, 9),
    ("`code with * and _`", MD, None, 17),
    ("`a\\`b`", MD, None, 3),
    ("```python\nprint(1)\n```", MD, None, 8),  # the language and one line break are markup; the end is trimmed
    ("```py code```", MD, None, 5),  # a language ends at a space too
    ("![👍](tg://emoji?id=5368324170671202286)", MD, None, 1),
    ("![22:45](tg://time?unix=1647531900&format=wDT)", MD, None, 5),
    ("![x](tg://time?unix=0)", MD, "custom emoji at line 1, column 1 needs (tg://emoji?id=...)", None),
    ("![x](https://e.com)", MD, "custom emoji at line 1, column 1 needs", None),
    (">quote line\n>second", MD, None, 17),
    ("x\n>>q", MD, None, 3),  # a '>' after the one that continues a quote is dropped too
    ("**>expandable\n>quote||", MD, None, 16),
    (">q||\nx", MD, None, 3),
    (">*a\nb*", MD, "bold '*' opened at line 1, column 2 is never closed (a quote ends with its line)", None),
    ("a > b", MD, "'>' at line 1, column 3 must be escaped as '\\>'", None),
    ("Price 10\\.5\\! \\(now\\)", MD, None, 17),
    ("ends with a dot.", MD, "'.' at line 1, column 16 must be escaped as '\\.'", None),
    ("*open", MD, "bold '*' opened at line 1, column 1 is never closed", None),
    ("*a _b* c_", MD, "italic '_' opened at line 1, column 9 is never closed", None),  # only the innermost closes
    ("_a_\\_", MD, None, 2),
    ("x | y", MD, "'|' at line 1, column 3 must be escaped", None),
    ("[a](https://e.com", MD, "the URL of the link '[' at line 1, column 1 is never closed with ')'", None),
    ("[[x]]", MD, None, 1),
    ("a\\", MD, None, 2),
]


@pytest.mark.parametrize(("text", "mode", "refused", "length"), CASES)
def test_markup_as_telegram_reads_it(text: str, mode: str | None, refused: str | None, length: int | None) -> None:
    problems = parse(text, mode).problems
    if refused is None:
        assert problems == ()
        assert visible_length(text, mode) == length
    else:
        assert problems and refused in problems[0], problems


@pytest.mark.parametrize(("text", "mode"), [(text, mode) for text, mode, refused, _ in CASES if refused is None])
def test_the_tokens_of_an_accepted_text_cover_it_in_order(text: str, mode: str | None) -> None:
    position = 0
    for token in tokenize(text, mode):
        assert token.start == position, token
        assert token.kind != "error"
        position = token.end
    assert position == len(text)


def test_an_unescaped_character_is_reported_and_reading_goes_on_as_if_it_were_escaped() -> None:
    assert len(parse("a-b\nc=d.", MD).problems) == 3
    assert parse("1 < 2 <b>x", HTML).problems[1] == "<b> opened at line 1, column 7 is never closed"
    assert parse("*a* <div> *b", HTML).problems == (
        parse("*a* <div>", HTML).problems
    )  # any other error ends the reading, as it ends Telegram's


def test_tokens_say_where_a_links_url_is_written() -> None:
    html = '<a href="https://x.org/?a=1&amp;b=2">x</a>'
    opened = next(tokenize(html, HTML))
    assert opened.argument == "https://x.org/?a=1&b=2"
    assert html[opened.argument_start : opened.argument_end] == "https://x.org/?a=1&amp;b=2"
    markdown = "[x](https://x.org/a\\)b)"
    closed = next(token for token in tokenize(markdown, MD) if token.kind == "close")
    assert closed.argument == "https://x.org/a)b"
    assert markdown[closed.argument_start : closed.argument_end] == "https://x.org/a\\)b"
    assert [entity.argument for entity in parse("[https://x.org]", MD).entities] == ["https://x.org"]


def test_visible_text_is_what_telegram_stores() -> None:
    assert visible_text(" <b>bold</b> &amp; <i>it</i>\r\n", HTML) == "bold & it"
    assert visible_text("\\*not bold\\* ", MD) == "*not bold*"


PIECES = [*"<>/&#;x1a =\"'_*[]()~`|!\\\n\r.-", "<b>", "</b>", "<a href=", "&amp;", "&#x1F600;", "```", "||"]
PIECES += ["__", "**>", "](tg://emoji?id=1)", "<tg-emoji emoji-id=", "😀", "\u2028"]


@pytest.mark.parametrize("mode", [HTML, MD])
def test_random_markup_is_read_in_order_and_what_it_shows_escapes_back_to_itself(mode: str) -> None:
    rng = random.Random(17)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        position = 0
        for token in tokenize(text, mode):
            if token.kind != "error":
                assert token.start == position and token.end >= position, (text, token)
                position = token.end
        parsed = parse(text, mode)
        visible_length(text, mode)
        if not parsed.problems:
            assert position == len(text), text
            assert parse(escape(parsed.text, mode), mode).text == parsed.text, text
