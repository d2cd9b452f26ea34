"""Redis down, slow or flushed never fails a read and never serves stale data (SPEC 6.10)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from tests.cache.conftest import FAST_FAULTS, MakeCache, Source, eventually, own_tag
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.l2_both


async def test_reads_survive_a_redis_outage_and_l2_resumes(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    source = Source({"a": "a1", "b": "b1", **{f"n{i}": i for i in range(5)}})
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "a1"}

    redis_server.stop()
    for index in range(5):  # every read a miss somewhere: right values, no exception
        got = await cache.get_many_or_load(["a", "b", f"n{index}"], source.load, tags=own_tag)
        assert got == {"a": "a1", "b": "b1", f"n{index}": index}
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] >= 2
    assert stats["breaker_opened"] == 1
    assert stats["redis_skipped"] >= 1
    assert cache.status == "degraded"
    await eventually(lambda: not cache.broadcast_connected)

    # While degraded, L1 TTLs are capped: the value loaded now expires from L1 quickly.
    source.data["b"] = "b2"
    await asyncio.sleep(FAST_FAULTS["degraded_l1_ttl"] + 0.1)
    assert await cache.get_many_or_load(["b"], source.load, tags=own_tag) == {"b": "b2"}

    redis_server.start()
    flushes = cache.stats["l1_flushes"]

    async def read_until_closed() -> bool:
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
        return bool(cache.stats["breaker_state"] == "closed")

    deadline = time.monotonic() + 5
    while not await read_until_closed():
        assert time.monotonic() < deadline, "breaker never closed"
        await asyncio.sleep(0.02)
    assert cache.stats["l1_flushes"] > flushes  # L1 flushed on recovery
    await eventually(lambda: cache.broadcast_connected, within=5)
    # L2 is used again by itself: a miss fills Redis, a second engine reads it from there.
    await cache.get_many_or_load(["c"], Source({"c": "c1"}).load, tags=own_tag)
    other = await make_cache(redis_url=redis_server.url)
    got = await other.get_many_or_load(["c"], Source().load, tags=own_tag)
    assert got == {"c": "c1"}
    assert other.stats["l2_hits"] == 1


async def test_invalidation_during_an_outage_is_replayed_before_l2_is_trusted(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    source = Source({"k": "old"})
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    await cache.get_many_or_load(["k"], source.load, tags=own_tag)  # in L1 and L2

    redis_server.stop()
    source.data["k"] = "new"
    assert await cache.invalidate(["k"]) == 1  # never raises
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    assert cache.stats["pending_invalidations"] >= 1

    redis_server.start()  # with its data (AOF): the old entry is still there
    await eventually(lambda: cache.broadcast_connected, within=5)
    deadline = time.monotonic() + 5
    while cache.stats["pending_invalidations"]:
        await cache.get_many_or_load(["k"], source.load, tags=own_tag)
        assert time.monotonic() < deadline, "pending invalidation never replayed"
        await asyncio.sleep(0.02)
    other = await make_cache(redis_url=redis_server.url)
    assert await other.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


async def test_pending_invalidation_hides_the_old_l2_entry_before_replay(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """Redis answers reads again but the invalidation has not been replayed yet: the old
    entry in Redis must not be served meanwhile."""
    source = Source({"k": "old"})
    cache = await make_cache(
        redis_url=redis_server.url, **{**FAST_FAULTS, "breaker_failure_threshold": 100}
    )
    await cache.get_many_or_load(["k"], source.load, tags=own_tag)
    redis_server.stop()
    source.data["k"] = "new"
    await cache.invalidate(["k"])
    redis_server.start()
    for _ in range(10):
        assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


async def test_slow_redis_costs_a_timeout_not_a_failure(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    source = Source({f"k{i}": i for i in range(5)})
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_pause(600, all=True)
        started = time.perf_counter()
        got = await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
        elapsed = time.perf_counter() - started
    finally:
        await admin.client_unpause()
        await admin.aclose()
    assert got == source.data
    assert elapsed < 0.4  # the 50 ms deadline, not the 600 ms pause
    assert cache.stats["redis_timeouts"] >= 1


async def test_flushall_loses_entries_and_versions_but_not_correctness(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    source = Source({"k": "old"})
    first = await make_cache(redis_url=redis_server.url)
    second = await make_cache(redis_url=redis_server.url)
    await first.get_many_or_load(["k"], source.load, tags=own_tag)
    await second.get_many_or_load(["k"], source.load, tags=own_tag)
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.flushall()
    finally:
        await admin.aclose()
    source.data["k"] = "new"
    await first.invalidate(["k"])
    await eventually(lambda: second.stats["invalidations_received"] >= 1)
    for cache in (first, second):
        assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    third = await make_cache(redis_url=redis_server.url)
    assert await third.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


async def test_engine_starts_while_redis_is_down(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    redis_server.stop()
    source = Source({"k": 1})
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    assert cache.status == "degraded"
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": 1}
    redis_server.start()
    await eventually(lambda: cache.broadcast_connected, within=5)


async def test_an_idle_instance_reports_ok_again_when_redis_returns(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    # A long reset delay: only check() (or the background loop, much later) may probe.
    cache = await make_cache(
        redis_url=redis_server.url, **{**FAST_FAULTS, "breaker_reset_seconds": 30.0}
    )
    source = Source({f"n{i}": i for i in range(3)})
    redis_server.stop()
    for index in range(3):  # L1 misses, so each one tries Redis: trips the breaker
        await cache.get_many_or_load([f"n{index}"], source.load, tags=own_tag)
    assert cache.stats["breaker_state"] == "open"
    assert await cache.check() == "degraded"  # probed now, Redis still away

    redis_server.start()
    reads = source.reads
    deadline = time.monotonic() + 5
    while await cache.check() != "ok":  # no traffic at all: check() probes by itself
        assert time.monotonic() < deadline, f"still {cache.status}: {cache.stats}"
        await asyncio.sleep(0.05)
    assert cache.stats["breaker_state"] == "closed"
    assert source.reads == reads


async def test_the_background_loop_recovers_an_idle_instance(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    source = Source({f"n{i}": i for i in range(3)})
    redis_server.stop()
    for index in range(3):
        await cache.get_many_or_load([f"n{index}"], source.load, tags=own_tag)
    assert cache.status == "degraded"
    redis_server.start()
    await eventually(lambda: cache.status == "ok", within=5)  # nobody calls anything
    assert cache.stats["breaker_closed"] >= 1


async def test_connections_the_server_closed_are_replaced_without_an_error(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    # A server of the test's own: CLIENT KILL would also cut anyone else's connections.
    cache = await make_cache(redis_url=redis_server.url)
    admin = aioredis.Redis.from_url(redis_server.url)
    source = Source({f"n{i}": i for i in range(24)})

    async def concurrent_reads(first: int) -> None:
        keys = [f"n{i}" for i in range(first, first + 8)]
        await asyncio.gather(
            *(cache.get_many_or_load([key], source.load, tags=own_tag) for key in keys)
        )

    await concurrent_reads(0)  # several pooled connections, now idle
    await admin.client_kill_filter(_type="normal", skipme=True)
    await admin.aclose()
    await concurrent_reads(8)
    await concurrent_reads(16)
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] == 0, stats
    assert stats["breaker_state"] == "closed"


async def test_scripts_the_server_forgot_are_loaded_again(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """A Redis restart without persistence, or SCRIPT FLUSH, drops the loaded scripts; the
    next call loads its script again instead of failing (and falling back to the loader)."""
    cache = await make_cache(redis_url=redis_server.url, l1_max_entries=0)
    source = Source({"k": "v"})
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "v"}
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.script_flush()
    finally:
        await admin.aclose()
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "v"}
    assert source.reads == 1  # the second read was an L2 hit
    assert await cache.invalidate(["k"]) == 1
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] == 0, stats


async def test_calls_beyond_the_connection_cap_wait_for_a_connection(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    cache = await make_cache(redis_url=redis_server.url, l1_max_entries=0, redis_max_connections=2)
    source = Source({f"n{i}": i for i in range(40)})
    results = await asyncio.gather(
        *(cache.get_many_or_load([f"n{i}"], source.load, tags=own_tag) for i in range(40))
    )
    assert results == [{f"n{i}": i} for i in range(40)]
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] == 0, stats
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        # The engine's command connections (the broadcast listener is a pubsub client),
        # plus this admin connection.
        normal = await admin.client_list(_type="normal")
    finally:
        await admin.aclose()
    assert len(normal) - 1 <= 2, normal


async def test_a_composite_recorded_while_redis_was_away_is_stored_nowhere_shared(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    # Values loaded during an outage carry local (negative) tag versions. A composite built
    # from them and stored after Redis came back must neither fail the request nor reach
    # L2, where another instance could take it for current.
    cache = await make_cache(redis_url=redis_server.url, **FAST_FAULTS)
    redis_server.stop()
    with cache.recording() as rec:
        for _ in range(3):  # enough failures to open the breaker
            await cache.get_many_or_load(["a"], Source({"a": 1}).load, tags=own_tag)
    assert any(version < 0 for _, version in rec.tag_versions)
    redis_server.start()
    await eventually(lambda: cache.stats["breaker_state"] == "closed", within=5)
    await cache.set_entry("page", {"a": 1}, rec.tag_versions)
    other = await make_cache(redis_url=redis_server.url)
    assert await other.get_entry("page") is None
    stats = cache.stats
    assert stats["l2_stale_rejected"] >= 1


async def test_a_busy_process_does_not_blame_redis(make_cache: MakeCache) -> None:
    # The event loop is blocked past the Redis deadline while the reply arrives (a burst of
    # CPU-bound requests): the reply is taken, nothing counts as a Redis timeout, and the
    # breaker stays closed.
    source = Source({"a": 1})
    cache = await make_cache(l1_max_entries=0, redis_timeout_ms=50)
    await cache.get_many_or_load(["a"], source.load, tags=own_tag)
    asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # runs once the read is waiting
    assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": 1}
    assert cache.stats["redis_timeouts"] == 0
    assert cache.stats["l2_hits"] == 1


async def test_the_probe_that_closes_the_breaker_replays_the_pending_invalidations(
    make_cache: MakeCache, redis_server: RedisServer
) -> None:
    """No traffic on the writer after the outage: only the probe (here through check())
    can have sent the bump, and the breaker may close only once it has: another instance
    must then find the entry Redis kept from before the outage invalid."""
    source = Source({"k": "old"})
    writer = await make_cache(
        redis_url=redis_server.url, **{**FAST_FAULTS, "breaker_reset_seconds": 30.0}
    )
    reader = await make_cache(redis_url=redis_server.url)
    await writer.get_many_or_load(["k"], source.load, tags=own_tag)  # "old" in L2

    redis_server.stop()  # its AOF keeps the entry and the tag's version
    source.data["k"] = "new"
    await writer.invalidate(["k"])
    assert writer.stats["pending_invalidations"] == 1
    redis_server.start()

    deadline = time.monotonic() + 5
    while await writer.check() != "ok":  # probes now, whatever the reset delay
        assert time.monotonic() < deadline, f"still {writer.status}: {writer.stats}"
        await asyncio.sleep(0.02)
    assert writer.stats["pending_invalidations"] == 0
    await eventually(lambda: reader.broadcast_connected, within=5)
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
