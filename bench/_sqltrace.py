"""Run ``smm`` with every SQL statement timed: ``python -m bench._sqltrace --config ... run`` writes, at exit, the
distinct statements with their count, total and worst time and the parameters of their first call to
``$BENCH_SQL_TRACE`` (JSON). Used by B4 to find statements that touch every queued row."""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_stats: dict[str, dict[str, Any]] = {}


@event.listens_for(Engine, "before_cursor_execute")
def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    conn.info.setdefault("bench_t0", []).append(time.perf_counter())


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    elapsed = time.perf_counter() - conn.info["bench_t0"].pop()
    entry = _stats.get(statement)
    if entry is None:
        entry = _stats[statement] = {"n": 0, "total": 0.0, "max": 0.0, "params": None}
        try:
            entry["params"] = json.loads(json.dumps(list(parameters) if not executemany else None, default=str))
        except (TypeError, ValueError):
            entry["params"] = None
    entry["n"] += 1
    entry["total"] += elapsed
    entry["max"] = max(entry["max"], elapsed)


def _dump() -> None:
    path = os.environ.get("BENCH_SQL_TRACE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_stats, f, indent=1)


atexit.register(_dump)

if __name__ == "__main__":
    from scheduler.cli import main

    main(sys.argv[1:])
