"""``smm report`` as text and as CSV: the table of groups, the audiences, and the plain lines of what the numbers say
(:func:`findings`, shared by every format that shows sentences)."""

from __future__ import annotations

import csv
import io
from datetime import tzinfo

from scheduler.report import Audience, Best, Group, Metric, Report, Side, caveats
from scheduler.timefmt import format_local

NA = "n/a"
_METRICS = ("views", "likes", "reposts", "comments")


def number(value: float | None, decimals: int = 1) -> str:
    """``1,234``, ``2.5``, or ``n/a``: whole values without decimals, others with at most ``decimals``."""
    if value is None:
        return NA
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")


def _cell(metric: Metric) -> str:
    if metric.median is None:
        return NA
    return f"{number(metric.median)} / {number(metric.total)}"


def _label(report: Report, group: Group) -> str:
    return f"{group.channel} {group.key}" if group.channel else group.key


def format_text(report: Report, zone: tzinfo) -> str:
    """The whole report for a terminal: a heading, the table, the audiences and :func:`findings`; times in
    ``zone``."""
    since = format_local(report.period.since, zone, weekday=False)
    until = format_local(report.period.until, zone, weekday=False)
    out = [
        f"posts published from {since} to {until}, by {report.by}, on {', '.join(report.channels)}",
        "views, likes, reposts, comments: median / total of each post's latest reading; engagement: median of "
        "(likes + reposts + comments) per 1,000 followers",
        "",
    ]
    if report.groups:
        header = [report.by, "posts", "measured", *_METRICS, "engagement"]
        rows = [
            [
                _label(report, g),
                f"{g.posts:,}",
                f"{g.measured:,}",
                *(_cell(getattr(g, m)) for m in _METRICS),
                number(g.engagement.median, 2),
            ]
            for g in report.groups
        ]
        out += _aligned(header, rows, right=range(1, len(header)))
    else:
        out.append("no posts were published in this period")
    out.append("")
    out += _aligned(
        ["audience", "network", "start", "end", "growth"],
        [_audience_row(a) for a in report.audiences],
        right=range(2, 5),
    )
    out.append("")
    out += findings(report)
    return "\n".join(out)


def _audience_row(a: Audience) -> list[str]:
    start = f"{number(a.start)} ({a.start_day})" if a.start is not None else NA
    end = f"{number(a.end)} ({a.end_day})" if a.end is not None else NA
    growth = NA
    if a.growth is not None:
        growth = f"{a.growth:+,}" + (f" ({a.growth_pct:+.1f}%)" if a.growth_pct is not None else "")
    return [a.channel, a.network, start, end, growth]


def _aligned(header: list[str], rows: list[list[str]], right: range) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), *(line(r) for r in rows)]


def findings(report: Report) -> list[str]:
    """The plain lines under the table: each channel's best category and slot (or why none can be named), the
    channels without post results, the commercial posts' share next to their results, and whether the medians are
    estimates."""
    lines = []
    by_channel: dict[str, list[Best]] = {}
    for best in report.best:
        by_channel.setdefault(best.channel, []).append(best)
    for channel, bests in by_channel.items():
        lines.append(f"{channel}: " + "; ".join(_best(b, report.min_sample) for b in bests))
    for n in report.no_results:
        lines.append(f"{n.channel}: post results are not available ({n.reason}); audience only")
    lines.append(_commercial(report))
    lines += caveats(report)
    return lines


def _best(best: Best, min_sample: int) -> str:
    if best.key is None and best.n == 0:
        return f"best {best.what}: no posts with results to say"
    if best.key is None:
        return f"best {best.what}: too few posts to say (n < {min_sample}; largest sample {best.n})"
    return f"best {best.what} {best.key} (median {number(best.median, 2)} per 1,000 followers, n={best.n})"


def _side(side: Side) -> str:
    return (
        f"median engagement {number(side.engagement.median, 2)} per 1,000 followers (n={side.engagement.n}), "
        f"median views {number(side.views.median)} (n={side.views.n})"
    )


def _commercial(report: Report) -> str:
    mix = report.commercial
    total = mix.commercial.posts + mix.other.posts
    if mix.share is None:
        return "commercial posts: none published in this period"
    return (
        f"commercial posts: {mix.commercial.posts:,} of {total:,} ({mix.share * 100:.0f}%): {_side(mix.commercial)}; "
        f"the others: {_side(mix.other)}"
    )


def format_csv(report: Report) -> str:
    """One row per group after a header row (``group``: the group's label; ``channel``: its channel, when it has
    one); a figure no delivery has is an empty cell; ``<metric>_sampled``: how many posts its median is of."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["group", "channel", "posts", "measured"]
    for m in (*_METRICS, "engagement_per_1000"):
        header += [f"{m}_n", f"{m}_median", f"{m}_sampled"] + ([f"{m}_total"] if m in _METRICS else [])
    writer.writerow(header)
    for g in report.groups:
        channel = g.key if report.by == "channel" else g.channel or ""
        row: list[object] = [g.key, channel, g.posts, g.measured]
        for m in (*_METRICS, "engagement"):
            metric: Metric = getattr(g, m)
            row += [metric.n, "" if metric.median is None else metric.median, metric.sampled]
            if m in _METRICS:
                row.append("" if metric.total is None else metric.total)
        writer.writerow(row)
    return buffer.getvalue()
