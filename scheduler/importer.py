"""``smm import FILE.csv``: many posts at once, all validated before anything is written, in one transaction.

Columns (a header row names them, in any order; only ``text``, ``media`` or ``link`` is needed): ``text``,
``channels`` (names separated by ``;`` or ``,``; empty: every channel), ``at`` (as ``smm add --at``; empty: the
cadence), ``media`` (paths separated by ``;``, relative to the CSV's folder), ``link``, ``category``, ``campaign``,
``utm_content``, ``expire_at`` (as ``smm add --expire-at``; empty: never), ``text_for_<network>`` and
``evergreen`` (``true``/``yes``/``1``: into each channel's evergreen pool instead of the queue). The delimiter is
``,``, ``;`` or a tab, read from the header line.

Every row is checked as ``smm add`` checks a post (:func:`scheduler.intake.check_post`, messages naming the
columns); every bad row is reported with its line number and nothing is written unless all rows are good. Rows
without ``at`` take slots in file order, after each channel's queue and around the times the file and the queue
already take, on each channel's :class:`~scheduler.placement.Planner`; then posts and deliveries go in through
:func:`scheduler.timeline.insert_posts` in one transaction. The media are copied beside the store before it
(other writers would wait on a slow copy) and put in place within it. Commercial rows that break a channel's
content mix rule are errors too (reorder the file, give them an ``at``, or ``--force``).
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from adapters import ADAPTERS
from scheduler import intake, timeline
from scheduler.config import ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.expiry import expiry_problems
from scheduler.media import MediaStore, StoredMedia, inspect
from scheduler.placement import Planner, local
from scheduler.render import PostContent
from scheduler.userfile import read_user_file
from scheduler.views import plural

COLUMNS = ("text", "channels", "at", "media", "link", "category", "campaign", "utm_content", "evergreen", "expire_at")
FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}
"""The values of a yes/no column (case aside)."""
VARIANT_PREFIX = "text_for_"
MAX_REPORTED = 50
SUMMARY_CHANNELS = 20
"""Channels the import's summary lists one per line; the rest are counted in one line."""


class ImportRejected(InputError):
    """Some rows are invalid; nothing was written. ``errors`` has one line per bad row."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} invalid rows; nothing was imported")


@dataclass
class Row:
    """A valid row: its line, content, channels, explicit times (per channel) and media files."""

    line: int
    content: PostContent
    channels: list[ChannelConfig]
    at: dict[str, datetime] | None
    media: list[Path]
    due: dict[str, datetime] = field(default_factory=dict)
    evergreen: bool = False
    expiry: dict[str, datetime] | None = None


@dataclass
class ImportResult:
    """What was (or, with ``dry_run``, would be) imported."""

    rows: list[Row]
    dry_run: bool

    @property
    def deliveries(self) -> int:
        return sum(len(r.channels) for r in self.rows if not r.evergreen)

    def lines(self, name: str, *, detail: bool) -> list[str]:
        """The report: each delivery (``detail``), the totals, then a line per channel (``SUMMARY_CHANNELS`` of
        them; the rest in one line)."""
        out: list[str] = []
        if detail:
            for row in self.rows:
                text = " ".join(row.content.text.split())
                text = text if len(text) <= 50 else text[:49] + "…"
                for channel in row.channels:
                    when = "evergreen pool" if row.evergreen else local(row.due[channel.name], channel)
                    out.append(f"line {row.line}: {channel.name}  {when}  {text}")
        spans: dict[str, list[datetime]] = {}
        zones: dict[str, ChannelConfig] = {}
        for row in self.rows:
            for channel in row.channels if not row.evergreen else ():
                spans.setdefault(channel.name, []).append(row.due[channel.name])
                zones[channel.name] = channel
        verb = "would import" if self.dry_run else "imported"
        total = f"{plural(len(self.rows), 'post', 'posts')} ({plural(self.deliveries, 'delivery', 'deliveries')})"
        out.append(f"{verb} {total} from {name}")
        if pooled := sum(r.evergreen for r in self.rows):
            out.append(f"  evergreen pool: {plural(pooled, 'post', 'posts')} (no delivery until one fills a slot)")
        listed = sorted(spans.items())
        for channel_name, times in listed[:SUMMARY_CHANNELS]:
            first, last = local(min(times), zones[channel_name]), local(max(times), zones[channel_name])
            span = first if first == last else f"{first} to {last}"
            out.append(f"  {channel_name}: {plural(len(times), 'delivery', 'deliveries')}, {span}")
        if rest := listed[SUMMARY_CHANNELS:]:
            deliveries = plural(sum(len(times) for _, times in rest), "delivery", "deliveries")
            out.append(f"  ... and {plural(len(rest), 'more channel', 'more channels')} ({deliveries})")
        if self.dry_run:
            out.append("nothing was written (--dry-run)")
        return out


def count_rows(path: Path) -> int:
    """Roughly how many rows ``path`` has (its lines less the header), for a progress bar."""
    try:
        return max(0, read_user_file(path, what="a CSV file", error=InputError).count(b"\n") - 1)
    except InputError:  # the import says why
        return 0


def import_csv(
    config: Config,
    db: Database | None,
    path: Path,
    now: datetime,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate every row of ``path``, place them, and (unless ``dry_run``) write them in one transaction.

    ``db`` may be None for a dry run on a database that does not exist yet. Raises :class:`ImportRejected` with
    one message per bad row, or InputError when the file itself cannot be read.
    """
    # Hundreds of thousands of small objects that live until the end: the cyclic collector would walk them again
    # and again (a third of the validation time) and find nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(config, db, path, now, dry_run=dry_run, force=force, tick=progress or (lambda n: None))
    finally:
        if collecting:
            gc.enable()


