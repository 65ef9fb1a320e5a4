"""``smm comments``: the comments the daemon's comment watch stored, newest first (:mod:`scheduler.comments`)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from scheduler.cli_context import Context, SmmCommand
from scheduler.cli_output import emit_json, local_time
from scheduler.errors import NoDatabaseYet
from scheduler.log import escape_for_terminal, redact


@click.command("comments", cls=SmmCommand)
@click.option("--since", metavar="WHEN", help="Only comments written since WHEN: a duration (2d, 12h) or ISO 8601.")
@click.option("--channel", metavar="NAME", help="Only this channel.")
@click.option("--all", "seen_too", is_flag=True, help="Include comments shown before.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of comments.")
@click.pass_obj
def comments(obj: Context, since: str | None, channel: str | None, seen_too: bool, as_json: bool) -> None:
    """List new comments on published posts, newest first; once listed, they are no longer new."""
    from scheduler.comments import comment_view, known_channel, list_comments, short
    from scheduler.intake import read_since

    now = datetime.now(UTC)
    config = obj.config
    after = read_since(since, config.timezone, now, "--since") if since is not None else None
    known_channel(channel, config.channel_names)
    try:
        db = obj.existing_db
    except NoDatabaseYet as exc:
        click.echo("[]" if as_json else f"no comments ({exc})")
        return
    found = list_comments(db, now, since=after, channel=channel, seen_too=seen_too)
    if as_json:
        emit_json([comment_view(c) for c in found])
        return
    if not found:
        click.echo("no new comments" if not seen_too else "no comments")
        return
    for c in found:
        head = f"post {c.post_id}  {c.channel} ({c.network})  {local_time(_iso(c.written_at), c.channel, config)}"
        click.echo(escape_for_terminal(f"{head}  {c.author or 'someone'}{'' if not c.shown else '  (seen)'}"))
        click.echo(escape_for_terminal(redact(f"  {short(c.text)}")))
        if c.url:
            click.echo(escape_for_terminal(f"  {c.url}"))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()
