"""``smm stats ID``: a post's results on each of its channels, each reading with its time and planned age, as the
daemon read them back (see :mod:`scheduler.daemon.results`). Nothing here calls a network."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, TypedDict

from adapters import adapter_class
from adapters.errors import UnknownNetwork
from scheduler.db import Database
from scheduler.errors import NotFound
from scheduler.store import results as readings
from scheduler.timefmt import format_duration
from scheduler.views import iso

ResultsState = Literal["read", "waiting", "gone", "not_available", "not_published"]


class ReadingView(TypedDict):
    age: int
    age_label: str
    read_at: str | None
    views: int | None
    likes: int | None
    reposts: int | None
    comments: int | None
    gone: bool
    error: str | None
    latest: bool


class DeliveryStats(TypedDict):
    channel: str
    network: str
    status: str
    published_at: str | None
    remote_url: str | None
    results: ResultsState
    note: str | None
    readings: list[ReadingView]


class PostStats(TypedDict):
    post_id: int
    deliveries: list[DeliveryStats]


def post_stats(db: Database, post_id: int) -> PostStats:
    """The readings of each delivery of post ``post_id``; ``results`` says where its collection stands: ``read``
    (it has readings), ``waiting`` (none yet), ``gone`` (the network no longer has the post: no more readings),
    ``not_available`` (the network gives no post results; ``note`` says why) or ``not_published``."""
    with db.read() as session:
        history = readings.history(session, post_id)
    if history is None:
        raise NotFound(f"no post with id {post_id}")
    return {"post_id": post_id, "deliveries": [_delivery(d) for d in history]}


def _delivery(d: readings.DeliveryHistory) -> DeliveryStats:
    views: list[ReadingView] = [
        {
            "age": r.age,
            "age_label": format_duration(timedelta(seconds=r.age), "exact"),
            "read_at": iso(r.read_at),
            "views": r.views,
            "likes": r.likes,
            "reposts": r.reposts,
            "comments": r.comments,
            "gone": r.gone,
            "error": r.error,
            "latest": r.latest,
        }
        for r in d.readings
    ]
    note = _unavailable(d.network)
    state: ResultsState
    if note is not None:
        state = "not_available"
    elif any(r.gone for r in d.readings):
        state, note = "gone", "the post is no longer on the network: its results are no longer read"
    elif d.status != "published":
        state = "not_published"
    else:
        state = "read" if d.readings else "waiting"
    return {
        "channel": d.channel,
        "network": d.network,
        "status": d.status,
        "published_at": iso(d.published_at),
        "remote_url": d.remote_url,
        "results": state,
        "note": note,
        "readings": views,
    }


def _unavailable(network: str) -> str | None:
    """Why ``network`` gives no post results, or None when it gives them."""
    try:
        return adapter_class(network).unsupported.get("results")
    except UnknownNetwork:
        return None