def _import(
    config: Config,
    db: Database | None,
    path: Path,
    now: datetime,
    *,
    dry_run: bool,
    force: bool,
    tick: Callable[[int], None],
) -> ImportResult:
    rows = _validate(config, path, now, tick)
    if not rows:
        raise InputError(f"{path}: no rows to import")
    if dry_run or db is None:
        if db is None:
            _place(None, rows, now, force, path)
        else:
            with db.read_core() as conn:
                _place(conn, rows, now, force, path)
        return ImportResult(rows, dry_run=True)
    store = MediaStore(config.media_dir)
    checked = {p: m for row in rows for p, m in zip(row.media, row.content.media, strict=True)}
    if checked:
        store.sweep(now)
    # Copying the media (hundreds of megabytes, maybe) is done before the write transaction, which would keep
    # every other writer waiting meanwhile; the copies are put in place within it.
    with store.staging():
        stored = {media_path: store.stage(media_path, item).as_dict() for media_path, item in checked.items()}
        with db.write_core() as conn:
            names = sorted({c.name for row in rows for c in row.channels})
            for name in names:
                timeline.lock_channel(conn, name)
            _place(conn, rows, now, force, path)
            timeline.insert_posts(
                conn,
                [
                    timeline.NewPostRow(
                        row.content.text,
                        row.content.link,
                        row.content.category,
                        [stored[p] for p in row.media],
                        _plan_of(row),
                        row.content.campaign,
                        row.content.utm_content,
                        row.content.variants,
                        [c.name for c in row.channels] if row.evergreen else (),
                        row.expiry,
                    )
                    for row in rows
                ],
                now,
                tick,
            )
            store.commit()
    db.wake_daemon()
    return ImportResult(rows, dry_run=False)


def _plan_of(row: Row) -> list[tuple[str, str, datetime, bool]]:
    """A row's deliveries ``(channel, network, due_at, slotted)``: none for an evergreen row."""
    if row.evergreen:
        return []
    return [(c.name, c.network, row.due[c.name], row.at is None) for c in row.channels]


