"""The ``smm`` command: parse, call one service function, print.

Errors print as one line on stderr: exit code 2 for bad input or config (nothing was written), 1 when the
database or the daemon cannot work. Heavy modules (the daemon, network clients, Alembic) load only in the
commands that use them, so ``smm add`` and ``smm queue`` start fast.
"""

from __future__ import annotations

import gc
import re
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from scheduler import __version__
from scheduler.cli_context import CONFIG_HELP, VERBOSE_HELP, Context, RootGroup
from scheduler.cli_output import describe_entry, emit_json, fail, local_time, one_line, print_post, when_of
from scheduler.config import CATEGORIES, disabled_channels
from scheduler.errors import NoDatabaseYet, SmmError
from scheduler.log import configure_logging, escape_for_terminal, kept_off_terminal, redact
from scheduler.views import plural


def now() -> datetime:
    return datetime.now(UTC)


SHORT_COMMANDS = frozenset({"add", "show", "cancel", "retry", "resolve", "reschedule", "delete", "stats"})
"""Commands that touch one post and end: they run with the cyclic garbage collector paused."""


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="smm")
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Queue social media posts and publish them on a steady cadence.

    --config and -v go before or after the command's name.
    """
    if ctx.invoked_subcommand not in SHORT_COMMANDS:
        gc.enable()  # paused while smm started (scheduler/__main__.py)
    ctx.obj = Context(config_path, verbose)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("text", required=False, default="")
@click.option("--channel", "channels", multiple=True, metavar="NAME", help="Target channel (repeatable; default: all).")
@click.option("--media", multiple=True, metavar="PATH", help="An image to attach (repeatable).")
@click.option("--link", metavar="URL", help="A link to publish with the post.")
@click.option("--at", "at", metavar="WHEN", help="ISO 8601 time; without an offset, in each channel's time zone.")
@click.option("--now", "now_", is_flag=True, help="Publish as soon as possible.")
@click.option("--next", "next_", is_flag=True, help="Take the next slot, pushing the queue back one slot.")
@click.option("--category", type=click.Choice(CATEGORIES), default="educational", show_default=True)
@click.option("--campaign", metavar="NAME", help="utm_campaign of the post's links (default: the channel's).")
@click.option("--utm-content", metavar="VALUE", help="utm_content of the post's links.")
@click.option(
    "--text-for",
    "text_for",
    multiple=True,
    metavar="NETWORK=TEXT",
    help="The text on one network's channels (repeatable).",
)
@click.option("--force", is_flag=True, help="Place the post even where it breaks the content mix rule.")
@click.option("--evergreen", is_flag=True, help="Put it into each channel's evergreen pool instead of the queue.")
@click.option("--expire-at", metavar="WHEN", help="Delete the post from every channel at this time (as --at).")
@click.option("--json", "as_json", is_flag=True, help="Print the post as JSON.")
@click.pass_obj
def add(
    obj: Context,
    text: str,
    channels: tuple[str, ...],
    media: tuple[str, ...],
    link: str | None,
    at: str | None,
    now_: bool,
    next_: bool,
    category: str,
    campaign: str | None,
    utm_content: str | None,
    text_for: tuple[str, ...],
    force: bool,
    evergreen: bool,
    expire_at: str | None,
    as_json: bool,
) -> None:
    """Queue a post: into each channel's next free slot, or at a given time (or into the evergreen pool)."""
    from scheduler.intake import NewPost, add_post, parse_variants

    request = NewPost(
        text=text,
        channels=channels,
        media=[Path(m) for m in media],
        link=link,
        at=at,
        now=now_,
        next=next_,
        category=category,
        campaign=campaign,
        utm_content=utm_content,
        variants=parse_variants(text_for),
        force=force,
        evergreen=evergreen,
        expire_at=expire_at,
    )
    view = add_post(obj.config, obj.db, request, now())
    pool = view.get("pool", [])
    if as_json:
        emit_json(view)
    elif pool:
        click.echo(f"added post {view['id']} to the evergreen pool of {', '.join(pool)}")
    else:
        print_post(view, obj.config, "queued")
    for channel, reason in disabled_channels(
        obj.config, dict.fromkeys([*pool, *(d["channel"] for d in view["deliveries"])])
    ).items():
        click.echo(redact(f"smm: warning: channel {channel!r} is disabled ({reason}); the post waits there"), err=True)


