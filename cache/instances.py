"""Presence records: one short-lived Redis key per running process, so a tool or a page
can see every live instance sharing the cache. Domain-free: a record is opaque bytes.

    board = InstanceBoard(cache, ttl_s=6.0)      # a started TieredCache with Redis
    await board.publish("a1b2c3d4", b"{...}")    # True when Redis took it
    await board.records(timeout_s=1.0)           # {instance id: bytes}, live ones only
    await board.withdraw("a1b2c3d4")             # on a clean shutdown

Each record lives under ``<prefix>i:<id>`` with a TTL, so a process that dies vanishes
on its own. Readers find the ids in one index set (``<prefix>instances``) rather than by
SCAN: a SCAN for a few instance keys would walk every cache entry of the namespace. Every
command touches one key, so the same calls work on a Redis Cluster, where the records and
the index may sit on different nodes (redis-py's cluster pipeline splits them by node).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Final, TypeVar

from redis.asyncio.client import Pipeline

from cache.engine import TieredCache
from cache.health import REDIS_FAILURES
from cache.redis_tier import L2Tier

T = TypeVar("T")

# The index outlives any record by far, and every publish renews it; ids whose record has
# expired are dropped by whoever reads the index next.
_INDEX_TTL_FACTOR: Final = 20
MAX_INSTANCES: Final = 1000


class InstanceBoard:
    def __init__(self, cache: TieredCache, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._cache = cache
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._deadline_s = cache.config.redis_timeout_ms / 1000

    def _redis(self) -> L2Tier | None:
        redis = self._cache.redis_tier
        if redis is None or self._cache.stats["breaker_state"] == "open":
            return None  # Redis is away: skipped, never waited on
        return redis

    @staticmethod
    def _key(redis: L2Tier, instance_id: str) -> str:
        return f"{redis.keys.prefix}i:{instance_id}"

    @staticmethod
    def _index(redis: L2Tier) -> str:
        return f"{redis.keys.prefix}instances"

    @staticmethod
    async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
        async with asyncio.timeout(seconds):
            return await awaitable

    async def publish(self, instance_id: str, record: bytes) -> bool:
        """Writes this instance's record (and renews the index) under the engine's Redis
        deadline; False, without raising, when Redis is away or slow."""
        redis = self._redis()
        if redis is None:
            return False
        index = self._index(redis)
        pipe: Pipeline = redis.client.pipeline(transaction=False)
        pipe.set(self._key(redis, instance_id), record, px=self._ttl_ms)
        pipe.sadd(index, instance_id)
        pipe.pexpire(index, self._ttl_ms * _INDEX_TTL_FACTOR)
        try:
            await self._within(self._deadline_s, pipe.execute())
        except REDIS_FAILURES:
            return False
        return True

    async def withdraw(self, instance_id: str) -> None:
        """Removes the record at once (a clean stop); quietly nothing when Redis is away."""
        redis = self._redis()
        if redis is None:
            return
        pipe: Pipeline = redis.client.pipeline(transaction=False)
        pipe.delete(self._key(redis, instance_id))
        pipe.srem(self._index(redis), instance_id)
        with contextlib.suppress(*REDIS_FAILURES):
            await self._within(max(self._deadline_s, 0.2), pipe.execute())

    async def records(self, timeout_s: float) -> dict[str, bytes]:
        """Every live record by instance id (at most MAX_INSTANCES); ids whose record has
        expired leave the index. Raises the Redis error (or RuntimeError without Redis):
        a reader must be able to say the view is incomplete."""
        redis = self._cache.redis_tier
        if redis is None:
            raise RuntimeError("this cache has no Redis tier (memory-only or not started)")
        index = self._index(redis)
        members = await self._within(timeout_s, redis.client.smembers(index))
        ids = sorted(_text(member) for member in members)[:MAX_INSTANCES]
        if not ids:
            return {}
        pipe: Pipeline = redis.client.pipeline(transaction=False)
        for instance_id in ids:
            pipe.get(self._key(redis, instance_id))
        values = await self._within(timeout_s, pipe.execute())
        gone = [i for i, value in zip(ids, values, strict=True) if value is None]
        if gone:
            await self._within(timeout_s, redis.client.srem(index, *gone))
        return {i: bytes(value) for i, value in zip(ids, values, strict=True) if value}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
