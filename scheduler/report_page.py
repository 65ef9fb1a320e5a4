"""``smm report --html``: the report as one self-contained page, drawn from a :class:`PageData`.

The page needs nothing from anywhere when it is opened: its style is inline (``report_page.css``, shipped in the
package), its charts are inline SVG (:mod:`scheduler.svg`), it has no script, and its Content-Security-Policy
forbids loading anything, so that even a mistake cannot make it fetch. Every text that comes from a post, a
channel's name or the network (a link) is escaped; a link is a link only when it is ``http`` or ``https``.

Each chart has its numbers in a table under it (in a ``<details>``); a category keeps its colour everywhere, a
channel too (:mod:`scheduler.report_palette`). The calendar is :mod:`scheduler.report_page_calendar`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from importlib.resources import files
from urllib.parse import urlsplit

from adapters import adapter_class
from scheduler.report import Audience, Group, NoResults, Report, caveats
from scheduler.report_calendar import Calendar
from scheduler.report_page_calendar import calendar_section
from scheduler.report_palette import category_color, category_style, channel_colors, legend
from scheduler.scales import compact, format_count, month_name
from scheduler.store.report_page import Ranked
from scheduler.svg import BarRow, LineSeries, bar_chart, esc, line_chart
from scheduler.views import plural, some_of

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_EXCERPT = 160
LISTED = 20
"""An agency's report covers hundreds of channels: the header names, and the findings cover, this many."""
CHARTED = 12
"""At most this many channels get an audience chart; the others' audience is in a table."""


