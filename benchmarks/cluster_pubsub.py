"""Cluster ``PUBLISH`` against sharded pub/sub (``SPUBLISH``, Redis 7) for the invalidation
broadcast; prints a markdown table of medians.

    .venv/bin/python -m benchmarks.cluster_pubsub [path/to/redis-server-7]

Three masters of a throwaway cluster. For each kind, a message is published and the time
until a subscriber receives it is measured, alternating the two kinds round by round. The
subscriber of ``PUBLISH`` sits on another master than the publisher (the cluster bus
carries the message); the one of ``SPUBLISH`` must sit on the master that owns the
channel's slot, which is also where the message is published.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import time

import redis.asyncio as aioredis
from redis.crc import key_slot

from benchmarks.cache_engine import print_table
from tests.support.redis_cluster import RedisClusterServers

ROUNDS = 20
MESSAGES = 100
CHANNEL = "bench:invalidations"


async def _client(port: int) -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=port)


async def one_way_us(
    publish: aioredis.Redis, command: str, listen: aioredis.client.PubSub
) -> float:
    started = time.perf_counter()
    await publish.execute_command(command, CHANNEL, b"x" * 64)  # type: ignore[no-untyped-call]
    while await listen.get_message(timeout=1.0) is None:
        pass
    return (time.perf_counter() - started) * 1e6


async def measure(cluster: RedisClusterServers) -> list[tuple[str, str]]:
    ports = [node.port for node in cluster.nodes]
    probe = await _client(ports[0])
    owner = _owner_port(await probe.cluster("SLOTS"), key_slot(CHANNEL.encode()))
    await probe.aclose()
    other = next(port for port in ports if port != owner)
    publisher, sharded_publisher = await _client(other), await _client(owner)
    plain = (await _client(owner)).pubsub(ignore_subscribe_messages=True)
    sharded = (await _client(owner)).pubsub(ignore_subscribe_messages=True)
    await plain.subscribe(CHANNEL)
    await sharded.ssubscribe(CHANNEL)
    await plain.get_message(timeout=1.0)
    await sharded.get_message(timeout=1.0)
    cluster_wide: list[float] = []
    in_shard: list[float] = []
    for _ in range(ROUNDS):
        cluster_wide.append(
            statistics.median(
                [await one_way_us(publisher, "PUBLISH", plain) for _ in range(MESSAGES)]
            )
        )
        in_shard.append(
            statistics.median(
                [await one_way_us(sharded_publisher, "SPUBLISH", sharded) for _ in range(MESSAGES)]
            )
        )
    for closable in (plain, sharded):
        await closable.aclose()  # type: ignore[no-untyped-call]
    for client in (publisher, sharded_publisher):
        await client.aclose()
    wide, shard = statistics.median(cluster_wide), statistics.median(in_shard)
    return [
        ("`PUBLISH` on one master, received on another (cluster bus)", f"{wide:.0f} µs"),
        ("`SPUBLISH` on the channel's master, received there", f"{shard:.0f} µs"),
        ("**ratio PUBLISH / SPUBLISH**", f"**{wide / shard:.2f}x**"),
    ]


def _owner_port(slots: object, slot: int) -> int:
    """The port of the master serving ``slot`` in a raw ``CLUSTER SLOTS`` reply:
    ``[[start, end, [host, port, id], ...replicas], ...]``."""
    assert isinstance(slots, list)
    for start, end, primary, *_ in slots:
        if int(start) <= slot <= int(end):
            return int(primary[1])
    raise LookupError(slot)


async def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else shutil.which("redis-server")
    cluster = RedisClusterServers(binary=binary)
    cluster.start()
    try:
        rows = await measure(cluster)
    finally:
        cluster.close()
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main())
