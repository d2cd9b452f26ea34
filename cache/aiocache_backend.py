"""The tiered engine as an aiocache backend, for apps that already cache with aiocache.

    backend = TieredAiocache(engine, tags_of=lambda key: ["User"])
    @cached(cache=TieredAiocache, engine=engine, tags_of=..., ttl=60)   # or alias/instance
    async def user_count() -> int: ...

Both tiers, tag invalidation on every instance and signed entries, through aiocache's API:
``await engine.invalidate(["User"])`` drops every value stored under that tag. A value is
stored against the tag versions read at its miss, so a value computed before an
invalidation that lands between the miss and the store is refused, as for the engine's own
loaders. See docs/decisions.md for why this sits over the engine rather than aiocache's
own Redis and memory backends.

Conventions of aiocache kept: a stored ``None`` reads back as a miss; TTLs are seconds.
Values go through the engine's msgpack encoding (the serializer is a pass-through), so
tuples come back as lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Final

from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer, NullSerializer

from cache.engine import TieredCache
from cache.entry import TagVersions
from cache.keys import GLOBAL_TAG
from cache.reads import TagsOf

_MISSES_REMEMBERED: Final = 10_000


def key_tag(key: str) -> str:
    """The tag every value stored under ``key`` also depends on: ``delete`` bumps it."""
    return f"aiocache-key:{key}"


class TieredAiocache(BaseCache):  # type: ignore[misc]
    """``tags_of(key)`` names the tags of the value stored under ``key`` (the key as
    aiocache built it, namespace included).

    ``timeout=None`` by default: the engine bounds each Redis call by its own deadline and
    never raises for Redis trouble, and aiocache's ``asyncio.wait_for`` around every call
    costs more than an L1 hit.

    ``guard_misses=False`` is for values no invalidation can make stale, such as documents
    named by their own hash: a miss then reads no tag versions (which would create their
    keys in Redis: a client could make one per made-up key), and the store reads them.
    """

    NAME = "tiered"

    def __init__(
        self,
        engine: TieredCache,
        *,
        tags_of: TagsOf | None = None,
        serializer: BaseSerializer | None = None,
        timeout: float | None = None,
        guard_misses: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(serializer=serializer or NullSerializer(), timeout=timeout, **kwargs)
        self.engine = engine
        self._tags_of = tags_of
        self._guard_misses = guard_misses
        self._read_at: dict[str, TagVersions] = {}

    def _tags(self, key: str) -> list[str]:
        own: Sequence[str] = self._tags_of(key) if self._tags_of is not None else ()
        return [*own, key_tag(key)]

    async def _get(self, key: str, encoding: str | None = None, _conn: Any = None) -> Any:
        entry = await self.engine.get_entry(key)
        if entry is not None:
            return entry.value
        if not self._guard_misses:
            return None
        read_at = self._read_at
        if key not in read_at:  # keep the oldest: a store after either miss is then safe
            if len(read_at) >= _MISSES_REMEMBERED:
                read_at.clear()  # bounded: a later store reads current versions instead
            read_at[key] = await self.engine.tag_versions(self._tags(key))
        return None

    async def _gets(self, key: str, encoding: str | None = None, _conn: Any = None) -> Any:
        raise NotImplementedError("no compare-and-set across two tiers and many instances")

    async def _multi_get(
        self, keys: Sequence[str], encoding: str | None = None, _conn: Any = None
    ) -> list[Any]:
        return list(await asyncio.gather(*(self._get(key) for key in keys)))

    async def _set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        _cas_token: Any = None,
        _conn: Any = None,
    ) -> bool:
        if _cas_token is not None:
            raise NotImplementedError("no compare-and-set across two tiers and many instances")
        versions = self._read_at.pop(key, None)
        if versions is None:
            versions = await self.engine.tag_versions(self._tags(key))
        await self.engine.set_entry(key, value, versions, ttl=ttl)
        return True

    async def _multi_set(
        self, pairs: Iterable[tuple[str, Any]], ttl: float | None = None, _conn: Any = None
    ) -> bool:
        for key, value in pairs:
            await self._set(key, value, ttl)
        return True

    async def _add(self, key: str, value: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        if await self._exists(key):
            raise ValueError(f"Key {key} already exists, use .set to update the value")
        return await self._set(key, value, ttl)

    async def _exists(self, key: str, _conn: Any = None) -> bool:
        return await self.engine.get_entry(key) is not None

    async def _delete(self, key: str, _conn: Any = None) -> int:
        existed = await self._exists(key)
        await self.engine.invalidate([key_tag(key)])
        return int(existed)

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        """Drops everything the engine holds (its global tag), on every instance."""
        if namespace is not None:
            raise NotImplementedError("values are dropped by tag, not by key prefix")
        await self.engine.invalidate([GLOBAL_TAG])
        return True

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> int:
        raise NotImplementedError("entries are versioned snapshots, not counters")

    async def _expire(self, key: str, ttl: float | None, _conn: Any = None) -> bool:
        raise NotImplementedError("an entry's TTL is fixed when it is stored")

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the tiered backend has no raw commands")

    async def _redlock_release(self, key: str, value: Any) -> int:
        raise NotImplementedError("no locks across two tiers")

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: the engine belongs to the app, which closes it."""