# -- reading and validating ---------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    data = read_user_file(path, what="a CSV file", error=InputError)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (save the file as UTF-8)") from None


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on; a record that is not CSV stops the import (its line named).

    The reader is strict: without it a quote left open takes every following line, up to the next quote or the
    end of the file, into one field of one post.
    """
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{path}:{line}: {_csv_problem(str(exc))}") from None
        yield line, record
        line = reader.line_num + 1


def _csv_problem(message: str) -> str:
    """What the csv module's complaint means for the person who wrote the file."""
    if "field larger than field limit" in message:
        return f"a field is longer than {csv.field_size_limit():,} characters, the most a field may hold"
    if "unexpected end of data" in message:
        return 'a quoted field starts on this line and is never closed (a " is missing)'
    if "expected after" in message:
        return 'a quoted field is closed by a " followed by more text (a " is missing, or one inside should be doubled)'
    return f"not a valid CSV record ({message})"


def _header(path: Path, record: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, raw in enumerate(record):
        name = raw.strip().lower()
        known = name in COLUMNS or (name.startswith(VARIANT_PREFIX) and name[len(VARIANT_PREFIX) :] in ADAPTERS)
        if not known:
            allowed = ", ".join((*COLUMNS, f"{VARIANT_PREFIX}<{'|'.join(ADAPTERS)}>"))
            raise InputError(f"{path}:1: unknown column {raw!r}; the columns are {allowed}")
        if name in columns:
            raise InputError(f"{path}:1: the column {name!r} is given twice")
        columns[name] = index
    if not {"text", "media", "link"} & set(columns):
        raise InputError(f"{path}:1: the header names no text, media or link column")
    return columns


class _Fields:
    """Reads the known columns of a record by position (missing trailing fields are empty)."""

    def __init__(self, columns: dict[str, int]) -> None:
        self.positions = [columns.get(name, -1) for name in COLUMNS]

    def read(self, record: list[str]) -> dict[str, str]:
        n = len(record)
        return {name: record[i] if 0 <= i < n else "" for name, i in zip(COLUMNS, self.positions, strict=True)}


class _Checker:
    """Checks one row at a time, caching what repeats from row to row (channel lists, times, media files)."""

    def __init__(self, config: Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self._channels: dict[str, list[ChannelConfig]] = {}
        self._times: dict[tuple[str, str], datetime] = {}
        self._media: dict[str, tuple[Path, StoredMedia]] = {}

    def channels(self, value: str) -> list[ChannelConfig]:
        if value not in self._channels:
            names = [n.strip() for n in value.replace(",", ";").split(";") if n.strip()]
            self._channels[value] = intake.pick_channels(self.config, names)
        return self._channels[value]

    def when(self, value: str, channel: ChannelConfig, now: datetime, name: str = intake.COLUMNS.at) -> datetime:
        key = (value, channel.name)
        if key not in self._times:
            self._times[key] = intake.parse_when(value, channel.timezone, now, name)
        return self._times[key]

    def media(self, value: str) -> tuple[Path, StoredMedia]:
        if value not in self._media:
            path = Path(value)
            path = path if path.is_absolute() else self.folder / path
            info, size = inspect(path)
            self._media[value] = (path, StoredMedia("0" * 64, path.name, info.mime, size, info.width, info.height))
        return self._media[value]


def _validate(config: Config, path: Path, now: datetime, tick: Callable[[int], None]) -> list[Row]:
    text = _read(path)
    records = _records(path, text)
    try:
        _, header = next(records)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; the first line names the columns") from None
    columns = _header(path, header)
    variants = [(name[len(VARIANT_PREFIX) :], index) for name, index in columns.items() if name.startswith("text_for_")]
    checker = _Checker(config, path.parent)
    rows: list[Row] = []
    errors: list[str] = []
    done = 0
    fields = _Fields(columns)
    for line, record in records:
        done += 1
        if done % 1000 == 0:
            tick(1000)
        if not any(v.strip() for v in record):
            continue
        if len(record) > len(header):
            columns_named = plural(len(header), "column", "columns")
            errors.append(f"{path}:{line}: {len(record)} fields, but the header names {columns_named}")
            continue
        try:
            rows.append(_row(checker, line, fields.read(record), variants, record, now))
        except InputError as exc:
            errors.append(f"{path}:{line}: {exc}")
    tick(done % 1000)
    if errors:
        raise ImportRejected(errors)
    return rows


def _row(
    checker: _Checker,
    line: int,
    get: dict[str, str],
    variant_columns: list[tuple[str, int]],
    record: list[str],
    now: datetime,
) -> Row:
    channels = checker.channels(get["channels"])
    raw_variants = {n: record[i] for n, i in variant_columns if i < len(record) and record[i].strip()}
    media = [checker.media(m.strip()) for m in get["media"].split(";") if m.strip()] if get["media"] else []
    at_value = get["at"].strip()
    evergreen = FLAGS.get(get["evergreen"].strip().lower())
    if evergreen is None:
        raise InputError(f"evergreen {get['evergreen'].strip()!r} is not one of true, false, yes, no, 1, 0")
    if evergreen and at_value:
        raise InputError("an evergreen row goes into the pool, not at a time: leave 'at' empty")
    expire_value = get["expire_at"].strip()
    if evergreen and expire_value:
        raise InputError("an evergreen row goes out again and again: leave 'expire_at' empty")
    at = {c.name: checker.when(at_value, c, now) for c in channels} if at_value else None
    expire = intake.COLUMNS.expire_at
    expiry = {c.name: checker.when(expire_value, c, now, expire) for c in channels} if expire_value else None
    content = intake.check_post(
        checker.config,
        channels,
        text=get["text"],
        link=get["link"].strip() or None,
        category=get["category"].strip() or "educational",
        campaign=get["campaign"].strip() or None,
        utm_content=get["utm_content"].strip() or None,
        variants=raw_variants,
        media=[m for _, m in media],
        names=intake.COLUMNS,
    )
    return Row(line, content, channels, at, [p for p, _ in media], evergreen=evergreen, expiry=expiry)


# -- placing and writing ------------------------------------------------------------------------------------------


def _place(conn: Connection | None, rows: list[Row], now: datetime, force: bool, path: Path) -> None:
    """Give every row its time on each channel: its ``at``, or the channel's next free slot in file order.

    Commercial rows that break a channel's mix rule are refused (unless ``force``), every one named.
    """
    planners: dict[str, Planner] = {}

    def planner(channel: ChannelConfig) -> Planner:
        if channel.name not in planners:
            planners[channel.name] = Planner(conn, channel, now)
        return planners[channel.name]

    rows = [row for row in rows if not row.evergreen]
    # The file's explicit times are taken before any row takes a slot.
    for row in rows:
        if row.at is not None:
            for channel in row.channels:
                row.due[channel.name] = row.at[channel.name]
                planner(channel).reserve(row.at[channel.name], row.content.category, order=row.line)
    waiting: dict[str, tuple[ChannelConfig, list[Row]]] = {}
    for row in rows:
        if row.at is None:
            for channel in row.channels:
                waiting.setdefault(channel.name, (channel, []))[1].append(row)
    for name, (channel, queued) in waiting.items():
        slots = planner(channel).fill([(row.content.category, row.line) for row in queued])
        for row, when in zip(queued, slots, strict=True):
            row.due[name] = when
    _check_expiry(rows, path)
    if force:
        return
    errors = sorted(
        (
            brk.order,
            f"{path}:{brk.order}: channel {p.channel.name!r}: a commercial post at {local(brk.due_at, p.channel)} "
            f"makes {brk.commercial} of {p.channel.mix.window} consecutive deliveries commercial "
            f"(rule: {p.channel.mix.describe()}); move the row, give it an 'at', or import with --force",
        )
        for p in planners.values()
        for brk in p.breaks()
    )
    if errors:
        raise ImportRejected([message for _, message in errors])


def _check_expiry(rows: list[Row], path: Path) -> None:
    """Rows whose ``expire_at`` is not after their time on a channel, or past what its network can delete."""
    errors = []
    for row in rows:
        if row.expiry is None:
            continue
        zones = {c.name: c.timezone for c in row.channels}
        for problem in expiry_problems(_plan_of(row), row.expiry, zones, intake.COLUMNS.expire_at):
            errors.append(f"{path}:{row.line}: {problem}")
    if errors:
        raise ImportRejected(errors)
