"""Cross-instance L1 coherence through the invalidation broadcast (SPEC 6.7)."""

from __future__ import annotations

import asyncio
import statistics
import time

import redis.asyncio as aioredis

from tests.cache.conftest import MakeCache, SlowSource, Source, eventually, own_tag
from tests.support.redis_server import RedisServer


async def test_other_instance_drops_its_l1_copy_within_milliseconds(
    make_cache: MakeCache,
) -> None:
    writer = await make_cache()
    reader = await make_cache()
    windows: list[float] = []
    for round_number in range(20):
        key = f"k{round_number}"
        source = Source({key: "old"})
        await writer.get_many_or_load([key], source.load, tags=own_tag)
        await reader.get_many_or_load([key], source.load, tags=own_tag)
        hits = reader.stats["l1_hits"]
        assert await reader.get_many_or_load([key], source.load, tags=own_tag) == {key: "old"}
        assert reader.stats["l1_hits"] == hits + 1  # the reader really holds it in L1

        source.data[key] = "new"
        await writer.invalidate([key])
        invalidated_at = time.perf_counter()
        received = reader.stats["invalidations_received"]
        await eventually(lambda: reader.stats["invalidations_received"] > received)  # noqa: B023
        windows.append(time.perf_counter() - invalidated_at)
        assert await reader.get_many_or_load([key], source.load, tags=own_tag) == {key: "new"}
    windows.sort()
    print(
        f"\ncross-instance window: median {statistics.median(windows) * 1000:.2f} ms, "
        f"max {windows[-1] * 1000:.2f} ms"
    )
    assert statistics.median(windows) < 0.05


async def test_lost_broadcast_flushes_l1_and_reconnects(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    cache = await make_cache(redis_url=redis_server.url)
    source = Source({"k": 1})
    await cache.get_many_or_load(["k"], source.load, tags=own_tag)
    assert cache.broadcast_connected
    flushes = cache.stats["l1_flushes"]

    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    await eventually(lambda: cache.stats["broadcast_lost"] == 1)
    await eventually(lambda: cache.stats["broadcast_connects"] == 2)
    assert cache.stats["l1_flushes"] >= flushes + 2  # on the loss and on the resubscribe
    assert cache.stats["l1_size"] == 0
    assert cache.broadcast_connected
    # Served again from L2 (its entries are still valid), then from L1.
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": 1}
    assert source.reads == 1


async def test_invalidation_after_resubscribe_still_reaches_the_other_instance(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    writer = await make_cache(redis_url=redis_server.url)
    reader = await make_cache(redis_url=redis_server.url)
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    await eventually(lambda: reader.stats["broadcast_connects"] == 2)
    await eventually(lambda: writer.stats["broadcast_connects"] == 2)
    source = Source({"k": "old"})
    await reader.get_many_or_load(["k"], source.load, tags=own_tag)
    source.data["k"] = "new"
    await writer.invalidate(["k"])
    await eventually(lambda: reader.stats["invalidations_received"] >= 1)
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


async def test_close_returns_while_the_broadcast_is_being_lost(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    # Redis going away as the app shuts down: the listener is cancelled while it closes
    # its lost connection. It must stop, not swallow the cancellation and reconnect forever.
    engine = await make_cache(redis_url=redis_server.url)
    redis_server.stop()
    await eventually(lambda: not engine.broadcast_connected)
    await asyncio.wait_for(engine.close(), timeout=5)


async def test_a_load_in_flight_across_an_l1_flush_does_not_fill_l1(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """A flush (here: the broadcast lost, then back) says that invalidations may have been
    missed up to that point. A load that read its source before the flush may answer its
    caller, but it may not fill L1, even once the view has learnt the same versions again
    from Redis: only what is loaded after a flush is known to postdate it."""
    cache = await make_cache(redis_url=redis_server.url)
    slow = SlowSource({"k": "old"})
    loading = asyncio.create_task(cache.get_many_or_load(["k"], slow.load, tags=own_tag))
    await slow.has_read.wait()
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    await eventually(lambda: cache.stats["broadcast_connects"] == 2, within=5)
    # Another key depending on "k": its read puts k's (unchanged) version back in the view.
    await cache.get_many_or_load(["j"], Source({"j": 1}).load, tags=lambda _: ["k"])
    rejected = cache.stats["l1_stale_rejected"]
    slow.release.set()
    assert await loading == {"k": "old"}
    assert cache.stats["l1_stale_rejected"] == rejected + 1
    hits = cache.stats["l1_hits"]
    assert await cache.get_many_or_load(["k"], Source().load, tags=own_tag) == {"k": "old"}
    assert cache.stats["l1_hits"] == hits  # from L2: the old load left nothing in L1
