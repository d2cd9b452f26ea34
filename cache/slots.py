"""What L1 holds for the engine: an entry, the view revision it was last found current
at, and what it weighs in L1's byte budget."""

from __future__ import annotations

from cache.entry import Entry


class Slot:
    """What L1 holds: an entry and the view revision it was last found current at."""

    __slots__ = ("checked", "entry", "tags")

    def __init__(self, entry: Entry, checked: int) -> None:
        self.entry = entry
        self.checked = checked
        self.tags = entry.tags
        """The tags it was stored with: served only to a reader expecting exactly these
        (a key shared by two callers with different tags is a miss, never a wrong hit)."""


def slot_bytes(slot: Slot) -> int:
    """What a slot weighs in L1's byte budget: its encoded value and its tag stamps."""
    entry = slot.entry
    stamps = sum(len(tag) + 8 for tag, _ in entry.versions)
    return (0 if entry.payload is None else len(entry.payload)) + stamps
