"""Redis answering reads but refusing writes (full under noeviction, a read-only replica):
an invalidation it refused stays pending, and nothing it covers is served from either
tier, until its bump is applied (SPEC 6.7, 6.10; issue 13 item 2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from cache import TieredCache
from tests.cache.conftest import MakeCache, Source, eventually, own_tag
from tests.support.redis_server import RedisServer, fill_until_refused, free_port

FAULTS = {"redis_timeout_ms": 1000, "breaker_reset_seconds": 0.05, "degraded_l1_ttl": 30.0}


async def _tag_version(client: aioredis.Redis, cache: TieredCache, tag: str) -> object:
    tier = cache.redis_tier
    assert tier is not None
    value = await client.get(tier.keys.tag(tag))
    assert value is not None
    return value


def _loader(source: Source, key: str) -> Callable[[], Awaitable[Any]]:
    async def load() -> Any:
        return (await source.load([key]))[key]

    return load


async def _check_refused_bump_stays_pending(
    make_cache: MakeCache, server: RedisServer, refuse: str
) -> None:
    client = aioredis.Redis.from_url(server.url)
    try:
        source = Source({"k": "old", "other": "o1"})
        cache = await make_cache(redis_url=server.url, **FAULTS)
        assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "old"}
        before = await _tag_version(client, cache, "k")

        if refuse == "oom":
            await fill_until_refused(client)
        else:  # a replica of a dead primary refuses every write
            await client.replicaof("127.0.0.1", free_port())
        source.data["k"] = "new"
        assert await cache.invalidate(["k"]) == 1
        assert cache.stats["pending_invalidations"] == 1
        for _ in range(5):
            # First a read round trip that succeeds and names "k" (another key depending on
            # it): its reply must not bring Redis's un-bumped version of "k" back into the
            # view, where it would validate the old L1 entry of "k" again.
            await cache.get_many_or_load(["other"], source.load, tags=lambda _: ["k"])
            assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
            assert await cache.get_or_load("k", _loader(source, "k"), tags=["k"]) == "new"
        assert await _tag_version(client, cache, "k") == before  # still refused
        assert cache.stats["breaker_state"] != "closed"  # a refused write is a failure

        if refuse == "oom":
            await client.config_set("maxmemory", "0")
        else:
            await client.replicaof("NO", "ONE")
        await eventually(lambda: cache.stats["breaker_state"] == "closed", within=10)
        assert cache.stats["pending_invalidations"] == 0
        assert await _tag_version(client, cache, "k") != before  # the bump was applied
        assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
        # L2 is used again: a fresh engine reads the new value from Redis, not the source.
        other = await make_cache(redis_url=server.url)
        assert await other.get_many_or_load(["k"], Source().load, tags=own_tag) == {"k": "new"}
        assert other.stats["l2_hits"] == 1
    finally:
        await client.aclose()


async def test_a_bump_refused_by_a_full_redis_stays_pending(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    await _check_refused_bump_stays_pending(make_cache, redis_server, "oom")


async def test_a_bump_refused_by_a_read_only_redis_stays_pending(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    await _check_refused_bump_stays_pending(make_cache, redis_server, "readonly")


async def test_a_pending_tag_hides_l2_entries_while_redis_answers(make_cache: MakeCache) -> None:
    """The state of an instance between learning of an invalidation Redis has not applied
    (a relay reading an unapplied outbox row, a bump that raced a recovering Redis) and
    applying it: Redis answers, still with the old entry and version, and must not be
    believed for what the pending tag covers."""
    writer = await make_cache()
    assert await writer.get_many_or_load(["k"], Source({"k": "old"}).load, tags=own_tag) == {
        "k": "old"
    }  # in L2
    reader = await make_cache()
    reader._view.pending.mark(["k"])  # the relay's first step for a row naming "k"
    source = Source({"k": "new"})
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    assert reader.stats["l2_hits"] == 0


async def test_the_breaker_stays_open_while_redis_refuses_the_pending_bumps(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """Redis answers a ping but refuses the pending bump: the probe must not close the
    breaker (it is the replay, not a ping), or the instance would trust Redis again, flush
    L1 and reopen, over and over, while Redis still has the old versions."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        source = Source({"k": "old"})
        cache = await make_cache(
            redis_url=redis_server.url, **{**FAULTS, "breaker_reset_seconds": 30.0}
        )
        await cache.get_many_or_load(["k"], source.load, tags=own_tag)
        await fill_until_refused(client)
        source.data["k"] = "new"
        await cache.invalidate(["k"])
        for _ in range(3):  # each check() probes now
            assert await cache.check() == "degraded"
        assert cache.stats["breaker_closed"] == 0
        assert cache.stats["pending_invalidations"] == 1

        await client.config_set("maxmemory", "0")
        assert await cache.check() == "ok"
        assert cache.stats["pending_invalidations"] == 0
    finally:
        await client.aclose()
