"""``smm report``: parse the options, build the report (:mod:`scheduler.report`), print it as text, JSON or CSV,
or write it as a page (``--html``, :mod:`scheduler.report_html`)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from scheduler.cli_context import Context, SmmCommand
from scheduler.cli_output import emit_json
from scheduler.errors import InputError

_GROUPINGS = ("category", "channel", "slot", "weekday", "hour", "campaign")  # scheduler.report.GROUPINGS


@click.command("report", cls=SmmCommand)
@click.option(
    "--since",
    metavar="WHEN",
    help="Start of the period: a duration back from now (30d) or ISO 8601 (default: 30 days before --until).",
)
@click.option(
    "--until", metavar="WHEN", help="End of the period, excluded: a duration back from now or ISO 8601 (default: now)."
)
@click.option("--channel", "channels", multiple=True, metavar="NAME", help="Only this channel (repeatable).")
@click.option("--by", type=click.Choice(_GROUPINGS), default="category", show_default=True, help="Group by.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV, one row per group.")
@click.option(
    "--html", metavar="FILE", help="Write the report as one self-contained page: charts, best posts, calendar."
)
@click.pass_obj
def report(
    obj: Context,
    since: str | None,
    until: str | None,
    channels: tuple[str, ...],
    by: str,
    as_json: bool,
    as_csv: bool,
    html: str | None,
) -> None:
    """What the posts of a period achieved, per group, and what the numbers say."""
    from scheduler.intake import pick_channels, read_since
    from scheduler.report import Period, build_report, report_dict
    from scheduler.report_text import format_csv, format_text

    if as_json and as_csv:
        raise InputError("--json and --csv cannot be used together")
    if html is not None and (as_json or as_csv or by != "category"):
        raise InputError("--html writes a page of its own, by category: leave out --json, --csv and --by")
    picked = pick_channels(obj.config, channels)
    zone = picked[0].timezone if len(picked) == 1 else obj.config.timezone
    now = datetime.now(UTC)
    start = read_since(since, zone, now, "--since") if since else None
    end = read_since(until, zone, now, "--until") if until else None
    period = Period.of(start, end, now)
    if html is not None:
        from scheduler.report_html import target, write_page

        path = target(html)
        write_page(obj.config, obj.existing_db, path, period, picked, now)
        click.echo(f"wrote {path}")
        return
    result = build_report(obj.existing_db, period, picked, by, now=now)
    if as_json:
        emit_json(report_dict(result))
    elif as_csv:
        click.echo(format_csv(result), nl=False)
    else:
        click.echo(format_text(result, zone))
