"""L1: a bounded W-TinyLFU store (theine), synchronous by design, bounded in bytes too.

theine keeps the frequently used entries within a fixed bound (W-TinyLFU admission and a
segmented LRU), where aiocache's memory backend is an unbounded dict with a timer per key.
The engine's L1 checks and writes must not yield to the event loop between them (an
invalidation could slip in), so this store has no coroutines at all.

theine bounds entries, not bytes, and values can hold client text (a whole response's
aliases, a persisted document): a count bound alone lets a client pin gigabytes. So small
values (at most half the byte budget spread over every entry) live in theine, and larger
ones in a byte-bounded LRU with the other half (cachetools): the whole store never holds
more than its byte budget of weighed values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from cachetools import TLRUCache
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


Weigh = Callable[[Any], int]
"""The bytes a stored value accounts for (its key is added by the store)."""


class _CountingLRU(TLRUCache[str, "_Large"]):
    def __init__(self, max_bytes: int) -> None:
        self.evictions = 0
        super().__init__(max_bytes, _expiry, time.monotonic, getsizeof=_size_of)

    def popitem(self) -> tuple[str, _Large]:
        self.evictions += 1
        return super().popitem()


class _Large(NamedTuple):
    value: Any
    size: int
    expires_at: float


def _expiry(_key: str, item: _Large, _now: float) -> float:
    return item.expires_at


def _size_of(item: _Large) -> int:
    return item.size


class TinyLFUStore:
    """At most ``max_entries`` values and, when ``max_bytes`` is given, at most that many
    bytes of values as ``weigh`` counts them; TTLs in seconds (falsy: no expiry). Values
    are stored as given: callers store immutable objects."""

    def __init__(
        self, max_entries: int, max_bytes: int | None = None, weigh: Weigh | None = None
    ) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        if max_bytes is not None and (max_bytes <= 0 or weigh is None):
            raise ValueError("a byte bound needs a positive max_bytes and a weigh function")
        self.max_entries = max_entries
        self._store = _CountingTheine(max_entries)
        self._weigh = weigh
        self._large: _CountingLRU | None = None
        self._small_bytes = 0
        if max_bytes is not None:
            self._small_bytes = max_bytes // (2 * max_entries)
            self._large = _CountingLRU(max_bytes - self._small_bytes * max_entries)

    def get(self, key: str) -> Any:
        value, found = self._store.get(key)
        if found:
            return value
        large = self._large
        if large:
            item = large.get(key)
            if item is not None:
                return item.value
        return None

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        if self._large:
            return [self.get(key) for key in keys]
        get = self._store.get
        return [pair[0] if (pair := get(key))[1] else None for key in keys]

    def set_many(self, pairs: Iterable[tuple[str, Any]], ttl: float | None = None) -> None:
        expiry = timedelta(seconds=ttl) if ttl else None
        store = self._store
        large = self._large
        weigh = self._weigh
        if large is None or weigh is None:
            for key, value in pairs:
                store.set(key, value, expiry)
            return
        expires_at = time.monotonic() + ttl if ttl else math.inf
        for key, value in pairs:
            size = len(key) + weigh(value)
            if size <= self._small_bytes:
                large.pop(key, None)
                store.set(key, value, expiry)
                continue
            store.delete(key)
            if size > large.maxsize:
                large.pop(key, None)  # larger than the whole budget: not kept at all
                continue
            large[key] = _Large(value, size, expires_at)

    def delete(self, key: str) -> None:
        self._store.delete(key)
        if self._large is not None:
            self._large.pop(key, None)

    def clear(self) -> None:
        """A fresh store replaces the old one: theine 2.0's ``clear()`` leaves its policy
        core inconsistent, and a later write panics in Rust (`Option::unwrap()` on `None`),
        which takes the whole L1 down (tests/cache/test_memory.py reproduces it).

        The old one is emptied here, once closed (never written again, so its core's state
        no longer matters; theine's own ``__del__`` does the same): a theine cache is a
        reference cycle (its buffers hold its bound methods), so left to itself it, and
        every value it held, lives on until the next full garbage collection, which a
        server may not run for minutes. Each L1 flush (Redis back after an outage, a
        broadcast reconnect) then kept a whole second L1 beside the refilling one."""
        old = self._store
        self._store = _CountingTheine(self.max_entries)
        self._store.evictions = old.evictions
        old.close()
        old.clear()
        if self._large is not None:
            fresh = _CountingLRU(int(self._large.maxsize))
            fresh.evictions = self._large.evictions
            self._large = fresh

    @property
    def evictions(self) -> int:
        count: int = self._store.evictions
        return count + (self._large.evictions if self._large is not None else 0)

    @property
    def bytes_held(self) -> int:
        """Bytes of the large values held (small ones are bounded by count)."""
        return 0 if self._large is None else int(self._large.currsize)

    def __len__(self) -> int:
        return len(self._store) + (len(self._large) if self._large is not None else 0)