@dataclass(frozen=True)
class PageData:
    """What the page shows: the report (grouped by category), each channel's network, the audience by day, a
    sample of each category's engagement per post, the best and the worst posts, and the calendar."""

    report: Report
    networks: Mapping[str, str]
    zone: tzinfo
    generated_at: datetime
    audience: Mapping[str, Sequence[tuple[date, int]]]
    engagement: Mapping[str, Sequence[float]]
    best: Sequence[Ranked]
    worst: Sequence[Ranked]
    calendar: Calendar


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute ``http``/``https`` URL without spaces or control characters, else None (a
    ``javascript:`` or ``data:`` link is shown as text, never as a link)."""
    if not url or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _day(value: date) -> str:
    return f"{value.day} {month_name(value.month)} {value.year}"


def _style() -> str:
    return files("scheduler").joinpath("report_page.css").read_text(encoding="utf-8")


def render_page(data: PageData) -> str:
    """The whole page, as text (UTF-8 when written)."""
    report = data.report
    since, until = (t.astimezone(data.zone).date() for t in (report.period.since, report.period.until))
    title = f"smm report, {_day(since)} to {_day(until)}"
    body = [
        _header(data, since, until),
        "<main>",
        _cards(data),
        _findings(data),
        _audience(data),
        _results(data),
        _best_and_worst(data),
        calendar_section(data.calendar),
        "</main>",
        _footer(data),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>\n{_style()}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _header(data: PageData, since: date, until: date) -> str:
    names = list(data.report.channels)
    colors = channel_colors(names)
    chips = [
        f'<li><span class="dot" style="background:{colors[name]}"></span>{esc(name)}'
        f'<span class="net">{esc(data.networks.get(name, ""))}</span></li>'
        for name in names[:LISTED]
    ]
    if len(names) > LISTED:
        chips.append(f"<li>and {len(names) - LISTED:,} more</li>")
    return (
        '<header class="top"><div class="inner">'
        "<h1>What your posts achieved</h1>"
        f'<p class="period">{esc(_day(since))} to {esc(_day(until))} · {plural(len(names), "channel", "channels")}</p>'
        f'<ul class="chips" aria-label="Channels">{"".join(chips)}</ul>'
        "</div></header>"
    )


def _card(label: str, value: float | None, sub: str = "", *, shown: str | None = None) -> str:
    """A key figure: compact (``2.25B``) with the exact one as its tooltip; ``shown`` instead when given."""
    extra = f'<div class="sub">{sub}</div>' if sub else ""
    text = shown if shown is not None else compact(value)
    exact = f' title="{esc(format_count(value))}"' if value is not None and shown is None else ""
    return (
        f'<div class="card"><div class="label">{esc(label)}</div><div class="value"{exact}>{esc(text)}</div>'
        f"{extra}</div>"
    )


def _total(groups: Sequence[Group], metric: str) -> int | None:
    totals = [getattr(g, metric).total for g in groups if getattr(g, metric).total is not None]
    return sum(totals) if totals else None


def _growth(amount: int | None, pct: float | None) -> str:
    if amount is None:
        return "no growth to show yet"
    arrow, css = ("▲", "up") if amount > 0 else ("▼", "down") if amount < 0 else ("", "")
    share = f" ({pct:+.1f}%)" if pct is not None else ""
    return f'<span class="{css}">{arrow} {amount:+,}{esc(share)}</span> in the period'


def _cards(data: PageData) -> str:
    report = data.report
    posts = sum(g.posts for g in report.groups)
    measured = sum(g.measured for g in report.groups)
    interactions = [t for t in (_total(report.groups, m) for m in ("likes", "reposts", "comments")) if t is not None]
    ends = [a for a in report.audiences if a.end is not None]
    audience = sum(a.end or 0 for a in ends)
    growths = [a.growth for a in ends if a.growth is not None]
    starts = sum(a.start or 0 for a in ends if a.growth is not None)
    growth = sum(growths) if growths else None
    share = report.commercial.share
    rules = sorted(set(data.calendar.rules.values()))
    cards = [
        _card("Posts published", posts, esc(f"{measured:,} with results")),
        _card("Views", _total(report.groups, "views"), "where the network counts them"),
        _card("Interactions", sum(interactions) if interactions else None, "likes, reposts, comments"),
        _card(
            "Audience",
            audience if ends else None,
            _growth(growth, growth * 100 / starts if growth is not None and starts else None),
        ),
        _card(
            "Commercial posts",
            None,
            esc(f"rule: {rules[0]}") if len(rules) == 1 else "rules differ by channel",
            shown=f"{share:.0%}" if share is not None else "–",
        ),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _findings(data: PageData) -> str:
    report = data.report
    lines = []
    published = any(g.posts for g in report.groups)
    channels = list(dict.fromkeys(b.channel for b in report.best)) if published else []
    for channel in channels[:LISTED]:
        said = "; ".join(_best(report, b.what, b.key, b.median, b.n) for b in report.best if b.channel == channel)
        lines.append(f"<li><strong>{esc(channel)}</strong>: {esc(said)}</li>")
    if len(channels) > LISTED:
        more = plural(len(channels) - LISTED, "channel", "channels")
        lines.append(f"<li>and {more} more: <code>smm report --by channel</code> shows each</li>")
    side = report.commercial
    if side.share is not None and side.commercial.posts:
        lines.append(
            "<li>Commercial posts: "
            + esc(
                f"{side.commercial.posts:,} of {side.commercial.posts + side.other.posts:,}, a median "
                f"{format_count(side.commercial.engagement.median)} per 1,000 followers against "
                f"{format_count(side.other.engagement.median)} for the others"
            )
            + "</li>"
        )
    lines += [f'<li class="muted">{note}</li>' for note in _no_results(data)]
    lines += [f'<li class="muted">{esc(note[:1].upper() + note[1:])}.</li>' for note in caveats(report)]
    if not lines:
        return ""
    return (
        '<section class="panel" aria-labelledby="findings"><header><h2 id="findings">What the numbers say</h2>'
        f"</header><ul>{''.join(lines)}</ul></section>"
    )


def _best(report: Report, what: str, key: str | None, median: float | None, n: int) -> str:
    if key is None:
        return f"best {what}: too few posts to say (a {what} needs {report.min_sample} measured, the most has {n:,})"
    return f"best {what}: {key}, a median {format_count(median)} interactions per 1,000 followers over {n:,} posts"


def _no_results(data: PageData) -> list[str]:
    """``tg-news: post results are not available from the Bot API (why); their audience is shown.``, the channels of
    one network and reason together."""
    by_reason: dict[tuple[str, str], list[NoResults]] = {}
    for channel in data.report.no_results:
        by_reason.setdefault((channel.network, channel.reason), []).append(channel)
    notes = []
    for (network, reason), channels in by_reason.items():
        api = adapter_class(network).api_title
        source = f" from {api}" if api else ""
        shown = "; their audience is shown" if any(data.audience.get(c.channel) for c in channels) else ""
        names = some_of([c.channel for c in channels], LISTED)
        notes.append(f"<strong>{esc(names)}</strong>: post results are not available{source} ({esc(reason)}){shown}.")
    return notes


def _table(caption: str, head: Sequence[str], rows: Iterable[Sequence[str]], *, summary: str = "The numbers") -> str:
    """A table, folded under ``summary``, whose cells are given escaped; the first column heads its rows."""
    th = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "".join(
        "<tr>" + f'<th scope="row">{row[0]}</th>' + "".join(f"<td>{cell}</td>" for cell in row[1:]) + "</tr>"
        for row in rows
    )
    return (
        f'<details><summary>{esc(summary)}</summary><div class="table-wrap"><table><caption>{esc(caption)}</caption>'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _audience(data: PageData) -> str:
    colors = channel_colors(data.report.channels)
    drawn = [a for a in data.report.audiences if data.audience.get(a.channel)]
    figures = []
    for i, audience in enumerate(drawn[:CHARTED]):
        name, points = audience.channel, data.audience[audience.channel]
        change = _change(audience, points)
        chart = line_chart(
            [LineSeries(name, colors[name], [(day, float(members)) for day, members in points])],
            ident=f"audience-{i}",
            title=f"Audience of {name}",
            description=f"Followers of {name} by day, {change}.",
            height=200,
        )
        table = _table(
            f"Audience of {name} by day",
            ["Day", "Followers"],
            ([esc(day.isoformat()), esc(format_count(members))] for day, members in points),
        )
        figures.append(
            f"<figure><figcaption>{esc(name)} <span class='muted'>{esc(change)}</span></figcaption>"
            f"{chart}{table}</figure>"
        )
    rest = ""
    if len(drawn) > CHARTED:
        rest = _table(
            f"The audience of the other {len(drawn) - CHARTED:,} channels",
            ["Channel", "Followers"],
            ([esc(a.channel), esc(_change(a, data.audience[a.channel]))] for a in drawn[CHARTED:]),
            summary=f"and {plural(len(drawn) - CHARTED, 'channel', 'channels')} more",
        )
    content = (
        f'<div class="grid">{"".join(figures)}</div>{rest}'
        if figures
        else '<p class="empty">No audience reading in this period yet: the daemon reads each channel\'s audience '
        "once a day.</p>"
    )
    return (
        '<section class="panel" aria-labelledby="audience"><header><h2 id="audience">Audience over time</h2>'
        '<p class="muted small">Followers, subscribers or members of each channel, read once a day.</p></header>'
        f"{content}</section>"
    )


def _change(audience: Audience, points: Sequence[tuple[date, int]]) -> str:
    """``12,030 → 12,900 (+870, +7.2%)``: the report's first and last reading of the period, and the growth."""
    start = audience.start if audience.start is not None else points[0][1]
    end = audience.end if audience.end is not None else points[-1][1]
    change = f"{format_count(start)} → {format_count(end)}"
    if audience.growth is not None:
        change += f" ({audience.growth:+,}"
        change += f", {audience.growth_pct:+.1f}%)" if audience.growth_pct is not None else ")"
    return change


