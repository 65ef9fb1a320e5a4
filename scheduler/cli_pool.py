"""``smm pool``: the evergreen pool (the posts that fill empty slots), and ``smm pool remove ID``."""

from __future__ import annotations

import click

from scheduler.cli_context import Context, SmmGroup
from scheduler.cli_output import emit_json, local_time, one_line
from scheduler.errors import NoDatabaseYet, NotFound
from scheduler.log import configure_logging, escape_for_terminal


@click.group(cls=SmmGroup, invoke_without_command=True)
@click.option("--channel", metavar="NAME", help="Only this channel's pool.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of the pool's posts.")
@click.pass_context
def pool(ctx: click.Context, channel: str | None, as_json: bool) -> None:
    """List the evergreen pool: each post's uses and when it may next fill a slot, per channel."""
    if ctx.invoked_subcommand is not None:
        return
    from scheduler.cli import now
    from scheduler.evergreen import list_pool

    obj = ctx.find_object(Context)
    assert obj is not None
    configure_logging(obj.verbose, quiet=not obj.verbose)  # as SmmCommand does: this group runs by itself
    try:
        db = obj.existing_db
    except NoDatabaseYet:
        db = None
    entries = list_pool(obj.config, db, now(), channel)
    if as_json:
        emit_json(entries)
        return
    if not entries:
        click.echo("the evergreen pool is empty" + (f" on channel {channel}" if channel else ""))
        return
    rows = [("POST", "CHANNEL", "USES", "LAST USED", "QUEUED FILL", "MAY BE USED", "TEXT")]
    for e in entries:
        rows.append(
            (
                str(e["post_id"]),
                e["channel"],
                str(e["uses"]),
                local_time(e["last_published"], e["channel"], obj.config) if e["last_published"] else "never",
                local_time(e["queued_fill"], e["channel"], obj.config),
                local_time(e["next_use"], e["channel"], obj.config) if e["next_use"] else "now",
                escape_for_terminal(one_line(e["text"], 50)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        click.echo("  ".join(f"{c:<{widths[j]}}" for j, c in enumerate(r[:6])) + "  " + r[6])


@pool.command("remove")
@click.argument("post_id", type=int)
@click.pass_obj
def pool_remove(obj: Context, post_id: int) -> None:
    """Take a post out of every channel's evergreen pool (what it already filled stays queued)."""
    from scheduler.cli import now
    from scheduler.evergreen import remove_from_pool

    try:
        db = obj.existing_db
    except NoDatabaseYet as exc:
        raise NotFound(f"post {post_id} is in no evergreen pool: {exc}") from None
    channels = remove_from_pool(db, post_id, now())
    click.echo(f"removed post {post_id} from the evergreen pool of {', '.join(channels)}")
