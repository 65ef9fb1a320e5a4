"""Times and durations as people read them: one wall-clock format, one machine format and one duration format for
every message.

They live in :mod:`adapters.timefmt`, so that the adapters' messages use them too (adapters may not import the
scheduler); the scheduler's modules import them from here. Imports nothing heavy (the CLI's output goes through
here).
"""

from __future__ import annotations

from adapters.timefmt import WALL_CLOCK, format_duration, format_iso, format_local

__all__ = ["WALL_CLOCK", "format_duration", "format_iso", "format_local"]