def _results(data: PageData) -> str:
    groups = [g for g in data.report.groups if g.posts]
    heading = (
        '<section class="panel" aria-labelledby="results"><header><h2 id="results">Results per post, by category</h2>'
        '<p class="muted small">Each dot is a post; a bar is the median of its category.</p></header>'
    )
    if not groups:
        return heading + '<p class="empty">No post was published in this period.</p></section>'
    measured = [g for g in groups if g.engagement.median is not None]
    charts = []
    if measured:
        rows = [
            BarRow(
                g.key,
                g.engagement.median or 0.0,
                category_color(g.key),
                tuple(data.engagement.get(g.key, ())),
                f"{g.engagement.n} posts · {format_count(g.engagement.median)}",
            )
            for g in measured
        ]
        charts.append(
            "<figure><figcaption>Interactions per 1,000 followers</figcaption>"
            + bar_chart(
                rows,
                ident="engagement",
                title="Interactions per 1,000 followers, by category",
                description="Median likes, reposts and comments per 1,000 followers of each category's posts: "
                + "; ".join(f"{g.key} {format_count(g.engagement.median)}" for g in measured)
                + ".",
            )
            + "</figure>"
        )
    viewed = [g for g in groups if g.views.median is not None]
    if viewed:
        rows = [BarRow(g.key, g.views.median or 0.0, category_color(g.key), (), f"{g.views.n} posts") for g in viewed]
        charts.append(
            "<figure><figcaption>Views per post <span class='muted'>(median)</span></figcaption>"
            + bar_chart(
                rows,
                ident="views",
                title="Median views per post, by category",
                description="; ".join(f"{g.key} {format_count(g.views.median)}" for g in viewed) + ".",
            )
            + "</figure>"
        )
    if not charts:
        charts.append('<p class="empty">No result has been read for these posts yet.</p>')
    table = _table(
        "Per category: posts, posts with results, and the median of each figure",
        ["Category", "Posts", "With results", "Views", "Likes", "Reposts", "Comments", "Per 1,000 followers"],
        (
            [esc(g.key), f"{g.posts:,}", f"{g.measured:,}"]
            + [esc(format_count(m.median)) for m in (g.views, g.likes, g.reposts, g.comments, g.engagement)]
            for g in groups
        ),
    )
    notes = "".join(f'<p class="note">{note}</p>' for note in _no_results(data))
    return (
        heading + legend([g.key for g in groups]) + f'<div class="grid">{"".join(charts)}</div>{table}{notes}</section>'
    )


