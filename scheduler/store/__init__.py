"""The store: the SQL of the publishing path, one module per concern, each function ``fn(session, ...)``.

- :mod:`.claims`: a delivery taken for publishing or reconciling, with its attempt opened (:class:`Claim`);
- :mod:`.outcomes`: what became of an attempt, fenced on the attempt still being open;
- :mod:`.leases`: leases of deliveries being published, their expiry and the heartbeat;
- :mod:`.probe`: whether the database takes a write (before the daemon starts);
- :mod:`.queue`: reads of the queue (the daemon's look, what falls due next, the summary's counts);
- :mod:`.native`: the rows of native pre-scheduling;
- :mod:`.quota`: quotas known ahead, applied to a channel's queue;
- :mod:`.feeds`: the feeds' poll state (when each was polled, its validators, its last error);
- :mod:`.comments`: the comment watch's rows (comments read on published posts, each stored once);
- :mod:`.cluster`: the rows of several daemons on PostgreSQL (live instances, lease groups);
- :mod:`.results`: results read back after publishing (due readings, readings, the audience, a post's history);
- :mod:`.figures`: the report's figures table, one narrow row per published delivery, kept where its sources change;
- :mod:`.report`, :mod:`.report_page`: the report's aggregates over it, and what the HTML page reads besides;
- :mod:`.executor`: runs store functions off the event loop, typed with ``ParamSpec``.

The names of the publishing path are re-exported here: callers write ``store.claim(session, ...)``,
``store.record_published(...)``; quotas and the cluster are ``store.quota.defer_over_quota``,
``store.cluster.heartbeat``. A channel's timeline (slot placement, the one writer of posts) is
:mod:`scheduler.timeline`, outside this package: ``smm add`` and ``smm import`` use it without loading the ORM,
which this package's modules need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from scheduler.store import cluster, quota
from scheduler.store.claims import ARM_MARGIN, Claim, ClaimCall, claim, claim_each, claim_for_arming, take_over
from scheduler.store.leases import (
    all_publishing,
    count_expired_leases,
    expire_leases,
    expired_leases,
    extend_lease,
    next_lease_expiry,
    owned_in_doubt,
    posts_and_channels,
)
from scheduler.store.native import (
    arm_candidates,
    clear_native,
    forget_native,
    record_armed,
    record_disarmed,
    record_native_gone,
    stale_native,
)
from scheduler.store.outcomes import (
    record_failed,
    record_in_doubt,
    record_published,
    record_published_each,
    record_retry,
    record_unknown,
    release,
)
from scheduler.store.probe import probe_write
from scheduler.store.queue import (
    Glance,
    due_channels,
    glance,
    newest_id,
    overdue,
    queued_per_channel,
    queued_since,
    upcoming,
)

COMBINED: dict[Callable[..., object], Callable[[Session, list[Any]], Sequence[object]]] = {
    claim: claim_each,
    record_published: record_published_each,
}
"""Calls the daemon's group commit may run together as one (see :class:`scheduler.batch.WriteBatcher`)."""

__all__ = [
    "ARM_MARGIN",
    "COMBINED",
    "Claim",
    "ClaimCall",
    "Glance",
    "all_publishing",
    "arm_candidates",
    "claim",
    "claim_each",
    "claim_for_arming",
    "clear_native",
    "cluster",
    "count_expired_leases",
    "due_channels",
    "expire_leases",
    "expired_leases",
    "extend_lease",
    "forget_native",
    "glance",
    "newest_id",
    "next_lease_expiry",
    "overdue",
    "owned_in_doubt",
    "posts_and_channels",
    "probe_write",
    "queued_per_channel",
    "queued_since",
    "quota",
    "record_armed",
    "record_disarmed",
    "record_failed",
    "record_in_doubt",
    "record_native_gone",
    "record_published",
    "record_published_each",
    "record_retry",
    "record_unknown",
    "release",
    "stale_native",
    "take_over",
    "upcoming",
]
