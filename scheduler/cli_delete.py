"""``smm delete``: parse, ask :func:`scheduler.takedown.request_deletion`, print."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from scheduler.cli_context import Context, SmmCommand
from scheduler.cli_output import print_post


@click.command("delete", cls=SmmCommand)
@click.argument("post_id", type=int)
@click.option("--channel", metavar="NAME", help="Only this channel's delivery.")
@click.pass_obj
def delete(obj: Context, post_id: int, channel: str | None) -> None:
    """Delete a published post from its networks (and cancel what has not gone out)."""
    from scheduler.takedown import request_deletion

    request = request_deletion(obj.config, obj.db_of_post(post_id), post_id, datetime.now(UTC), channel)
    print_post(request.view, obj.config, "deleting")
    for line in request.lines:
        click.echo(f"  {line}")
