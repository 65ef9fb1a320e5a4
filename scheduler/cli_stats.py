"""``smm stats ID``: a post's results on each channel, read back by the daemon (parse, call
:func:`scheduler.stats.post_stats`, print)."""

from __future__ import annotations

import click

from scheduler.cli_context import Context, SmmCommand
from scheduler.cli_output import emit_json, local_time, one_line
from scheduler.log import escape_for_terminal, redact

FIGURES = ("views", "likes", "reposts", "comments")


@click.command(cls=SmmCommand)
@click.argument("post_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def stats(obj: Context, post_id: int, as_json: bool) -> None:
    """Show a post's results on each channel, with the time of each reading."""
    from scheduler.stats import post_stats

    view = post_stats(obj.db_of_post(post_id), post_id)
    if as_json:
        emit_json(view)
        return
    click.echo(f"results of post {view['post_id']}")
    for d in view["deliveries"]:
        head = f"  {d['channel']} ({d['network']}): {d['status']}"
        if d["published_at"]:
            head += f" {local_time(d['published_at'], d['channel'], obj.config)}"
        if d["remote_url"]:
            head += f"  {d['remote_url']}"
        click.echo(escape_for_terminal(head))
        if d["results"] == "waiting":
            click.echo("    no reading yet")
        elif d["results"] == "not_published":
            click.echo("    not published: nothing to read")
        for r in d["readings"]:
            line = f"    {r['age_label']:>4} reading, {local_time(r['read_at'], d['channel'], obj.config)}: "
            if r["error"]:
                line += f"failed ({redact(one_line(r['error'], 200))}); read again at the next age"
            elif r["gone"]:
                line += "the post is gone from the network"
            else:
                line += "  ".join(f"{name} {'-' if r[name] is None else r[name]}" for name in FIGURES)  # type: ignore[literal-required]
            click.echo(escape_for_terminal(line))
        if d["results"] == "not_available":
            click.echo(escape_for_terminal(f"    post results are not available: {d['note']}"))
