"""Invalidation while one Redis is away or slow: the local half of an invalidation must do
its work by itself, before any Redis call (stop and CLIENT PAUSE act on one server, so
these run on a single Redis; the cluster's node faults are in test_cluster.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from tests.cache.conftest import MakeCache, SlowSource, Source, own_tag
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server that keeps its data across a stop (AOF, fsync always)."""
    server = RedisServer(durable=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_a_read_after_a_queued_invalidation_does_not_join_an_older_load(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """As above with Redis away, so that no broadcast of the bump (which also detaches
    flights, on every instance) can come to the rescue: the invalidation itself must."""
    source = SlowSource({"k": "old"})
    cache = await make_cache(redis_url=redis_server.url, redis_timeout_ms=100)
    before = asyncio.create_task(cache.get_many_or_load(["k"], source.load, tags=own_tag))
    await source.has_read.wait()
    redis_server.stop()
    source.data["k"] = "new"
    await cache.invalidate(["k"])
    assert cache.stats["pending_invalidations"] == 1
    fresh = Source(source.data)
    after = await asyncio.wait_for(cache.get_many_or_load(["k"], fresh.load, tags=own_tag), 5)
    assert after == {"k": "new"}
    source.release.set()
    assert await before == {"k": "old"}  # concurrent with the write: allowed


async def test_the_writer_stops_serving_what_it_invalidates_before_redis_answers(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """The local half of an invalidation comes before any await: a request that starts
    while the bump is still on its way to a slow Redis (after the write committed) is not
    served the old L1 entry."""
    source = Source({"k": "old"})
    cache = await make_cache(redis_url=redis_server.url)
    await cache.get_many_or_load(["k"], source.load, tags=own_tag)  # in L1
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_pause(300, all=True)  # Redis slow: the bump waits
        source.data["k"] = "new"
        bump = asyncio.create_task(cache.invalidate(["k"]))
        await asyncio.sleep(0)  # the invalidation runs up to its Redis call
        assert not bump.done()
        assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
        assert await bump == 1
    finally:
        await admin.client_unpause()
        await admin.aclose()
