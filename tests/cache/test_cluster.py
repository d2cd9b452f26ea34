"""What only a Redis Cluster has (SPEC 6.14a): detection, keys spread over the masters,
one round trip per node, a master down, and a slot migrating under the engine's feet.

Everything the engine guarantees on one Redis is proven on the cluster too, by the same
tests (``l2_both`` in test_reads, test_invalidation, test_engine, test_health, test_admin).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from cache import TieredCache
from cache import connections as connections_module
from cache.cluster_tier import ClusterTier
from cache.keys import KeySpace
from cache.redis_tier import RedisTier
from tests.cache.conftest import MakeCache, Source, config_for, eventually, own_tag
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer

FAST_FAULTS = {
    "redis_timeout_ms": 200,
    "breaker_failure_threshold": 2,
    "breaker_reset_seconds": 0.1,
    "degraded_l1_ttl": 0.3,
}


@pytest.fixture
def cluster(private_cluster: RedisClusterServers) -> RedisClusterServers:
    return private_cluster


@pytest.fixture
async def on_cluster(make_cache: MakeCache, cluster: RedisClusterServers) -> MakeCache:
    async def make(**overrides: Any) -> TieredCache:
        return await make_cache(redis_url=cluster.url, redis_cluster="on", **overrides)

    return make


def keys_on(server: RedisServer, prefix: str) -> list[bytes]:
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        return list(client.scan_iter(match=prefix + "*", count=1000))
    finally:
        client.close()


async def test_auto_detects_a_cluster_and_a_single_redis(
    redis_cluster: RedisClusterServers, redis_url: str, key_prefix: str
) -> None:
    for url, tier in ((redis_cluster.url, ClusterTier), (redis_url, RedisTier)):
        async with TieredCache(config_for(url, key_prefix, redis_cluster="auto")) as cache:
            assert isinstance(cache.redis_tier, tier)
            assert await cache.get_or_load("k", _value("v"), tags=["k"]) == "v"


async def test_values_and_tag_versions_spread_over_every_master(
    make_cache: MakeCache, redis_cluster: RedisClusterServers, key_prefix: str
) -> None:
    cache = await make_cache(redis_url=redis_cluster.url, redis_cluster="on")
    source = Source({f"k{i}": i for i in range(60)})
    await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
    keys = KeySpace(key_prefix)
    keys.spread_over_slots()
    assert "{" not in keys.prefix
    for server in redis_cluster.nodes:
        assert len(keys_on(server, keys.entry_prefix)) >= 5, server.port
        assert len(keys_on(server, keys.tag_prefix)) >= 5, server.port


async def test_a_batch_read_costs_one_round_trip_per_node(
    make_cache: MakeCache, redis_cluster: RedisClusterServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = await make_cache(redis_url=redis_cluster.url, redis_cluster="on", l1_max_entries=0)
    source = Source({f"k{i}": i for i in range(20)})
    await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)  # fills
    round_trips: list[int] = []
    original = connections_module._read_replies

    async def counted(connection: Any, count: int) -> list[Any]:
        round_trips.append(int(connection.port))
        return await original(connection, count)

    monkeypatch.setattr(connections_module, "_read_replies", counted)
    got = await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
    assert got == source.data
    assert cache.stats["l2_hits"] == 20
    assert sorted(round_trips) == sorted(set(round_trips))  # one per node
    assert len(round_trips) == len(redis_cluster.nodes)  # 20 keys and 21 tags reach all three


async def test_a_master_down_costs_its_keys_not_a_request(
    on_cluster: MakeCache, cluster: RedisClusterServers, key_prefix: str
) -> None:
    source = Source({f"k{i}": f"v{i}" for i in range(30)})
    reader = await on_cluster(l1_max_entries=0, **FAST_FAULTS)
    writer = await on_cluster(**FAST_FAULTS)
    await reader.get_many_or_load(list(source.data), source.load, tags=own_tag)
    keys = KeySpace(key_prefix)
    keys.spread_over_slots()
    star = cluster.master_of(keys.tag("*"))  # every read needs it: keep it up here
    down = next(node for node in cluster.nodes if node is not star)
    down_tags = [k for k in source.data if cluster.master_of(keys.tag(k)) is down]
    up_tags = [k for k in source.data if cluster.master_of(keys.tag(k)) is not down]
    assert down_tags
    assert up_tags
    down.stop()

    for _ in range(5):  # never an exception, always the right values
        got = await reader.get_many_or_load(list(source.data), source.load, tags=own_tag)
        assert got == source.data
    stats = reader.stats
    assert stats["l2_hits"] > 0  # the other masters still serve their keys
    assert stats["breaker_state"] == "closed"  # and are not skipped
    assert stats["node_breaker_opened"] == 1
    assert reader.status == "degraded"

    # Bumps reach the healthy masters at once; the others stay pending, not failed.
    for key in (down_tags[0], up_tags[0]):
        source.data[key] = "new"
    assert await writer.invalidate([down_tags[0], up_tags[0]]) == 2
    assert writer.stats["pending_invalidations"] == 1
    assert writer.stats["breaker_state"] == "closed"
    for cache in (reader, writer):
        got = await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
        assert got == source.data

    down.start()
    cluster.wait_until_ok()
    await eventually(lambda: reader.status == "ok" and writer.broadcast_connected, within=10)
    deadline = time.monotonic() + 10
    while writer.stats["pending_invalidations"]:
        await writer.get_many_or_load(["k1"], source.load, tags=own_tag)
        assert time.monotonic() < deadline, writer.stats
        await asyncio.sleep(0.05)
    third = await on_cluster()
    got = await third.get_many_or_load(list(source.data), source.load, tags=own_tag)
    assert got == source.data
    assert reader.stats["node_breaker_closed"] >= 1


async def test_a_slow_master_costs_its_keys_a_timeout_and_the_others_are_still_read(
    on_cluster: MakeCache, cluster: RedisClusterServers, key_prefix: str
) -> None:
    """The nodes' replies are read one after the other under one deadline: a node that
    does not answer in time fails alone, and the nodes read after it still serve."""
    source = Source({f"k{i}": f"v{i}" for i in range(30)})
    cache = await on_cluster(l1_max_entries=0, **FAST_FAULTS)
    await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
    keys = KeySpace(key_prefix)
    keys.spread_over_slots()
    star = cluster.master_of(keys.tag("*"))  # every entry needs it: keep it answering
    # Replies are read in the order of the nodes' names: the first one not holding "*"
    # is read before at least one other.
    slow = min((node for node in cluster.nodes if node is not star), key=lambda n: n.url)
    served = [
        key
        for key in source.data
        if slow not in (cluster.master_of(keys.entry(key)), cluster.master_of(keys.tag(key)))
    ]
    assert served
    assert len(served) < len(source.data)
    admin = aioredis.Redis(host="127.0.0.1", port=slow.port)
    try:
        await admin.client_pause(1500, all=True)
        started = time.perf_counter()
        got = await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
        elapsed = time.perf_counter() - started
    finally:
        await admin.client_unpause()
        await admin.aclose()
    assert got == source.data
    assert elapsed < 1.2  # two 200 ms deadlines (the read, the fill's check), not the pause
    stats = cache.stats
    assert stats["redis_timeouts"] >= 1
    assert stats["l2_hits"] == len(served)  # every key the slow master does not hold
    assert stats["breaker_state"] == "closed"


async def test_every_instance_flushes_l1_when_a_master_goes(
    on_cluster: MakeCache, cluster: RedisClusterServers
) -> None:
    """An instance serving only L1 hits still learns that a master is gone (its
    subscription there drops): it flushes L1 and caps L1 TTLs, since bumps of tags on that
    master now stay pending on the instance that made them, unpublished."""
    idle = await on_cluster(**FAST_FAULTS)
    source = Source({"k": "v"})
    await idle.get_many_or_load(["k"], source.load, tags=own_tag)
    flushes = idle.stats["l1_flushes"]
    cluster.nodes[1].stop()
    await eventually(lambda: not idle.broadcast_connected, within=5)
    assert idle.stats["l1_flushes"] > flushes
    assert idle.status == "degraded"


async def test_moved_and_ask_are_followed_during_a_slot_migration(
    on_cluster: MakeCache, cluster: RedisClusterServers, key_prefix: str
) -> None:
    keys = KeySpace(key_prefix)
    keys.spread_over_slots()
    key = next(  # an entry and its tag on one master, so both slots move together
        f"k{i}"
        for i in range(1000)
        if cluster.master_of(keys.entry(f"k{i}")) is cluster.master_of(keys.tag(f"k{i}"))
    )
    source = Source({key: "v1"})
    cache = await on_cluster(l1_max_entries=0)
    other = await on_cluster(l1_max_entries=0)
    await cache.get_many_or_load([key], source.load, tags=own_tag)
    source_node = cluster.master_of(keys.entry(key))
    target = next(node for node in cluster.nodes if node is not source_node)
    slots = sorted({key_slot(keys.entry(key).encode()), key_slot(keys.tag(key).encode())})
    migration = SlotMigration(cluster, source_node, target)

    await migration.begin(slots)
    await migration.move_key(keys.entry(key))  # the entry now answers ASK
    assert await cache.get_many_or_load([key], source.load, tags=own_tag) == {key: "v1"}
    assert cache.stats["l2_hits"] == 1
    assert cache.stats["redis_redirects"] >= 1
    source.data[key] = "v2"
    await migration.move_key(keys.tag(key))  # the bump lands on the target
    assert await other.invalidate([key]) == 1
    assert other.stats["pending_invalidations"] == 0
    assert await cache.get_many_or_load([key], source.load, tags=own_tag) == {key: "v2"}

    await migration.finish(slots)  # the source now answers MOVED
    redirects = cache.stats["redis_redirects"]
    assert await cache.get_many_or_load([key], source.load, tags=own_tag) == {key: "v2"}
    assert cache.stats["redis_redirects"] > redirects
    redirects = cache.stats["redis_redirects"]
    assert await cache.get_many_or_load([key], source.load, tags=own_tag) == {key: "v2"}
    assert cache.stats["redis_redirects"] == redirects  # the slot map learnt the move
    assert cluster.master_of(keys.entry(key)) is target
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] == 0, stats


class SlotMigration:
    """A real resharding step, as ``redis-cli --cluster reshard`` does it."""

    def __init__(
        self, cluster: RedisClusterServers, source: RedisServer, target: RedisServer
    ) -> None:
        self._cluster = cluster
        self._source = aioredis.Redis(host="127.0.0.1", port=source.port)
        self._target = aioredis.Redis(host="127.0.0.1", port=target.port)
        self._target_port = target.port

    async def _id(self, client: aioredis.Redis) -> str:
        return str((await _command(client, "CLUSTER", "MYID")).decode())

    async def begin(self, slots: list[int]) -> None:
        source_id, target_id = await self._id(self._source), await self._id(self._target)
        for slot in slots:
            await _command(self._target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            await _command(self._source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)

    async def move_key(self, name: str) -> None:
        await _command(self._source, "MIGRATE", "127.0.0.1", self._target_port, name, 0, 5000)

    async def finish(self, slots: list[int]) -> None:
        target_id = await self._id(self._target)
        for node in self._cluster.nodes:
            client = aioredis.Redis(host="127.0.0.1", port=node.port)
            try:
                for slot in slots:
                    await _command(client, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
            finally:
                await client.aclose()
        await self._source.aclose()
        await self._target.aclose()
        self._cluster.wait_until_ok()


async def _command(client: aioredis.Redis, *args: Any) -> Any:
    """A raw command (redis-py's ``execute_command`` carries no type hints)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def _value(value: str) -> Any:
    async def load() -> str:
        return value

    return load
