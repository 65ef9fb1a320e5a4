"""``smm report --html FILE``: the page's figures gathered and the page written, whole or not at all.

The figures are the report's (:func:`scheduler.report.report_in`, grouped by category), each channel's audience by
day, the best and the worst posts and a sample of each category's results (:mod:`scheduler.store.report_page`), all
read in one transaction from one base table of the period's deliveries, and the calendar of the next four weeks
(:func:`scheduler.report_calendar.build_calendar`); :func:`scheduler.report_page.render_page` draws them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scheduler.config import ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import InputError
from scheduler.report import Period, open_report, report_in
from scheduler.report_calendar import build_calendar
from scheduler.report_page import PageData, render_page
from scheduler.store import report as report_sql
from scheduler.store import report_page as sql

LISTED = 5
"""How many posts the best and the worst lists show."""
DOTS = 200
"""At most about this many posts drawn as dots per category."""


def target(path: str) -> Path:
    """The page's path, checked before anything is computed: its folder must exist and be writable, and the path
    must not be a folder. Raises :class:`InputError` (one line) otherwise."""
    if not path:
        raise InputError("--html needs a file name")
    file = Path(path)
    folder = file.parent
    if file.is_dir():
        raise InputError(f"--html {path}: is a folder, not a file")
    if not folder.is_dir():
        raise InputError(f"--html {path}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--html {path}: the folder {str(folder)!r} cannot be written")
    return file


def page_data(
    config: Config, db: Database, period: Period, channels: Sequence[ChannelConfig], now: datetime
) -> PageData:
    """Everything the page shows, for ``channels`` over ``period``."""
    names = [c.name for c in channels]
    with open_report(db, period, channels, now) as (conn, base):
        report = report_in(conn, base, period, channels, "category")
        audience = sql.audience_by_day(conn, names, period.since, period.until)
        best = sql.ranked(conn, base, best=True, limit=LISTED)
        worst = [r for r in sql.ranked(conn, base, best=False, limit=LISTED) if r not in best]
        engagement = sql.sample(conn, "category", report_sql.ENGAGEMENT, DOTS)
    return PageData(
        report=report,
        networks={c.name: c.network for c in channels},
        zone=channels[0].timezone if len(channels) == 1 else config.timezone,
        generated_at=now,
        audience=audience,
        engagement=engagement,
        best=best,
        worst=worst,
        calendar=build_calendar(config, db, now, names),
    )


def write_page(
    config: Config, db: Database, path: Path, period: Period, channels: Sequence[ChannelConfig], now: datetime
) -> None:
    """Write the page of ``channels`` over ``period`` to ``path`` (from :func:`target`): into a hidden file beside
    it, synced, then renamed over it, so that a reader never sees half a page."""
    write_atomically(path, render_page(page_data(config, db, period, channels, now)).encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` as the new content of ``path``, whole or not at all; an error is one line naming the file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise InputError(f"--html {path}: cannot write: {exc.strerror or exc}") from None
