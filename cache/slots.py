"""What L1 holds for the engine: an entry, the view revision it was last found current
at, when it expires, and what it weighs in L1's byte budget; and the lease a caller may
keep of an L1 hit."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cache.entry import Entry


class Slot:
    """What L1 holds: an entry and the view revision it was last found current at."""

    __slots__ = ("checked", "entry", "expires", "tags")

    def __init__(self, entry: Entry, checked: int, expires: float = math.inf) -> None:
        self.entry = entry
        self.checked = checked
        self.expires = expires
        """`time.monotonic()` deadline, taken before L1 was given the entry's TTL: never
        later than L1's own expiry of it."""
        self.tags = entry.tags
        """The tags it was stored with: served only to a reader expecting exactly these
        (a key shared by two callers with different tags is a miss, never a wrong hit)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """An L1 hit, remembered by a caller: it holds (``TieredCache.holds``) while L1 would
    still serve the same entry, i.e. while the view has not moved (``revision``: no drop,
    flush or raised version), nothing was written to or cleared from L1 (``writes``: no
    overwrite, no eviction) and the entry has not expired."""

    revision: int
    writes: int
    expires: float


def slot_bytes(slot: Slot) -> int:
    """What a slot weighs in L1's byte budget: its encoded value and its tag stamps."""
    entry = slot.entry
    stamps = sum(len(tag) + 8 for tag, _ in entry.versions)
    return (0 if entry.payload is None else len(entry.payload)) + stamps