@cli.command()
@click.option("--all", "include_all", is_flag=True, help="Include published, failed and cancelled deliveries.")
@click.option("--channel", metavar="NAME", help="Only this channel.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="At most N posts (0: all).")
@click.option("--mix", "every_mix", is_flag=True, help="Show every channel's content mix (default: those with offers).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of posts.")
@click.pass_obj
def queue(obj: Context, include_all: bool, channel: str | None, limit: int, every_mix: bool, as_json: bool) -> None:
    """List upcoming deliveries by time, and the content mix of channels with commercial posts."""
    from scheduler.service import list_queue, mix_lines, queue_notes

    try:
        db = obj.existing_db
    except NoDatabaseYet as exc:
        click.echo("[]" if as_json else f"the queue is empty ({exc})")
        return
    posts, total = list_queue(obj.config, db, channel=channel, include_all=include_all, limit=limit)
    if as_json:
        emit_json(posts)
        return
    for note in queue_notes(obj.config, db):
        click.echo(redact(f"! {note}"))
    mixes = mix_lines(obj.config, db, now(), channel=channel, every=every_mix)
    if not posts:
        click.echo("the queue is empty" if not include_all else "no posts")
        return
    rows = [("POST", "CHANNEL", "STATUS", "WHEN", "TRIES", "TEXT")]
    notes: dict[int, str] = {}
    for view in posts:
        for d in view["deliveries"]:
            text = view["text"] or (view["link"] or "") or f"[{len(view['media'])} media]"
            if d["pool_use"] is not None:
                text = f"[evergreen, use {d['pool_use']}] {text}"
            rows.append(
                (
                    str(view["id"]),
                    d["channel"],
                    d["status"],
                    local_time(when_of(d), d["channel"], obj.config),
                    str(d["attempts"]),
                    escape_for_terminal(one_line(text, 50)),
                )
            )
            if d["note"] and d["status"] == "queued":
                notes[len(rows) - 1] = d["note"]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        click.echo("  ".join(f"{c:<{widths[j]}}" for j, c in enumerate(r[:5])) + "  " + r[5])
        if i in notes:
            click.echo(f"{'':<{widths[0]}}  -> {escape_for_terminal(one_line(notes[i], 160))}")
    if limit and total > len(posts):
        click.echo(f"... {plural(total - len(posts), 'more post', 'more posts')} (use --limit 0 to list all)")
    if mixes:
        click.echo("content mix of the upcoming queue:")
        for line in mixes:
            click.echo(f"  {line}")


@cli.command()
@click.argument("post_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the post as JSON.")
@click.pass_obj
def show(obj: Context, post_id: int, as_json: bool) -> None:
    """Show a post, its deliveries and their attempts."""
    from scheduler.service import post_extras, show_post

    view = show_post(obj.db_of_post(post_id), post_id)
    if as_json:
        emit_json(view)
        return
    extras = post_extras(obj.existing_db, post_id)
    created = local_time(view["created_at"], "", obj.config)
    click.echo(f"post {view['id']} ({view['category']}), created {created}")
    if view["text"]:
        click.echo("  text: " + _indented(view["text"]))
    for network, variant in sorted(extras["variants"].items()):
        click.echo(f"  text for {network}: " + _indented(variant))
    if view["link"]:
        click.echo(escape_for_terminal(f"  link: {view['link']}"))
    for key in ("campaign", "utm_content"):
        if extras[key]:
            click.echo(escape_for_terminal(f"  {key}: {extras[key]}"))
    for m in view["media"]:
        size = f" {m['width']}x{m['height']}" if m.get("width") else ""
        click.echo(escape_for_terminal(f"  media: {m['name']} ({m['mime']}{size}, {m['size']} bytes)"))
    if "pool" in view:
        from scheduler.evergreen import list_pool

        for entry in list_pool(obj.config, obj.existing_db, now(), post_id=post_id):
            click.echo(f"  in the evergreen pool of {entry['channel']}: {describe_entry(entry, obj.config)}")
    if view["deliveries"] or "pool" not in view:
        print_post(view, obj.config, "deliveries of")
    for d in view["deliveries"]:
        for a in d["history"]:
            started = local_time(a["started_at"], d["channel"], obj.config)
            kind = "delete attempt" if a["kind"] == "delete" else "attempt"
            line = f"  {d['channel']} {kind} {a['attempt']}: {started} -> {a['outcome'] or 'open'}"
            click.echo(escape_for_terminal(line + (f": {redact(one_line(a['error'], 300))}" if a["error"] else "")))


def _indented(text: str) -> str:
    """A post's text for ``smm show``: its lines indented under the label, each escaped for the terminal."""
    return "\n        ".join(escape_for_terminal(line) for line in text.split("\n"))


@cli.command()
@click.argument("post_id", type=int)
@click.option("--channel", metavar="NAME", help="Only this channel's delivery.")
@click.pass_obj
def cancel(obj: Context, post_id: int, channel: str | None) -> None:
    """Cancel a post's deliveries that have not gone out."""
    from scheduler.service import cancel_with_notes

    view, notes = cancel_with_notes(obj.config, obj.db_of_post(post_id), post_id, now(), channel)
    print_post(view, obj.config, "cancelled")
    for note in notes:
        click.echo(f"! {note}")


@cli.command()
@click.argument("post_id", type=int)
@click.option("--at", "at", metavar="WHEN", help="ISO 8601 time; without an offset, in each channel's time zone.")
@click.option("--now", "now_", is_flag=True, help="Publish as soon as possible.")
@click.option("--force", is_flag=True, help="Move it even where it breaks the content mix rule.")
@click.pass_obj
def reschedule(obj: Context, post_id: int, at: str | None, now_: bool, force: bool) -> None:
    """Move a post's queued deliveries to another time."""
    from scheduler.service import reschedule_post

    view = reschedule_post(obj.config, obj.db_of_post(post_id), post_id, at, now(), to_now=now_, force=force)
    print_post(view, obj.config, "rescheduled")


@cli.command()
@click.argument("post_id", type=int)
@click.pass_obj
def retry(obj: Context, post_id: int) -> None:
    """Re-queue a post's failed or unknown deliveries, due now."""
    from scheduler.service import retry_post

    print_post(retry_post(obj.config, obj.db_of_post(post_id), post_id, now()), obj.config, "re-queued")


@cli.command()
@click.argument("post_id", type=int)
@click.option("--published", "published", is_flag=True, help="It did go out (optionally give its URL).")
@click.option("--url", metavar="URL", help="The published post's URL (with --published).")
@click.option("--retry", "again", is_flag=True, help="It did not go out: send it again.")
@click.option("--channel", metavar="NAME", help="Only this channel's delivery.")
@click.pass_obj
def resolve(obj: Context, post_id: int, published: bool, url: str | None, again: bool, channel: str | None) -> None:
    """Settle an unknown delivery after checking the channel by hand."""
    from scheduler.errors import InputError
    from scheduler.service import resolve_post

    if published == again:
        raise InputError("give exactly one of --published and --retry")
    if url and not published:
        raise InputError("--url goes with --published")
    view = resolve_post(
        obj.config, obj.db_of_post(post_id), post_id, now(), published=published, url=url, channel=channel
    )
    print_post(view, obj.config, "resolved")


@cli.command()
@click.option("--channel", metavar="NAME", help="Only this channel.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=20, show_default=True, help="At most N deliveries (0: all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of deliveries.")
@click.pass_obj
def plan(obj: Context, channel: str | None, limit: int, as_json: bool) -> None:
    """Show the next deliveries exactly as each channel will receive them; sends nothing."""
    from scheduler.plan import format_plan
    from scheduler.plan import plan as make_plan

    try:
        db = obj.existing_db
    except NoDatabaseYet as exc:
        click.echo("[]" if as_json else f"nothing is queued ({exc})")
        return
    items = make_plan(obj.config, db, channel=channel, limit=limit or None)
    if as_json:
        emit_json(items)
    else:
        click.echo("\n".join(format_plan(items, obj.config)))


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would be queued; write nothing.")
@click.option("--force", is_flag=True, help="Import commercial rows even where they break the content mix rule.")
@click.pass_obj
def import_csv(obj: Context, file: Path, dry_run: bool, force: bool) -> None:
    """Queue every row of a CSV file (all rows valid, or nothing is written).

    Columns: text, channels (";" or "," between names), at, media (";" between paths), link, category, campaign,
    utm_content, expire_at, text_for_<network>, evergreen.
    """
    from contextlib import nullcontext

    from scheduler.importer import MAX_REPORTED, ImportRejected, count_rows
    from scheduler.importer import import_csv as run_import

    database = None
    if dry_run:
        try:
            database = obj.existing_db
        except NoDatabaseYet:
            database = None
    rows = count_rows(file)
    shown = rows > 0 and (sys.stderr.isatty() or rows >= 10_000)
    bar: Any = (
        click.progressbar(length=rows * (1 if dry_run else 2), label=f"importing {file.name}", file=sys.stderr)
        if shown
        else nullcontext()
    )
    try:
        with bar as progress:
            result = run_import(
                obj.config,
                database if dry_run else obj.db,
                file,
                now(),
                dry_run=dry_run,
                force=force,
                progress=progress.update if progress is not None else None,
            )
    except ImportRejected as exc:
        for line in exc.errors[:MAX_REPORTED]:
            click.echo(f"smm: error: {redact(line)}", err=True)
        if len(exc.errors) > MAX_REPORTED:
            more = len(exc.errors) - MAX_REPORTED
            click.echo(f"smm: error: ... and {more} more invalid rows; nothing was imported", err=True)
        sys.exit(2)
    click.echo("\n".join(result.lines(file.name, detail=dry_run)))


@cli.command("import-feed")
@click.argument("source", required=False, metavar="URL|FILE")
@click.option("--feed", "feed_name", metavar="NAME", help="A [[feeds]] entry of the config (its URL by default).")
@click.option("--mark-seen", is_flag=True, help="Remember the feed's current entries without queueing them.")
@click.pass_obj
def import_feed(obj: Context, source: str | None, feed_name: str | None, mark_seen: bool) -> None:
    """Queue each new entry of an RSS or Atom feed, once (as the feed's template and link)."""
    from scheduler.feeds import import_feed as run_import
    from scheduler.feeds import resolve

    resolve(obj.config, source, feed_name)  # bad arguments fail before a database is created
    result = run_import(obj.config, obj.db, source, now(), name=feed_name, mark_seen=mark_seen)
    click.echo("\n".join(escape_for_terminal(line) for line in result.lines()))


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Context) -> None:
    """Apply pending migrations."""
    from scheduler.db import Database
    from scheduler.migrate import upgrade

    database = Database(obj.config.database_url)
    try:
        before, after = upgrade(database)
    finally:
        database.dispose()
    if before == after:
        click.echo(f"database {database.where} is up to date (schema {after})")
    else:
        click.echo(f"database {database.where} upgraded from schema {before or 'none'} to {after}")


@cli.command()
@click.option("--once", is_flag=True, help="Publish everything due now, then exit.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def run(obj: Context, once: bool, log_format: str) -> None:
    """Run the daemon: publish queued posts when they are due."""
    configure_logging(obj.verbose, log_format)
    from scheduler.daemon import run_daemon

    sys.exit(run_daemon(obj.config_path, once=once))


@cli.command()
@click.pass_obj
def doctor(obj: Context) -> None:
    """Check the config and every channel's credentials and rights."""
    from scheduler.doctor import run_doctor

    sys.exit(run_doctor(obj.config, lambda: obj.existing_db))


@cli.group()
def alerts() -> None:
    """Alerts to the operator (the [alerts] destinations)."""


@alerts.command("test")
@click.pass_obj
def alerts_test(obj: Context) -> None:
    """Send a test message to every alert destination; exit 0 only if each one got it."""
    from scheduler.alerts import send_test_alerts

    destinations = obj.config.alerts.destinations
    if not destinations:
        fail(f"{obj.config.path}: no alert destinations: add an [[alerts.destinations]] table", 2)
    # Each destination's line says why it failed: apprise's own records only with -v.
    with nullcontext() if obj.verbose else kept_off_terminal("apprise"):
        results = send_test_alerts(obj.config.alerts)
    width = max(len(name) for name, _ in results)
    for name, error in results:
        click.echo(f"{name:<{width}}  {'ok' if error is None else escape_for_terminal(redact(error))}")
    sys.exit(0 if all(error is None for _, error in results) else 1)


cli.lazy["comments"] = "scheduler.cli_comments:comments"
cli.lazy["delete"] = "scheduler.cli_delete:delete"
cli.lazy["pool"] = "scheduler.cli_pool:pool"
cli.lazy["report"] = "scheduler.cli_report:report"
cli.lazy["stats"] = "scheduler.cli_stats:stats"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``smm`` console script."""
    try:
        _main(argv)
    finally:
        if argv is None:
            # The process exits next: its final garbage collection would walk every object the libraries made
            # (a large share of a short command's time) to free nothing that exit does not free. Everything
            # written is committed and flushed by now.
            gc.freeze()


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="smm", standalone_mode=False)
    except SmmError as exc:
        fail(str(exc), exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted", 1)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        fail(" ".join(exc.format_message().split()) + hint, 2)
    except click.ClickException as exc:
        fail(" ".join(exc.format_message().split()), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if any(re.fullmatch(r"-v+|--verbose", arg) for arg in (sys.argv if argv is None else argv)):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        fail(f"unexpected {type(exc).__name__}: {first} (run with -v for the traceback)", 1)
