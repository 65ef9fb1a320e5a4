"""``smm import FILE.csv``: many posts at once, all validated before anything is written, in one transaction.

Columns (a header row names them, in any order; only ``text``, ``media`` or ``link`` is needed): ``text``,
``channels`` (names separated by ``;`` or ``,``; empty: every channel), ``at`` (as ``smm add --at``; empty: the
cadence), ``media`` (paths separated by ``;``, relative to the CSV's folder), ``link``, ``category``, ``campaign``,
``utm_content`` and ``text_for_<network>``. The delimiter is ``,``, ``;`` or a tab, read from the header line.

Every row is checked as ``smm add`` checks a post; every bad row is reported with its line number and nothing is
written unless all rows are good. Rows without ``at`` take slots in file order, after each channel's queue and
around the times the file and the queue already take, computed in memory; then posts and deliveries go in with
bulk inserts in one transaction. The media are copied beside the store before it (other writers would wait on a
slow copy) and put in place within it. Commercial rows that break a channel's content mix rule are errors too (reorder
the file, give them an ``at``, or ``--force``).
"""

from __future__ import annotations

import csv
import gc
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, func, select

from scheduler import mix, timeline
from scheduler.config import NETWORKS, ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.intake import check_category, check_link, check_tag, check_text, check_variants, parse_when
from scheduler.media import MediaStore, StoredMedia, inspect
from scheduler.placement import local
from scheduler.render import PostContent, problems
from scheduler.slots import slot_times
from scheduler.tables import Status, deliveries, posts
from scheduler.views import plural

COLUMNS = ("text", "channels", "at", "media", "link", "category", "campaign", "utm_content")
VARIANT_PREFIX = "text_for_"
MAX_REPORTED = 50
SUMMARY_CHANNELS = 20
"""Channels the import's summary lists one per line; the rest are counted in one line."""
IMPORT_CACHE_KIB = 64 * 1024
"""SQLite's page cache for a bulk import's transaction (see :func:`_insert`)."""
_LAST = 2**62


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


@dataclass
class ImportResult:
    """What was (or, with ``dry_run``, would be) imported."""

    rows: list[Row]
    dry_run: bool

    @property
    def deliveries(self) -> int:
        return sum(len(r.channels) for r in self.rows)

    def lines(self, name: str, *, detail: bool) -> list[str]:
        """The report: each delivery (``detail``), the totals, then a line per channel (``SUMMARY_CHANNELS`` of
        them; the rest in one line)."""
        out: list[str] = []
        if detail:
            for row in self.rows:
                text = " ".join(row.content.text.split())
                text = text if len(text) <= 50 else text[:49] + "…"
                for channel in row.channels:
                    out.append(f"line {row.line}: {channel.name}  {local(row.due[channel.name], channel)}  {text}")
        spans: dict[str, list[datetime]] = {}
        zones: dict[str, ChannelConfig] = {}
        for row in self.rows:
            for channel in row.channels:
                spans.setdefault(channel.name, []).append(row.due[channel.name])
                zones[channel.name] = channel
        verb = "would import" if self.dry_run else "imported"
        total = f"{plural(len(self.rows), 'post', 'posts')} ({plural(self.deliveries, 'delivery', 'deliveries')})"
        out.append(f"{verb} {total} from {name}")
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
        with path.open("rb") as f:
            return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1)
    except OSError:
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
            _place(config, None, rows, now, force, path.name)
        else:
            with db.read_core() as conn:
                _place(config, conn, rows, now, force, path.name)
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
            _place(config, conn, rows, now, force, path.name)
            _insert(conn, rows, stored, now, tick)
            store.commit()
    db.wake_daemon()
    return ImportResult(rows, dry_run=False)


