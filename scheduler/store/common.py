"""What the store's modules share: bind parameters of an aware time, the statuses as stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, bindparam

from scheduler.tables import Status, UTCDateTime

QUEUED = Status.QUEUED.value
PUBLISHING = Status.PUBLISHING.value


# The daemon's per-post statements are built once and run on the session's connection: building an ORM statement
# and running it through the Session costs several times as much CPU, and a post takes about a dozen of them.
# Bind names differ from column names: in an UPDATE those are reserved.
def at(name: str) -> BindParameter[datetime]:
    """A bind parameter that takes an aware time (and refuses a naive one)."""
    return bindparam(name, type_=UTCDateTime())
