"""L1: a bounded W-TinyLFU store (theine), synchronous by design.

theine keeps the frequently used entries within a fixed bound (W-TinyLFU admission and a
segmented LRU), where aiocache's memory backend is an unbounded dict with a timer per key.
The engine's L1 checks and writes must not yield to the event loop between them (an
invalidation could slip in), so this store has no coroutines at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from theine import Cache as TheineCache


class _CountingTheine(TheineCache[str, Any]):  # type: ignore[misc]
    """theine has no eviction callback; its write buffer reports the evicted key hashes
    to ``_drain_write``, so count them there."""

    def __init__(self, size: int) -> None:
        self.evictions = 0
        super().__init__(size)

    def _drain_write(self, entries: list[tuple[int, int]]) -> list[int]:
        evicted: list[int] = super()._drain_write(entries)
        self.evictions += len(evicted)
        return evicted


class TinyLFUStore:
    """At most ``max_entries`` values; TTLs in seconds (falsy: no expiry). Values are
    stored as given: callers store immutable objects."""

    def __init__(self, max_entries: int) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._store = _CountingTheine(max_entries)

    def get(self, key: str) -> Any:
        value, found = self._store.get(key)
        return value if found else None

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        get = self._store.get
        return [pair[0] if (pair := get(key))[1] else None for key in keys]

    def set_many(self, pairs: Iterable[tuple[str, Any]], ttl: float | None = None) -> None:
        expiry = timedelta(seconds=ttl) if ttl else None
        store = self._store.set
        for key, value in pairs:
            store(key, value, expiry)

    def delete(self, key: str) -> None:
        self._store.delete(key)

    def clear(self) -> None:
        """A fresh store replaces the old one: theine 2.0's ``clear()`` leaves its policy
        core inconsistent, and a later write panics in Rust (`Option::unwrap()` on `None`),
        which takes the whole L1 down (tests/cache/test_memory.py reproduces it)."""
        old = self._store
        self._store = _CountingTheine(self.max_entries)
        self._store.evictions = old.evictions
        old.close()

    @property
    def evictions(self) -> int:
        count: int = self._store.evictions
        return count

    def __len__(self) -> int:
        return len(self._store)
