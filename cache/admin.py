"""Operator helpers for a ``strata cache`` CLI: list, inspect, flush, summarize. Domain-free.

Every Redis call here runs under a deadline and never uses ``KEYS``: listings walk the
namespace with ``SCAN ... COUNT`` (redis-py's ``scan_iter``) and stop at a bound, so they
never block Redis.

    admin = CacheAdmin(cache)                      # a started TieredCache with Redis
    await admin.scan_entries(pattern="User:*", tag="User:1", limit=50)  # [KeyInfo]
    await admin.count_entries(pattern="User:*")   # (count, complete)
    await admin.inspect("User:1")                  # Inspection
    await admin.invalidate(["User:1"])             # same as cache.invalidate
    await admin.flush(delete_keys=True)            # FlushResult
    await admin.redis_summary()                    # dict
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, TypeVar

from redis.asyncio.cluster import RedisCluster

from cache.codec import EntryCodec, IntegrityError, tags_in
from cache.engine import TieredCache
from cache.keys import GLOBAL_TAG
from cache.redis_tier import L2Tier

T = TypeVar("T")

_SCAN_COUNT: Final = 500
_HEAD_PEEK: Final = 4096
_GLOB_SPECIAL: Final = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key: str
    """The cache key (without the namespace prefix)."""
    size_bytes: int
    ttl_seconds: float | None
    """Time left; ``None`` if the key has no TTL (never written so by the engine)."""
    tags: tuple[str, ...]
    """From the entry's stamps, unverified (``inspect`` verifies)."""


@dataclass(frozen=True, slots=True)
class TagState:
    tag: str
    recorded: int
    """The version the entry was computed at."""
    current: int | None
    """The version in Redis now; ``None`` if the version key is gone (the entry is dead)."""

    @property
    def valid(self) -> bool:
        return self.recorded == self.current


@dataclass(frozen=True, slots=True)
class Inspection:
    key: str
    redis_key: str
    exists: bool
    size_bytes: int = 0
    ttl_seconds: float | None = None
    integrity_ok: bool = False
    integrity_error: str | None = None
    """Why the entry failed its HMAC check or did not decode (it would be a miss)."""
    found: bool = False
    """False for the cached "does not exist" sentinel."""
    value: Any = None
    tags: tuple[TagState, ...] = ()
    expires_at_ms: int = 0
    valid: bool = False
    """Would a read serve it now: it exists, verifies, and every tag is at its version."""


@dataclass(frozen=True, slots=True)
class FlushResult:
    global_tag_invalidated: bool
    deleted_keys: int = 0
    scanned_keys: int = 0


@dataclass(slots=True)
class _Scan:
    keys: list[bytes] = field(default_factory=list)
    complete: bool = True


