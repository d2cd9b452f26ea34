"""A map for what the /graphql hot path remembers, bounded by the bytes it holds.

Its reads are the hot path's (one dict lookup, where an LRU map also reorders its entries
on every read); when it is over its bound it drops its oldest entries first. For what is
kept here, dropping a hot entry costs one recomputation, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    def __init__(self, max_bytes: int, size_of: Callable[[K, V], int]) -> None:
        self._entries: dict[K, tuple[V, int]] = {}
        self._max_bytes = max_bytes
        self._size_of = size_of
        self.bytes = 0

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        return None if found is None else found[0]

    def put(self, key: K, value: V) -> None:
        size = self._size_of(key, value)
        if size > self._max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes -= previous[1]
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self.bytes -= self._entries.pop(oldest)[1]

    def __len__(self) -> int:
        return len(self._entries)
