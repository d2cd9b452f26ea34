"""Micro-benchmarks of the cache engine; prints a markdown table of medians and ratios.

    .venv/bin/python -m benchmarks.cache_engine

Uses REDIS_URL when set, else starts a throwaway redis-server; the cluster figures use a
throwaway three-master Redis Cluster. Each figure is the median
of several timed rounds (each round = the mean of many calls), all from one run; the L2
batch and the raw MGET it is compared with are timed in alternating rounds.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from itertools import accumulate

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.typing import EncodableT
from theine import Cache as TheineCache

from cache import CacheConfig, TieredCache
from cache.cluster_tier import ClusterTier
from cache.keys import KeySpace
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer

ROUNDS = 15
BATCH = [f"Thing:{i}" for i in range(20)]
"""The L2 batch every figure reads: 20 keys, one tag each."""
VALUES = {key: {"id": key, "name": "x" * 40, "n": 7, "tags": ["a", "b"]} for key in BATCH}


async def load_batch(missing: list[str]) -> dict[str, object]:
    return {key: VALUES[key] for key in missing}


def own_tag(key: str) -> list[str]:
    return [key]


def print_table(rows: list[tuple[str, str]]) -> None:
    print("| measurement | median |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


async def median_us(op: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(max(calls // 10, 10)):  # warm up
        await op()
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            await op()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


async def interleaved_us(
    ours: Callable[[], Awaitable[object]],
    theirs: Callable[[], Awaitable[object]],
    rounds: int = 40,
    calls: int = 100,
) -> tuple[float, float, float]:
    """Median µs per call of each, and the median of the per-round ratios ours/theirs.

    Rounds alternate between the two, so a slow spell of this shared machine lands on both
    sides of a ratio instead of on one figure of a sequential pair.
    """
    for _ in range(calls):
        await ours()
        await theirs()
    mine: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        for op, out in ((ours, mine), (theirs, base)):
            started = time.perf_counter()
            for _ in range(calls):
                await op()
            out.append((time.perf_counter() - started) / calls * 1e6)
    ratios = [a / b for a, b in zip(mine, base, strict=True)]
    return statistics.median(mine), statistics.median(base), statistics.median(ratios)


def zipf_stream(keys: int, requests: int, alpha: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1.0 / (rank**alpha) for rank in range(1, keys + 1)]
    return rng.choices(range(keys), cum_weights=list(accumulate(weights)), k=requests)


def hit_ratio_tinylfu(stream: list[int], bound: int) -> float:
    store: TheineCache[int, int] = TheineCache(bound)
    hits = 0
    for key in stream:
        if store.get(key)[1]:
            hits += 1
        else:
            store.set(key, key)
    return hits / len(stream)


def hit_ratio_lru(stream: list[int], bound: int) -> float:
    store: OrderedDict[int, int] = OrderedDict()
    hits = 0
    for key in stream:
        if key in store:
            store.move_to_end(key)
            hits += 1
        else:
            store[key] = key
            if len(store) > bound:
                store.popitem(last=False)
    return hits / len(stream)


async def measure(url: str) -> list[tuple[str, str]]:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    config = CacheConfig(redis_url=url, namespace=namespace, secret=b"bench")
    keys, load, own = BATCH, load_batch, own_tag

    async def load_pages(missing: list[str]) -> dict[str, object]:
        return {key: key for key in missing}

    rows: list[tuple[str, str]] = []
    async with (
        TieredCache(config) as tiered,
        TieredCache(
            CacheConfig(redis_url=url, namespace=namespace, secret=b"bench", l1_max_entries=0)
        ) as l2_only,
    ):
        await tiered.get_many_or_load(keys, load, tags=own)

        async def one_value() -> object:
            return await tiered.get_or_load(keys[0], lambda: load([keys[0]]), tags=[keys[0]])

        l1_one = await median_us(one_value, 5000)
        l1_batch = await median_us(lambda: tiered.get_many_or_load(keys, load, tags=own), 2000)
        raw = aioredis.Redis.from_url(url)
        space = KeySpace(namespace)
        entry_keys = [space.entry(key) for key in keys]
        before = l2_only.stats["redis_round_trips"]
        hits_before = l2_only.stats["l2_hits"]
        l2_batch, raw_mget, l2_ratio = await interleaved_us(
            lambda: l2_only.get_many_or_load(keys, load, tags=own),
            lambda: raw.mget(entry_keys),
        )
        l2_calls = (l2_only.stats["l2_hits"] - hits_before) // len(keys)
        l2_round_trips = (l2_only.stats["redis_round_trips"] - before) / max(l2_calls, 1)

        # A whole response: a composite depending on 50 tags (as the response cache stores).
        page_tags = [f"Page:{i}" for i in range(49)]
        with tiered.recording() as rec:
            await tiered.get_many_or_load(page_tags, load_pages, tags=own)
        await tiered.set_entry("response", {"data": "x" * 500}, rec.tag_versions)
        composite_l1 = await median_us(lambda: tiered.get_entry("response"), 5000)
        composite_l2 = await median_us(lambda: l2_only.get_entry("response"), 1000)
        tags = [f"Tag:{i}" for i in range(10)]
        invalidate_10 = await median_us(lambda: tiered.invalidate(tags), 1000)
        raw_incr = await median_us(lambda: raw.incr(f"{{{namespace}}}:bench-counter"), 1000)
        async for key in raw.scan_iter(match=f"{{{namespace}}}*", count=1000):
            await raw.delete(key)
        await raw.aclose()
    # The L2 figure must really be L2 hits, not loads.
    assert l2_only.stats["l2_hits"] > 0
    assert l2_only.stats["loads"] <= 1

    rows.append(("L1 hit, 1 key (`get_or_load`)", f"{l1_one:.1f} µs"))
    rows.append(("L1 hit, batch of 20 (`get_many_or_load`)", f"{l1_batch:.1f} µs"))
    rows.append(
        ("L2 hit, batch of 20 (entries + tag versions, verify, decode)", f"{l2_batch:.0f} µs")
    )
    rows.append(("Redis round trips per L2 batch read (`stats`)", f"{l2_round_trips:.2f}"))
    rows.append(("raw redis-py `MGET` of the same 20 keys", f"{raw_mget:.0f} µs"))
    rows.append(
        (
            "**ratio L2 batch / raw MGET**, median of 40 rounds (target ≤ 1.5)",
            f"**{l2_ratio:.2f}x**",
        )
    )
    rows.append(("L1 hit, whole response with 50 tags (`get_entry`)", f"{composite_l1:.1f} µs"))
    rows.append(
        ("L2 hit, whole response, 50 tags (`get_entry`, 1 round trip)", f"{composite_l2:.0f} µs")
    )
    rows.append(
        ("`invalidate` of 10 tags (bump + publish, one round trip)", f"{invalidate_10:.0f} µs")
    )
    rows.append(("raw redis-py `INCR`", f"{raw_incr:.0f} µs"))
    rows.append(("**ratio invalidate 10 / raw INCR**", f"**{invalidate_10 / raw_incr:.2f}x**"))

    stream = zipf_stream(100_000, 1_000_000, 0.9, seed=42)
    tinylfu = hit_ratio_tinylfu(stream, 10_000)
    lru = hit_ratio_lru(stream, 10_000)
    rows.append(
        (
            "hit ratio, W-TinyLFU (theine), Zipf 0.9, 1M req / 100k keys / bound 10k",
            f"{tinylfu:.4f}",
        )
    )
    rows.append(("hit ratio, plain LRU (OrderedDict), same stream", f"{lru:.4f}"))
    rows.append(("**ratio W-TinyLFU / LRU**", f"**{tinylfu / lru:.3f}x**"))
    return rows


def l2_only_config(url: str, mode: str) -> CacheConfig:
    """An engine on `url` with L1 off (every read goes to L2), in a namespace of its own;
    `mode`: STRATA_REDIS_CLUSTER's `on` or `off`."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    return CacheConfig(
        redis_url=url, namespace=namespace, secret=b"bench", l1_max_entries=0,
        redis_cluster=mode, redis_timeout_ms=1000,
    )  # fmt: skip