# -- reading and validating ---------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
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
        known = name in COLUMNS or (name.startswith(VARIANT_PREFIX) and name[len(VARIANT_PREFIX) :] in NETWORKS)
        if not known:
            allowed = ", ".join((*COLUMNS, f"{VARIANT_PREFIX}<{'|'.join(NETWORKS)}>"))
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
        self.by_name = {c.name: c for c in config.channels}
        self._channels: dict[str, list[ChannelConfig]] = {}
        self._times: dict[tuple[str, str], datetime] = {}
        self._media: dict[str, tuple[Path, StoredMedia]] = {}

    def channels(self, value: str) -> list[ChannelConfig]:
        if value not in self._channels:
            names = [n.strip() for n in value.replace(",", ";").split(";") if n.strip()]
            if not self.config.channels:
                raise InputError(f"no channels are configured in {self.config.path}: add a [[channels]] table")
            picked: list[ChannelConfig] = []
            for name in names:
                if name not in self.by_name:
                    known = ", ".join(self.by_name)
                    raise InputError(f"unknown channel {name!r}; configured: {known}")
                if self.by_name[name] not in picked:
                    picked.append(self.by_name[name])
            self._channels[value] = picked or list(self.config.channels)
        return self._channels[value]

    def when(self, value: str, channel: ChannelConfig, now: datetime) -> datetime:
        key = (value, channel.name)
        if key not in self._times:
            try:
                self._times[key] = parse_when(value, channel.timezone, now)
            except InputError as exc:
                raise InputError(str(exc).replace("--at", "at", 1)) from None
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
    text = check_text(get["text"])
    channels = checker.channels(get["channels"])
    link = check_link(get["link"].strip() or None)
    category = check_category(get["category"].strip() or "educational")
    campaign = check_tag(get["campaign"].strip() or None, "campaign")
    utm_content = check_tag(get["utm_content"].strip() or None, "utm_content")
    raw_variants = {n: record[i] for n, i in variant_columns if i < len(record) and record[i].strip()}
    variants = check_variants(raw_variants, channels) if raw_variants else {}
    media = [checker.media(m.strip()) for m in get["media"].split(";") if m.strip()] if get["media"] else []
    at_value = get["at"].strip()
    at = {c.name: checker.when(at_value, c, now) for c in channels} if at_value else None
    content = PostContent(
        text=text,
        link=link,
        media=tuple(m for _, m in media),
        category=category,
        campaign=campaign,
        utm_content=utm_content,
        variants=variants,
    )
    found = [p for channel in channels for p in problems(content, channel, checker.config.media_dir)]
    if found:
        raise InputError("; ".join(found))
    return Row(line, content, channels, at, [p for p, _ in media])


# -- placing and writing ------------------------------------------------------------------------------------------


def _place(config: Config, conn: Connection | None, rows: list[Row], now: datetime, force: bool, name: str) -> None:
    """Give every row its time on each channel: its ``at``, or the channel's next free slot in file order."""
    used: dict[str, set[datetime]] = {}
    for row in rows:
        if row.at is not None:
            for channel in row.channels:
                row.due[channel.name] = row.at[channel.name]
                used.setdefault(channel.name, set()).add(row.at[channel.name])
    free: dict[str, Iterator[datetime]] = {}
    # Only channels that have rows to place in slots need their queue read (rows with `at` keep their time).
    for channel in {c.name: c for row in rows if row.at is None for c in row.channels}.values():
        last, occupied = None, set[datetime]()
        if conn is not None:
            times = timeline.channel_times(conn, channel.name, now)
            last, occupied = times.last_slotted, set(times.occupied)
        occupied |= used.get(channel.name, set())
        after = max(now, last) if last is not None else now
        free[channel.name] = _free(channel, after, occupied)
    for row in rows:
        if row.at is None:
            for channel in row.channels:
                row.due[channel.name] = next(free[channel.name])
    if not force:
        errors = _mix_errors(conn, rows, name)
        if errors:
            raise ImportRejected(errors)


def _free(channel: ChannelConfig, after: datetime, occupied: set[datetime]) -> Iterator[datetime]:
    return (t for t in slot_times(channel.slots, channel.timezone, after) if t not in occupied)


