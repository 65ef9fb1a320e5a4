"""The feeds' poll state (``feed_states``): when each configured feed was last polled, its HTTP validators and its
last error. The entries a feed became are :mod:`scheduler.repository`'s (``smm import-feed`` writes them too)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from scheduler.models import FeedState


def claim_poll(session: Session, feed: str, interval: timedelta, now: datetime) -> FeedState | None:
    """The state of ``feed`` if ``interval`` has passed since its last poll, marked polled at ``now`` (the caller
    holds the feed's lock, so that one daemon polls it); None when it has not."""
    state = session.get(FeedState, feed)
    last = state.polled_at if state is not None else None
    if last is not None and last + interval > now:
        return None
    if state is None:
        state = FeedState(feed=feed)
        session.add(state)
    state.polled_at = now
    session.flush()
    session.expunge(state)
    return state


def record_poll(
    session: Session, feed: str, error: str | None, validators: tuple[str | None, str | None] | None = None
) -> None:
    """What the last poll of ``feed`` left: its error (None: it went through) and, when given, the feed's
    ``(etag, modified)`` for the next conditional request. Nothing when the feed was never claimed."""
    state = session.get(FeedState, feed)
    if state is None:
        return
    if validators is not None:
        state.etag, state.modified = validators
    state.last_error = error
