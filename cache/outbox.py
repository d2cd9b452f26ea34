"""The outbox the engine relays from: durable invalidations (SPEC 7a).

A write records the tags it invalidates in the same database transaction as the change
(one row per invalidation, ids increasing and never reused). The engine applies a row
(bumps its tags in Redis and broadcasts them) right after the commit and marks it
applied; every instance's relay (``cache/relay.py``) applies what is still unapplied.
The engine knows nothing of the database: the application implements this Protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    tags: tuple[str, ...]
    created_at: float
    """Unix time (seconds) the row was written, by the writer's clock."""
    applied: bool


class Outbox(Protocol):
    async def unapplied(self, limit: int, after_id: int = 0) -> list[OutboxRow]:
        """Rows not yet applied with an id above ``after_id``, lowest id first, at most
        ``limit``."""
        ...

    async def since(self, after_id: int, created_after: float, limit: int) -> list[OutboxRow]:
        """Rows with an id above ``after_id`` or written after ``created_after``, applied
        or not, lowest id first, at most ``limit``."""
        ...

    async def last_id(self) -> int:
        """The highest row id there is (0 when the table is empty)."""
        ...

    async def mark_applied(self, ids: Sequence[int]) -> None: ...

    async def prune(self, applied_before: float) -> int:
        """Deletes rows applied before that unix time; returns how many."""
        ...
