"""L1: a bounded W-TinyLFU store (theine) behind aiocache's backend interface.

aiocache's own memory backend is an unbounded dict with a timer per key; theine keeps the
frequently used entries within a fixed bound (W-TinyLFU admission + segmented LRU).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer
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


class TinyLFUMemoryBackend(BaseCache):  # type: ignore[misc]
    """An aiocache backend (``get``/``multi_get``/``set``/``multi_set``/``delete``/...)
    bounded to ``max_entries``. TTLs are seconds. Values are stored as given: callers store
    immutable objects.

    ``timeout=None``: aiocache would otherwise wrap every call in ``asyncio.wait_for``,
    which costs more than the lookup itself and cannot fire on a synchronous store.
    """

    NAME = "tinylfu-memory"

    def __init__(self, max_entries: int, **kwargs: Any) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        kwargs.setdefault("timeout", None)
        super().__init__(serializer=NullSerializer(), **kwargs)
        self.max_entries = max_entries
        self._store = _CountingTheine(max_entries)

    @staticmethod
    def _ttl(ttl: float | None) -> timedelta | None:
        # aiocache's memory convention: falsy TTL means "no expiry"
        return timedelta(seconds=ttl) if ttl else None

    async def _get(self, key: str, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        value, found = self._store.get(key)
        return value if found else None

    async def _gets(self, key: str, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._get(key, encoding, _conn)

    async def _multi_get(
        self, keys: Sequence[str], encoding: str | None = "utf-8", _conn: Any = None
    ) -> list[Any]:
        get = self._store.get
        return [pair[0] if (pair := get(key))[1] else None for key in keys]

    async def _set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        _cas_token: Any = None,
        _conn: Any = None,
    ) -> bool:
        if _cas_token is not None:
            current, found = self._store.get(key)
            if not found or current != _cas_token:
                return False
        self._store.set(key, value, self._ttl(ttl))
        return True

    async def _multi_set(
        self, pairs: Iterable[tuple[str, Any]], ttl: float | None = None, _conn: Any = None
    ) -> bool:
        expiry = self._ttl(ttl)
        for key, value in pairs:
            self._store.set(key, value, expiry)
        return True

    async def _add(self, key: str, value: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        if self._store.get(key)[1]:
            raise ValueError(f"Key {key} already exists, use .set to update the value")
        self._store.set(key, value, self._ttl(ttl))
        return True

    async def _exists(self, key: str, _conn: Any = None) -> bool:
        found: bool = self._store.get(key)[1]
        return found

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> int:
        current, found = self._store.get(key)
        try:
            value = (int(current) if found and current is not None else 0) + delta
        except (TypeError, ValueError):
            raise TypeError("Value is not an integer") from None
        self._store.set(key, value, None)
        return value

    async def _expire(self, key: str, ttl: float | None, _conn: Any = None) -> bool:
        current, found = self._store.get(key)
        if not found:
            return False
        self._store.set(key, current, self._ttl(ttl))
        return True

    async def _delete(self, key: str, _conn: Any = None) -> int:
        return 1 if self._store.delete(key) else 0

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        self.clear_now()
        return True

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the W-TinyLFU backend has no raw commands")

    async def _redlock_release(self, key: str, value: Any) -> int:
        current, found = self._store.get(key)
        if found and current == value:
            return await self._delete(key)
        return 0

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        self._store.close()

    # Synchronous fast paths for the engine's hot loop: the aiocache API above costs a
    # coroutine, its plugin hooks and argument juggling per call, several times the
    # lookup itself (aiocache's ``timeout`` is already off).

    def get_now(self, key: str) -> Any:
        value, found = self._store.get(key)
        return value if found else None

    def get_many_now(self, keys: Sequence[str]) -> list[Any]:
        get = self._store.get
        return [pair[0] if (pair := get(key))[1] else None for key in keys]

    def set_many_now(self, pairs: Iterable[tuple[str, Any]], ttl: float | None = None) -> None:
        expiry = self._ttl(ttl)
        store = self._store.set
        for key, value in pairs:
            store(key, value, expiry)

    def clear_now(self) -> None:
        """Synchronous flush: used where an ``await`` would let a reader slip in between.

        A fresh store replaces the old one: theine 2.0's ``clear()`` leaves its policy core
        inconsistent, and a later write panics in Rust (`Option::unwrap()` on `None`),
        which takes the whole L1 down (tests/cache/test_memory_tier.py reproduces it).
        """
        old = self._store
        self._store = _CountingTheine(self.max_entries)
        self._store.evictions = old.evictions
        old.close()

    def delete_now(self, key: str) -> None:
        self._store.delete(key)

    @property
    def evictions(self) -> int:
        count: int = self._store.evictions
        return count

    def __len__(self) -> int:
        return len(self._store)