def _post(line: Ranked, zone: tzinfo) -> str:
    text = line.text if len(line.text) <= _EXCERPT else line.text[: _EXCERPT - 1].rstrip() + "…"
    url = safe_url(line.url)
    link = f'<a href="{esc(url)}" rel="noopener noreferrer">open the post</a>' if url else "no link"
    figure = f"{format_count(line.engagement)} per 1,000 followers"
    if line.views is not None:
        figure += f" · {format_count(line.views)} views"
    when = line.published_at.astimezone(zone)
    return (
        f'<li class="post" style="{category_style(line.category)}">'
        f'<div class="meta"><span class="tag">{esc(line.category)}</span> {esc(line.channel)} · '
        f"{esc(_day(when.date()))} · post {line.post_id}</div>"
        f'<p class="text">{esc(text) or "<span class=muted>(no text)</span>"}</p>'
        f'<div><span class="figure">{esc(figure)}</span> · {link}</div></li>'
    )


def _best_and_worst(data: PageData) -> str:
    if not data.best:
        return ""
    lists = [
        f"<div><h3>{title}</h3><ol>{''.join(_post(p, data.zone) for p in posts)}</ol></div>"
        for title, posts in (("Best", data.best), ("Worst", data.worst))
        if posts
    ]
    return (
        '<section class="panel" aria-labelledby="posts"><header><h2 id="posts">The best and the worst posts</h2>'
        '<p class="muted small">By interactions per 1,000 followers.</p></header>'
        f'<div class="posts">{"".join(lists)}</div></section>'
    )


def _footer(data: PageData) -> str:
    when = data.generated_at.astimezone(data.zone)
    return (
        f"<footer>Made by smm report on {esc(_day(when.date()))} at {when:%H:%M} ({esc(str(data.zone))}). "
        "This page works offline: it loads nothing.</footer>"
    )
