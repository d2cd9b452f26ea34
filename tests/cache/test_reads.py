"""L1 -> L2 -> loader, fills, TTLs, not-found, integrity, single flight, disabled mode."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from cache import NOT_FOUND, TieredCache
from cache.keys import KeySpace
from tests.cache.conftest import (
    SECRET,
    MakeCache,
    Source,
    eventually,
    format2_blob,
    own_tag,
)

pytestmark = pytest.mark.l2_both


async def test_loader_runs_once_per_miss_then_tiers_answer(make_cache: MakeCache) -> None:
    source = Source({"a": {"v": 1}, "b": {"v": 2}})
    cache = await make_cache()
    first = await cache.get_many_or_load(["a", "b"], source.load, tags=own_tag)
    again = await cache.get_many_or_load(["a", "b", "a"], source.load, tags=own_tag)
    assert first == again == {"a": {"v": 1}, "b": {"v": 2}}
    assert source.batches == [["a", "b"]]
    assert cache.stats["l1_hits"] == 2


async def test_only_misses_reach_the_loader_in_one_batch(make_cache: MakeCache) -> None:
    source = Source({f"k{i}": i for i in range(10)})
    cache = await make_cache()
    await cache.get_many_or_load(["k0", "k1"], source.load, tags=own_tag)
    got = await cache.get_many_or_load([f"k{i}" for i in range(10)], source.load, tags=own_tag)
    assert got == {f"k{i}": i for i in range(10)}
    assert source.batches == [["k0", "k1"], [f"k{i}" for i in range(2, 10)]]


async def test_second_instance_is_served_by_redis(make_cache: MakeCache) -> None:
    source = Source({"a": [1, 2]})
    writer = await make_cache()
    reader = await make_cache()
    await writer.get_many_or_load(["a"], source.load, tags=own_tag)
    assert await reader.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": [1, 2]}
    assert source.reads == 1
    assert reader.stats["l2_hits"] == 1


async def test_l2_outlives_an_engine_restart(make_cache: MakeCache) -> None:
    source = Source({"a": "kept"})
    first = await make_cache()
    await first.get_many_or_load(["a"], source.load, tags=own_tag)
    await first.close()
    restarted = await make_cache()
    assert await restarted.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "kept"}
    assert restarted.stats["l2_hits"] == 1
    assert source.reads == 1


async def test_an_l2_entry_serves_only_readers_with_the_same_tags(make_cache: MakeCache) -> None:
    """An entry records the tags it was computed under: a reader whose value depends on a
    tag the entry never recorded must not be served it (that tag may have moved since),
    while a reader naming the same tags in another order is."""
    source = Source({"k": "old"})
    writer = await make_cache(l1_max_entries=0)
    reader = await make_cache(l1_max_entries=0)
    await writer.get_many_or_load(["k"], source.load, tags=own_tag)
    await reader.invalidate(["list"])
    source.data["k"] = "new"
    both = await reader.get_many_or_load(["k"], source.load, tags=lambda key: [key, "list"])
    assert both == {"k": "new"}
    assert reader.stats["l2_invalid_versions"] == 1
    reordered = await writer.get_many_or_load(["k"], source.load, tags=lambda key: ["list", key])
    assert reordered == {"k": "new"}
    assert source.reads == 2  # the reordered read was an L2 hit


async def test_not_found_is_cached_as_a_sentinel_and_invalidated(make_cache: MakeCache) -> None:
    source = Source()
    cache = await make_cache()
    other = await make_cache()
    assert await cache.get_many_or_load(["ghost"], source.load, tags=own_tag) == {"ghost": None}
    assert await cache.get_many_or_load(["ghost"], source.load, tags=own_tag) == {"ghost": None}
    assert await other.get_many_or_load(["ghost"], source.load, tags=own_tag) == {"ghost": None}
    assert source.reads == 1
    assert other.stats["not_found_hits"] == 1

    source.data["ghost"] = "now exists"
    await cache.invalidate(["ghost"])
    assert await cache.get_many_or_load(["ghost"], source.load, tags=own_tag) == {
        "ghost": "now exists"
    }


async def test_not_found_sentinel_has_the_short_ttl(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    cache = await make_cache(not_found_ttl=5.0, default_ttl=300.0, ttl_jitter=0.0)
    source = Source({"real": 1})
    await cache.get_many_or_load(["real", "ghost"], source.load, tags=own_tag)
    keys = key_space
    ghost_ttl = await redis_client.pttl(keys.entry("ghost"))
    real_ttl = await redis_client.pttl(keys.entry("real"))
    assert 0 < ghost_ttl <= 5_000
    assert 290_000 < real_ttl <= 300_000


async def test_single_key_loader_can_say_not_found(make_cache: MakeCache) -> None:
    cache = await make_cache()
    calls = 0

    async def load() -> object:
        nonlocal calls
        calls += 1
        return NOT_FOUND

    assert await cache.get_or_load("nothing", load, tags=["nothing"]) is None
    assert await cache.get_or_load("nothing", load, tags=["nothing"]) is None
    assert calls == 1


async def test_every_redis_key_has_a_ttl(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    source = Source({f"k{i}": i for i in range(20)})
    cache = await make_cache()
    await cache.get_many_or_load(
        [f"k{i}" for i in range(25)], source.load, tags=lambda key: [key, "list"]
    )
    await cache.invalidate(["k1", "list", "never-read"])
    await cache.set_entry("composite", b"body", (("k2", 1),))
    with cache.recording() as rec:
        await cache.get_many_or_load(["k3"], source.load, tags=own_tag)
    await cache.set_entry("composite2", b"body", rec.tag_versions)
    found = [key async for key in redis_client.scan_iter(match=key_space.prefix + "*", count=500)]
    assert len(found) >= 25 + 20  # entries and tag versions
    ttls = await asyncio.gather(*(redis_client.pttl(key) for key in found))
    assert all(ttl > 0 for ttl in ttls), dict(zip(found, ttls, strict=True))


async def test_ttls_are_jittered(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    cache = await make_cache(default_ttl=100.0, ttl_jitter=0.5)
    source = Source({f"k{i}": i for i in range(30)})
    await cache.get_many_or_load(list(source.data), source.load, tags=own_tag)
    keys = key_space
    ttls = [await redis_client.pttl(keys.entry(key)) for key in source.data]
    assert all(99_000 < ttl <= 150_000 for ttl in ttls)
    assert len({ttl // 1000 for ttl in ttls}) > 5


async def test_tampered_entry_is_a_counted_miss(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    source = Source({"a": "genuine"})
    writer = await make_cache()
    await writer.get_many_or_load(["a"], source.load, tags=own_tag)
    entry_key = key_space.entry("a")
    blob = await redis_client.get(entry_key)
    assert isinstance(blob, bytes)
    forged = blob.replace(b"genuine", b"forgery")
    assert forged != blob
    await redis_client.set(entry_key, forged, px=60_000)

    reader = await make_cache()
    assert await reader.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "genuine"}
    assert reader.stats["integrity_failures"] == 1
    assert source.reads == 2
    # The reload replaced the forgery with a signed entry.
    third = await make_cache()
    assert await third.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "genuine"}
    assert third.stats["l2_hits"] == 1


async def test_garbage_entry_is_a_counted_miss(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    source = Source({"a": 1})
    cache = await make_cache()
    await redis_client.set(key_space.entry("a"), b"\x00not an entry", px=60_000)
    assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": 1}
    assert cache.stats["integrity_failures"] == 1


async def test_entry_of_an_older_release_is_a_quiet_miss_then_rewritten(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    # A genuine entry in the previous wire format, as a rolling deploy leaves behind: a
    # miss, not an integrity alarm; the reload rewrites it in the current format.
    keys = key_space
    for key in ("a", "composite"):
        redis_key = keys.entry(key).encode()
        blob = format2_blob(SECRET, redis_key, ["*", key], b"\x94\x02\xa3old\x90\x00")
        await redis_client.set(redis_key, blob, px=60_000)
    source = Source({"a": "new"})
    cache = await make_cache(l1_max_entries=0)
    assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "new"}
    assert await cache.get_entry("composite") is None
    assert cache.stats["integrity_failures"] == 0
    assert source.reads == 1
    assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": "new"}
    assert cache.stats["l2_hits"] == 1
    assert source.reads == 1


async def test_concurrent_misses_run_one_load(make_cache: MakeCache) -> None:
    cache = await make_cache()
    release = asyncio.Event()
    calls = 0

    async def slow_load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "value"

    readers = [
        asyncio.create_task(cache.get_or_load("hot", slow_load, tags=["hot"])) for _ in range(50)
    ]
    await asyncio.sleep(0)
    await eventually(lambda: cache.stats["single_flight_joins"] >= 49)
    release.set()
    assert await asyncio.gather(*readers) == ["value"] * 50
    assert calls == 1


async def test_batches_join_in_flight_keys(make_cache: MakeCache) -> None:
    cache = await make_cache()
    release = asyncio.Event()
    batches: list[list[str]] = []

    async def load(keys: list[str]) -> dict[str, str]:
        batches.append(keys)
        await release.wait()
        return {key: key.upper() for key in keys}

    first = asyncio.create_task(cache.get_many_or_load(["a", "b"], load, tags=own_tag))
    await eventually(lambda: bool(batches))
    second = asyncio.create_task(cache.get_many_or_load(["b", "c"], load, tags=own_tag))
    await eventually(lambda: len(batches) >= 2)
    release.set()
    assert await first == {"a": "A", "b": "B"}
    assert await second == {"b": "B", "c": "C"}
    assert batches == [["a", "b"], ["c"]]


async def test_loader_errors_reach_every_caller_and_are_not_cached(make_cache: MakeCache) -> None:
    cache = await make_cache()
    release = asyncio.Event()
    attempts = 0

    async def failing() -> str:
        nonlocal attempts
        attempts += 1
        await release.wait()
        raise RuntimeError("database down")

    readers = [asyncio.create_task(cache.get_or_load("k", failing, tags=["k"])) for _ in range(5)]
    await eventually(lambda: cache.stats["single_flight_joins"] >= 4)
    release.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)

    async def works() -> str:
        return "ok"

    assert await cache.get_or_load("k", works, tags=["k"]) == "ok"
    assert attempts == 1


async def test_cancelled_leader_does_not_strand_followers(make_cache: MakeCache) -> None:
    cache = await make_cache()
    leader_started = asyncio.Event()

    async def never() -> str:
        leader_started.set()
        await asyncio.Event().wait()
        return "unreachable"

    async def quick() -> str:
        return "follower loaded"

    leader = asyncio.create_task(cache.get_or_load("k", never, tags=["k"]))
    await leader_started.wait()
    follower = asyncio.create_task(cache.get_or_load("k", quick, tags=["k"]))
    await eventually(lambda: cache.stats["single_flight_joins"] >= 1)
    leader.cancel()
    assert await follower == "follower loaded"


async def test_followers_of_a_cancelled_batch_load_its_keys_in_one_batch(
    make_cache: MakeCache,
) -> None:
    cache = await make_cache()
    leader_started = asyncio.Event()
    follower_batches: list[list[str]] = []

    async def never(keys: list[str]) -> dict[str, str]:
        leader_started.set()
        await asyncio.Event().wait()
        return {}

    async def quick(keys: list[str]) -> dict[str, str]:
        follower_batches.append(keys)
        return {key: key.upper() for key in keys}

    leader = asyncio.create_task(cache.get_many_or_load(["a", "b", "c"], never, tags=own_tag))
    await leader_started.wait()
    follower = asyncio.create_task(cache.get_many_or_load(["a", "b", "c"], quick, tags=own_tag))
    await eventually(lambda: cache.stats["single_flight_joins"] >= 3)
    leader.cancel()
    assert await follower == {"a": "A", "b": "B", "c": "C"}
    assert follower_batches == [["a", "b", "c"]]


async def test_l1_is_bounded_and_counts_evictions(make_cache: MakeCache) -> None:
    cache = await make_cache(l1_max_entries=50)
    source = Source({f"k{i}": i for i in range(500)})
    for start in range(0, 500, 50):
        keys = [f"k{i}" for i in range(start, start + 50)]
        await cache.get_many_or_load(keys, source.load, tags=own_tag)
    stats = cache.stats
    assert stats["l1_size"] <= 50
    assert stats["l1_evictions"] >= 400


async def test_disabled_engine_calls_the_loader_every_time(make_cache: MakeCache) -> None:
    cache = await make_cache(enabled=False)
    source = Source({"a": 1})
    for _ in range(3):
        assert await cache.get_many_or_load(["a", "b"], source.load, tags=own_tag) == {
            "a": 1,
            "b": None,
        }
    assert source.reads == 6
    assert cache.status == "disabled"


async def test_memory_only_engine_caches_and_invalidates(key_prefix: str) -> None:
    from tests.cache.conftest import config_for

    source = Source({"a": 1})
    async with TieredCache(config_for(None, key_prefix)) as cache:
        assert cache.status == "memory-only"
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
        assert source.reads == 1
        source.data["a"] = 2
        await cache.invalidate(["a"])
        assert await cache.get_many_or_load(["a"], source.load, tags=own_tag) == {"a": 2}


async def test_l2_only_engine_reads_redis_each_time(make_cache: MakeCache) -> None:
    cache = await make_cache(l1_max_entries=0)
    source = Source({"a": 1})
    await cache.get_many_or_load(["a"], source.load, tags=own_tag)
    await cache.get_many_or_load(["a"], source.load, tags=own_tag)
    assert source.reads == 1
    assert cache.stats["l2_hits"] == 1