class CacheAdmin:
    def __init__(self, cache: TieredCache, timeout_s: float | None = None) -> None:
        self._cache = cache
        # An operator tool: a per-call deadline well above the request path's.
        self._timeout_s = timeout_s or max(cache.config.redis_timeout_ms / 1000, 2.0)
        self._codec = EntryCodec(cache.config.secret)

    @property
    def _redis(self) -> L2Tier:
        redis = self._cache.redis_tier  # the engine's own: same pool, same key space
        if redis is None:
            raise RuntimeError("this cache has no Redis tier (memory-only or not started)")
        return redis

    async def _call(self, awaitable: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout_s):
            return await awaitable

    async def _chunks(self, match: str, size: int) -> AsyncGenerator[list[bytes], None]:
        """Keys matching ``match`` in lists of up to ``size``, by SCAN with COUNT ``size``
        (never KEYS); each SCAN under the deadline."""
        names = self._redis.client.scan_iter(match=match, count=size)
        chunk: list[bytes] = []
        while True:
            try:
                name = await self._call(anext(names))
            except StopAsyncIteration:
                break
            chunk.append(_as_bytes(name))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def _scan(self, match: str, max_keys: int) -> _Scan:
        """Up to ``max_keys`` keys matching ``match``; ``complete`` if that was all."""
        out = _Scan()
        async with aclosing(self._chunks(match, _SCAN_COUNT)) as chunks:
            async for chunk in chunks:
                if len(out.keys) + len(chunk) > max_keys:
                    out.keys.extend(chunk[: max_keys - len(out.keys)])
                    out.complete = False
                    break
                out.keys.extend(chunk)
        return out

    # -- listing ------------------------------------------------------------------------

    async def scan_entries(
        self,
        pattern: str | None = None,
        tag: str | None = None,
        limit: int = 100,
        max_scanned: int = 100_000,
    ) -> list[KeyInfo]:
        """Entries whose cache key matches the glob ``pattern`` (all when ``None``) and,
        if ``tag`` is given, that depend on it; at most ``limit`` of them, after looking at
        no more than ``max_scanned`` keys."""
        redis = self._redis
        prefix = redis.keys.entry_prefix
        match = _glob_escape(prefix) + (pattern or "*")
        client = redis.client
        found: list[KeyInfo] = []
        scanned = 0
        async with aclosing(self._chunks(match, _SCAN_COUNT)) as chunks:
            async for batch in chunks:
                scanned += len(batch)
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.getrange(name, 0, _HEAD_PEEK - 1)
                    pipe.strlen(name)
                    pipe.pttl(name)
                replies = await self._call(pipe.execute())
                for index, name in enumerate(batch):
                    head, size, pttl = replies[3 * index : 3 * index + 3]
                    if not size:
                        continue  # expired between SCAN and now
                    tags = tags_in(head)
                    if not tags and len(head) >= _HEAD_PEEK:  # stamps longer than the peek
                        whole: bytes | str | None = await self._call(client.get(name))
                        tags = tags_in(_as_bytes(whole or b""))
                    if tag is not None and tag not in tags:
                        continue
                    found.append(
                        KeyInfo(
                            key=name.decode()[len(prefix) :],
                            size_bytes=int(size),
                            ttl_seconds=pttl / 1000 if pttl >= 0 else None,
                            tags=tags,
                        )
                    )
                    if len(found) >= limit:
                        break
                if len(found) >= limit or scanned >= max_scanned:
                    break
        return found

    async def count_entries(
        self, pattern: str | None = None, max_scanned: int = 1_000_000
    ) -> tuple[int, bool]:
        """How many entries' cache keys match the glob ``pattern`` (all when ``None``), by
        SCAN over key names only; and whether that is all of them (False when it stopped
        at ``max_scanned``)."""
        redis = self._redis
        match = _glob_escape(redis.keys.entry_prefix) + (pattern or "*")
        scan = await self._scan(match, max_scanned)
        return len(scan.keys), scan.complete

    # -- one entry ----------------------------------------------------------------------

    async def inspect(self, key: str) -> Inspection:
        """The entry of ``key`` decoded and verified, its tags with recorded and current
        versions, whether a read would serve it, its TTL and size."""
        redis = self._redis
        redis_key = redis.keys.entry(key)
        pipe = redis.client.pipeline(transaction=False)
        pipe.get(redis_key)
        pipe.pttl(redis_key)
        blob, pttl = await self._call(pipe.execute())
        if blob is None:
            return Inspection(key=key, redis_key=redis_key, exists=False)
        present = partial(
            Inspection,
            key=key,
            redis_key=redis_key,
            exists=True,
            size_bytes=len(blob),
            ttl_seconds=pttl / 1000 if pttl >= 0 else None,
        )
        try:
            entry, expires_at_ms = self._codec.decode_timed(redis_key.encode(), blob)
        except IntegrityError as error:
            return present(
                integrity_error=str(error),
                tags=tuple(TagState(tag, 0, None) for tag in tags_in(blob)),
            )
        tags = entry.tags
        current: list[Any] = []
        if tags:
            names = [redis.keys.tag(tag) for tag in tags]
            client = redis.client
            # On a cluster the versions live on several slots: one MGET per slot.
            mget = client.mget_nonatomic if isinstance(client, RedisCluster) else client.mget
            current = await self._call(mget(names))
        states = tuple(
            TagState(tag, recorded, None if now is None else int(now))
            for (tag, recorded), now in zip(entry.versions, current, strict=True)
        )
        return present(
            integrity_ok=True,
            found=entry.found,
            value=entry.value,
            tags=states,
            expires_at_ms=expires_at_ms,
            valid=all(state.valid for state in states),
        )

    # -- invalidation -------------------------------------------------------------------

    async def invalidate(self, tags: Iterable[str]) -> int:
        """Same as :meth:`TieredCache.invalidate` (both tiers, every instance)."""
        return await self._cache.invalidate(tags)

    async def flush(self, delete_keys: bool = False, batch: int = 500) -> FlushResult:
        """Drops the whole namespace: invalidates the global tag, which every entry depends
        on (instant, one round trip, every instance). With ``delete_keys`` also reclaims
        the memory: SCAN the namespace and UNLINK in batches (version keys too; a missing
        version key comes back above every recorded one, so this is safe)."""
        await self._cache.invalidate([GLOBAL_TAG])
        if not delete_keys:
            return FlushResult(global_tag_invalidated=True)
        redis = self._redis
        match = _glob_escape(redis.keys.prefix) + "*"
        deleted = scanned = 0
        async for names in self._chunks(match, batch):
            scanned += len(names)
            deleted += int(await self._call(redis.client.unlink(*names)))
        return FlushResult(global_tag_invalidated=True, deleted_keys=deleted, scanned_keys=scanned)

    # -- summary ------------------------------------------------------------------------

    async def redis_summary(self, max_scanned: int = 1_000_000) -> dict[str, Any]:
        """Redis memory, the namespace's key counts (by SCAN, bounded), and the engine's
        hit/miss counters from this process."""
        redis = self._redis
        memory = await self._memory(redis.client)
        scan = await self._scan(_glob_escape(redis.keys.prefix) + "*", max_scanned)
        entry_prefix = redis.keys.entry_prefix.encode()
        tag_prefix = redis.keys.tag_prefix.encode()
        entries = sum(1 for name in scan.keys if name.startswith(entry_prefix))
        tags = sum(1 for name in scan.keys if name.startswith(tag_prefix))
        stats = self._cache.stats
        l1_total = stats["l1_hits"] + stats["l1_misses"]
        l2_total = stats["l2_hits"] + stats["l2_misses"]
        return {
            "status": self._cache.status,
            "namespace": self._cache.config.namespace,
            "used_memory": int(memory.get("used_memory", 0)),
            "used_memory_human": str(memory.get("used_memory_human", "")),
            "maxmemory": int(memory.get("maxmemory", 0)),
            "maxmemory_policy": str(memory.get("maxmemory_policy", "")),
            "namespace_keys": len(scan.keys),
            "namespace_keys_complete": scan.complete,
            "entry_keys": entries,
            "tag_version_keys": tags,
            "l1_hits": stats["l1_hits"],
            "l1_misses": stats["l1_misses"],
            "l1_hit_ratio": stats["l1_hits"] / l1_total if l1_total else None,
            "l2_hits": stats["l2_hits"],
            "l2_misses": stats["l2_misses"],
            "l2_hit_ratio": stats["l2_hits"] / l2_total if l2_total else None,
            "integrity_failures": stats["integrity_failures"],
            "redis_round_trips": stats["redis_round_trips"],
        }

    async def _memory(self, client: Any) -> dict[str, Any]:
        """``INFO memory``; on a cluster, summed over the masters (the policy is the
        first master's: a cluster's nodes are configured alike)."""
        if not isinstance(client, RedisCluster):
            single: dict[str, Any] = await self._call(client.info("memory"))
            return single
        per_node = await self._call(client.info("memory", target_nodes=RedisCluster.PRIMARIES))
        infos = list(per_node.values())
        used = sum(int(info.get("used_memory", 0)) for info in infos)
        return {
            "used_memory": used,
            "used_memory_human": f"{used / 2**20:.2f}M",
            "maxmemory": sum(int(info.get("maxmemory", 0)) for info in infos),
            "maxmemory_policy": infos[0].get("maxmemory_policy", "") if infos else "",
        }


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