def _mix_errors(conn: Connection | None, rows: list[Row], name: str) -> list[str]:
    """Rows whose commercial post completes a window over its channel's limit."""
    new: dict[str, list[tuple[datetime, int, bool, int]]] = {}
    channels: dict[str, ChannelConfig] = {}
    for row in rows:
        commercial = row.content.category == mix.COMMERCIAL
        for channel in row.channels:
            if channel.mix.enabled:
                new.setdefault(channel.name, []).append((row.due[channel.name], _LAST + row.line, commercial, row.line))
                channels[channel.name] = channel
    errors: list[tuple[int, str]] = []
    for channel_name, entries in new.items():
        if not any(commercial for _, _, commercial, _ in entries):
            continue
        channel = channels[channel_name]
        start = min(e[0] for e in entries)
        existing = []
        if conn is not None:
            existing = timeline.mix_before(conn, channel_name, start, channel.mix.span)
            existing += timeline.mix_from(conn, channel_name, start)
        merged = sorted([(e.due_at, e.id, e.commercial, 0) for e in existing] + entries, key=lambda e: (e[0], e[1]))
        after = [e[2] for e in merged]
        if not mix.worsens([e.commercial for e in existing], after, channel.mix):
            continue
        counts = mix.window_counts(after, channel.mix.window)
        blamed: set[int] = set()
        for end, count in enumerate(counts):
            if count <= channel.mix.limit:
                continue
            window = merged[max(0, end - channel.mix.window + 1) : end + 1]
            culprits = [e for e in window if e[2] and e[3]]
            if culprits and culprits[-1][3] not in blamed:
                line = culprits[-1][3]
                blamed.add(line)
                errors.append(
                    (
                        line,
                        f"{name}:{line}: channel {channel_name!r}: a commercial post at "
                        f"{local(culprits[-1][0], channel)} makes {count} of {channel.mix.window} consecutive "
                        f"deliveries commercial (rule: {channel.mix.describe()}); move the row, give it an 'at', "
                        "or import with --force",
                    )
                )
    return [message for _, message in sorted(errors)]


