"""Faults of one Redis that keeps its data (killed and restarted, frozen and thawed,
paused): the fault servers themselves, invalidations queued while a probe is in flight,
and the local half of an invalidation doing its work before any Redis call. They act on
one server, so they run on a single Redis; the cluster's node faults are in
test_cluster.py."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from tests.cache.conftest import FAST_FAULTS, MakeCache, SlowSource, Source, eventually, own_tag
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(durable_redis: RedisServer) -> RedisServer:
    """One redis-server of this test's own, whatever L2 kind the suite runs."""
    return durable_redis


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


async def test_the_fault_servers_keep_their_data(redis_server: RedisServer) -> None:
    """What the fault tests rely on: a killed then restarted, or a frozen then thawed,
    test Redis still has what it answered before."""

    def client() -> aioredis.Redis:
        return aioredis.Redis.from_url(redis_server.url)  # a restart closes connections

    async with client() as before:
        await before.set("kept", "1")
    redis_server.stop()
    redis_server.start()
    async with client() as after:
        await after.set("after-restart", "2")
    redis_server.freeze()
    redis_server.thaw()
    async with client() as thawed:
        assert await thawed.mget("kept", "after-restart") == [b"1", b"2"]


async def test_an_invalidation_queued_during_the_probe_is_replayed_without_traffic(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """Found by the stateful test: a write whose bump fails while the probe is in flight
    (the breaker half-open) is queued; the probe replays what was pending when it began,
    closes the breaker, and the later invalidation used to wait for this instance's next
    Redis call. An idle writer then left every other instance stale."""
    source = Source({"a": "old", "b": "old"})
    writer = await make_cache(
        redis_url=redis_server.url, **{**FAST_FAULTS, "breaker_reset_seconds": 30.0}
    )
    reader = await make_cache(redis_url=redis_server.url)
    await writer.get_many_or_load(["a", "b"], source.load, tags=own_tag)  # both in L2

    redis_server.freeze()
    source.data.update(a="new", b="new")
    await writer.invalidate(["a"])  # times out: pending, breaker open
    sent = writer.stats["redis_round_trips"]
    probing = asyncio.create_task(writer.check())
    # The probe has taken what is pending ("a") and sent its bump, which waits on Redis.
    await eventually(lambda: writer.stats["redis_round_trips"] > sent)
    await writer.invalidate(["b"])  # the breaker is half-open: queued
    redis_server.thaw()
    await probing

    # No traffic on the writer from here on.
    await eventually(lambda: writer.stats["pending_invalidations"] == 0, within=5)
    await eventually(lambda: reader.stats["invalidations_received"] >= 2, within=5)
    got = await reader.get_many_or_load(["a", "b"], source.load, tags=own_tag)
    assert got == {"a": "new", "b": "new"}
