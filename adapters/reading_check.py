"""What ``smm doctor`` says about reading a channel back after publishing: whether its post results and its audience
can be read with its credentials, by reading them once (nothing is changed).

The network's own knowledge stays in its adapter: what it cannot give (``Adapter.unsupported``), the right a
refusal names (its error translation), why a figure is missing (``PostResults.notes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.base import Adapter, PostResults
from adapters.errors import PublishError, RateLimited


@dataclass(frozen=True)
class ReadingCheck:
    """One line of ``smm doctor`` under a channel: its post ``results`` or its ``audience``."""

    what: Literal["results", "audience"]
    ok: bool
    """False when a person should act (a right is missing, a read fails); a network that gives nothing is ok."""
    detail: str


async def check_reading(adapter: Adapter, remote_id: str | None) -> list[ReadingCheck]:
    """Whether ``adapter``'s channel can be read back: the results of ``remote_id`` (its last published post; None
    when it has none yet) and its audience, each read once; nothing for a network with neither (the outbox).
    A failed read is a line; only :class:`~adapters.errors.RateLimited` is raised (the caller may wait and ask
    again)."""
    if {"results", "audience"} <= set(adapter.unsupported):
        return []
    return [await _results(adapter, remote_id), await _audience(adapter)]


async def _results(adapter: Adapter, remote_id: str | None) -> ReadingCheck:
    if "results" in adapter.unsupported:
        return ReadingCheck("results", True, f"not available: {adapter.unsupported['results']}")
    if remote_id is None:
        return ReadingCheck("results", True, "no published post to read back yet")
    try:
        found = await adapter.read_results(remote_id)
    except RateLimited:
        raise
    except PublishError as exc:
        return ReadingCheck("results", False, f"cannot be read: {exc}")
    if found.gone:
        return ReadingCheck("results", True, f"the last post ({remote_id}) is gone from {adapter.title}: not checked")
    detail = f"readable (post {remote_id}: {_figures(found)})"
    if found.notes:
        return ReadingCheck("results", False, f"{detail}; {'; '.join(found.notes)}")
    return ReadingCheck("results", True, detail)


async def _audience(adapter: Adapter) -> ReadingCheck:
    if "audience" in adapter.unsupported:
        return ReadingCheck("audience", True, f"not available: {adapter.unsupported['audience']}")
    try:
        members = await adapter.read_audience()
    except RateLimited:
        raise
    except PublishError as exc:
        return ReadingCheck("audience", False, f"cannot be read: {exc}")
    return ReadingCheck("audience", True, f"readable ({members:,} now)")


def _figures(found: PostResults) -> str:
    named = (("views", found.views), ("likes", found.likes), ("reposts", found.reposts), ("comments", found.comments))
    return ", ".join(f"{name} {'-' if value is None else value}" for name, value in named)