def _sqlite_time(value: datetime) -> str:
    """An aware datetime as SQLAlchemy stores it in SQLite (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_POST_COLUMNS = ("text", "link", "category", "media", "created_at", "campaign", "utm_content", "variants")
_DELIVERY_COLUMNS = (
    "post_id",
    "channel",
    "network",
    "status",
    "due_at",
    "slotted",
    "next_attempt_at",
    "attempts",
    "key",
    "updated_at",
)


def _insert(
    conn: Connection, rows: list[Row], stored: dict[Path, dict[str, Any]], now: datetime, tick: Callable[[int], None]
) -> None:
    """Bulk-insert the rows' posts and deliveries, in batches, through the database driver.

    SQLAlchemy's per-row machinery would take most of the time, so the rows go straight to the driver: on SQLite
    ``executemany``, with the columns' own SQLAlchemy conversions and post ids counted on from the largest (safe:
    the transaction is ``BEGIN IMMEDIATE``); on PostgreSQL ``COPY``, with ids taken from the posts' sequence.
    """
    driver = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        # Every delivery goes into eight indexes, at random places in the per-channel ones: with SQLite's default
        # 2 MiB page cache, 100,000 rows into a million-row queue re-read and re-wrote the same index pages over and
        # over (a third of the import's system time). The cache is the connection's: set back afterwards.
        previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
        conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        try:
            _write(_SqliteWriter(conn, driver, now), rows, stored, tick)
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size = {previous}")
    elif conn.dialect.name == "postgresql":
        _write(_PostgresWriter(driver, now), rows, stored, tick)
    else:  # pragma: no cover - the config accepts only SQLite and PostgreSQL URLs
        raise InputError(f"bulk import supports SQLite and PostgreSQL, not {conn.dialect.name}")


def _write(writer: _Writer, rows: list[Row], stored: dict[Path, dict[str, Any]], tick: Callable[[int], None]) -> None:
    prefix = os.urandom(12).hex()
    counter = iter(range(1 << 32))
    batch = 5000
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        ids = writer.posts(
            [
                (
                    row.content.text,
                    row.content.link,
                    row.content.category,
                    [stored[p] for p in row.media],
                    row.content.campaign,
                    row.content.utm_content,
                    dict(row.content.variants) or None,
                )
                for row in chunk
            ]
        )
        # Keys in order (a random prefix per import, then a counter) go into the unique index faster than random.
        writer.deliveries(
            [
                (
                    post_id,
                    channel.name,
                    channel.network,
                    row.due[channel.name],
                    row.at is None,
                    f"{prefix}{next(counter):08x}",
                )
                for row, post_id in zip(chunk, ids, strict=True)
                for channel in row.channels
            ]
        )
        tick(len(chunk))


_PostRow = tuple[str, str | None, str, list[dict[str, Any]], str | None, str | None, dict[str, str] | None]
_DeliveryRow = tuple[int, str, str, datetime, bool, str]


class _Writer(ABC):
    """Bulk inserts through the database driver (SQLite executemany, PostgreSQL COPY)."""

    @abstractmethod
    def posts(self, values: list[_PostRow]) -> list[int]:
        """Insert posts; returns their ids in order."""

    @abstractmethod
    def deliveries(self, values: list[_DeliveryRow]) -> None:
        """Insert deliveries."""


class _SqliteWriter(_Writer):
    def __init__(self, conn: Any, driver: Any, now: datetime) -> None:
        def converter(table: Table, name: str) -> Callable[[Any], Any]:
            process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            return process or (lambda value: value)

        self.json, self.time, self.flag = (
            converter(posts, "media"),
            converter(deliveries, "due_at"),
            converter(deliveries, "slotted"),
        )
        if self.time(now) == _sqlite_time(now):
            self.time = _sqlite_time  # the same text, several times faster
        self.created = self.time(now)
        self.empty_media, self.no_variants = self.json([]), self.json(None)
        self.cursor = driver.cursor()
        self.next_id = (conn.execute(select(func.max(posts.c.id))).scalar() or 0) + 1

    def posts(self, values: list[_PostRow]) -> list[int]:
        ids = list(range(self.next_id, self.next_id + len(values)))
        self.next_id += len(values)
        marks = ", ".join("?" * (len(_POST_COLUMNS) + 1))
        self.cursor.executemany(
            f"INSERT INTO posts (id, {', '.join(_POST_COLUMNS)}) VALUES ({marks})",
            [
                (
                    post_id,
                    text,
                    link,
                    category,
                    self.json(media) if media else self.empty_media,
                    self.created,
                    campaign,
                    utm_content,
                    self.json(variants) if variants else self.no_variants,
                )
                for post_id, (text, link, category, media, campaign, utm_content, variants) in zip(
                    ids, values, strict=True
                )
            ],
        )
        return ids

    def deliveries(self, values: list[_DeliveryRow]) -> None:
        queued, created = Status.QUEUED.value, self.created
        slotted, explicit = self.flag(True), self.flag(False)
        rows = []
        for post_id, channel, network, due_at, is_slotted, key in values:
            due = self.time(due_at)
            rows.append(
                (post_id, channel, network, queued, due, slotted if is_slotted else explicit, due, 0, key, created)
            )
        marks = ", ".join("?" * len(_DELIVERY_COLUMNS))
        self.cursor.executemany(f"INSERT INTO deliveries ({', '.join(_DELIVERY_COLUMNS)}) VALUES ({marks})", rows)


class _PostgresWriter(_Writer):
    def __init__(self, driver: Any, now: datetime) -> None:
        self.driver = driver
        self.now = now

    def posts(self, values: list[_PostRow]) -> list[int]:
        import json

        with self.driver.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('posts', 'id')) FROM generate_series(1, %s)", (len(values),)
            )
            ids = [int(r[0]) for r in cursor.fetchall()]
            with cursor.copy(f"COPY posts (id, {', '.join(_POST_COLUMNS)}) FROM STDIN") as copy:
                for post_id, (text, link, category, media, campaign, utm_content, variants) in zip(
                    ids, values, strict=True
                ):
                    copy.write_row(
                        (
                            post_id,
                            text,
                            link,
                            category,
                            json.dumps(media),
                            self.now,
                            campaign,
                            utm_content,
                            json.dumps(variants) if variants else None,
                        )
                    )
        return ids

    def deliveries(self, values: list[_DeliveryRow]) -> None:
        queued, now = Status.QUEUED.value, self.now
        with (
            self.driver.cursor() as cursor,
            cursor.copy(f"COPY deliveries ({', '.join(_DELIVERY_COLUMNS)}) FROM STDIN") as copy,
        ):
            for post_id, channel, network, due_at, slotted, key in values:
                copy.write_row((post_id, channel, network, queued, due_at, slotted, due_at, 0, key, now))