async def measure_cluster(single_url: str, cluster_url: str) -> list[tuple[str, str]]:
    """The same L2 batch of 20 (entries and tag versions, verified and decoded) on one
    Redis and spread over a three-master cluster, and redis-py's ``mget_nonatomic`` of the
    same 20 entry keys on the cluster; each pair timed in alternating rounds."""
    keys, load, own = BATCH, load_batch, own_tag
    async with (
        TieredCache(l2_only_config(single_url, "off")) as single,
        TieredCache(l2_only_config(cluster_url, "on")) as cluster,
    ):
        for engine in (single, cluster):
            await engine.get_many_or_load(keys, load, tags=own)
        tier = cluster.redis_tier
        assert isinstance(tier, ClusterTier)
        raw = RedisCluster.from_url(cluster_url)
        entry_keys = [tier.keys.entry(key) for key in keys]
        nodes = {tier.node_for(name) for name in entry_keys}
        on_cluster, on_one, vs_single = await interleaved_us(
            lambda: cluster.get_many_or_load(keys, load, tags=own),
            lambda: single.get_many_or_load(keys, load, tags=own),
        )
        _, raw_mget, vs_raw = await interleaved_us(
            lambda: cluster.get_many_or_load(keys, load, tags=own),
            lambda: raw.mget_nonatomic(entry_keys),
        )
        # The floor of any read that needs every master: one PING each, through the same
        # fan-out (written at once, read in turn), with no key, reply or check to handle.
        pings: dict[str, list[tuple[EncodableT, ...]]] = {node: [("PING",)] for node in nodes}
        floor, _, floor_vs_single = await interleaved_us(
            lambda: tier.nodes.fan_out(pings),
            lambda: single.get_many_or_load(keys, load, tags=own),
        )
        tags = [f"Tag:{i}" for i in range(10)]
        invalidate_one = await median_us(lambda: single.invalidate(tags), 1000)
        invalidate_cluster = await median_us(lambda: cluster.invalidate(tags), 1000)
        await raw.aclose()
    for engine in (single, cluster):
        assert engine.stats["loads"] == 1  # every timed batch was 20 L2 hits
        assert engine.stats["redis_errors"] + engine.stats["redis_timeouts"] == 0
    return [
        ("L2 hit, batch of 20 on one Redis", f"{on_one:.0f} µs"),
        (f"L2 hit, same batch over {len(nodes)} cluster masters (one round trip each)",
         f"{on_cluster:.0f} µs"),
        ("**ratio cluster batch / one-Redis batch**, median of 40 rounds (goal ≤ 1.3)",
         f"**{vs_single:.2f}x**"),
        (f"one `PING` per master ({len(nodes)}), the tier's fan-out: the floor of a batch",
         f"{floor:.0f} µs"),
        ("**ratio of that floor / one-Redis batch**, median of 40 rounds",
         f"**{floor_vs_single:.2f}x**"),
        ("redis-py `RedisCluster.mget_nonatomic` of the same 20 entry keys", f"{raw_mget:.0f} µs"),
        ("**ratio cluster batch / `mget_nonatomic`**, median of 40 rounds",
         f"**{vs_raw:.2f}x**"),
        ("`invalidate` of 10 tags, one Redis", f"{invalidate_one:.0f} µs"),
        ("`invalidate` of 10 tags, cluster (per node, in parallel)",
         f"{invalidate_cluster:.0f} µs"),
    ]  # fmt: skip


async def main() -> None:
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        server = RedisServer()
        server.start()
        url = server.url
    cluster = RedisClusterServers()
    cluster.start()
    try:
        rows = await measure(url)
        rows += await measure_cluster(url, cluster.url)
    finally:
        cluster.close()
        if server is not None:
            server.close()
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main())
