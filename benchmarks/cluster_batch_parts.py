"""Where a cluster batch read's time goes, against the same batch on one Redis; prints a
markdown table of medians and of the median per-round ratio to the one-Redis batch.

    .venv/bin/python -m benchmarks.cluster_batch_parts

The batch of ``benchmarks.cache_engine`` (20 keys, 21 tag versions, L1 off) on a
throwaway Redis and a throwaway three-master cluster: the engine's batch on each, each
tier's read alone, and the cluster tier's fan-out of the same 41 ``GET`` s, of one ``MGET``
per master reading as many values of the same size (keys sharing a hash tag: what a key
layout grouping keys by node could do at best), and of one ``PING`` per master (the floor
of any read of three masters). All timed in alternating rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from redis.typing import EncodableT

from benchmarks.cache_engine import BATCH, l2_only_config, load_batch, own_tag
from cache import TieredCache
from cache.cluster_tier import ClusterTier
from cache.keys import canonical_tags
from cache.redis_tier import RedisTier
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer

ROUNDS = 25
CALLS = 200
Commands = dict[str, list[tuple[EncodableT, ...]]]


async def round_us(op: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        await op()
    return (time.perf_counter() - started) / CALLS * 1e6


async def measure(single_url: str, cluster_url: str) -> list[tuple[str, str]]:
    keys, load, own = BATCH, load_batch, own_tag
    async with (
        TieredCache(l2_only_config(single_url, "off")) as single,
        TieredCache(l2_only_config(cluster_url, "on")) as cluster,
    ):
        for engine in (single, cluster):
            await engine.get_many_or_load(keys, load, tags=own)
        tier, one = cluster.redis_tier, single.redis_tier
        assert isinstance(tier, ClusterTier)
        assert isinstance(one, RedisTier)
        tags = sorted({tag for key in keys for tag in canonical_tags(own(key))})
        names = [tier.keys.entry(key) for key in keys] + [tier.keys.tag(tag) for tag in tags]
        gets: Commands = {}
        for name in names:
            gets.setdefault(tier.node_for(name), []).append(("GET", name))
        mgets: Commands = {}
        grouped_keys: list[str] = []
        for node, commands in gets.items():
            tag = next(f"b{i}" for i in range(100_000) if tier.node_for(f"{{b{i}}}") == node)
            grouped = [f"{{{tag}}}:{tier.keys.prefix}{i}" for i in range(len(commands))]
            await tier.client.mset(dict.fromkeys(grouped, b"x" * 130))
            mgets[node] = [("MGET", *grouped)]
            grouped_keys += grouped
        pings: Commands = {node: [("PING",)] for node in gets}
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            "engine batch, one Redis": lambda: single.get_many_or_load(keys, load, tags=own),
            "engine batch, cluster": lambda: cluster.get_many_or_load(keys, load, tags=own),
            "tier read alone, one Redis": lambda: one.read(keys, tags, 60_000),
            "tier read alone, cluster": lambda: tier.read(keys, tags, 60_000),
            f"fan-out of the {len(names)} `GET`s": lambda: tier.nodes.fan_out(gets),
            "fan-out of one `MGET` per master, as many values": lambda: tier.nodes.fan_out(mgets),
            "fan-out of one `PING` per master": lambda: tier.nodes.fan_out(pings),
        }
        for op in ops.values():  # warm up
            for _ in range(CALLS):
                await op()
        figures: dict[str, list[float]] = {name: [] for name in ops}
        for _ in range(ROUNDS):
            for name, op in ops.items():
                figures[name].append(await round_us(op))
        for key in grouped_keys:
            await tier.client.delete(key)
    base = figures["engine batch, one Redis"]
    return [
        (
            name,
            f"{statistics.median(values):.0f} µs | "
            f"{statistics.median([a / b for a, b in zip(values, base, strict=True)]):.2f}x",
        )
        for name, values in figures.items()
    ]


async def main() -> None:
    server = RedisServer()
    server.start()
    cluster = RedisClusterServers()
    cluster.start()
    try:
        rows = await measure(server.url, cluster.url)
    finally:
        cluster.close()
        server.close()
    print("| measurement | median | / one-Redis engine batch |")
    print("|---|--:|--:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    asyncio.run(main())
