"""The design bugs the protocol model found (docs/decisions.md, "What the model found in
the design"), each replayed deterministically on a real Redis and a real outbox table,
and the L1 half of issue 13 item 1's guard. Each fails without its fix."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis

from cache import TieredCache
from cache.redis_tier import ReadResult
from models.outbox import DatabaseOutbox
from tests.cache.conftest import Source, eventually, own_tag, start_engine
from tests.support.redis_server import RedisServer, free_port

LONG_GRACE = {
    "outbox_grace_seconds": 3600.0,
    "outbox_relay_seconds": 3600.0,
    "breaker_reset_seconds": 3600.0,
    "degraded_l1_ttl": 30.0,
}
"""Nothing happens by itself: no relay pass, no probe; the test drives every step."""
NO_GRACE = {**LONG_GRACE, "outbox_grace_seconds": 0.0}


async def start(
    made: list[TieredCache], url: str, prefix: str, outbox: DatabaseOutbox, **over: Any
) -> TieredCache:
    return await start_engine(made, url, prefix, outbox, **over)


async def test_pending_is_checked_when_a_read_starts(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Finding 1. A read that reached Redis while a row covering its key was pending here
    (old entry, old version: equal, so valid) must not serve what it read once the row
    was applied meanwhile and the mark cleared."""
    writer = await start(engines, redis_url, key_prefix, outbox, **NO_GRACE)
    assert await writer.get_many_or_load(["k"], Source({"k": "old"}).load, tags=own_tag) == {
        "k": "old"
    }
    row = await outbox.record(["k"])  # a write committed; its bump has not happened
    reader = await start(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    assert reader.stats["pending_invalidations"] == 1  # marked at start

    tier = reader.redis_tier
    assert tier is not None
    real_read = tier.read
    replied = asyncio.Event()
    release = asyncio.Event()

    async def slow_reply(*args: Any) -> ReadResult:  # the network holding the reply
        result = await real_read(*args)
        replied.set()
        await release.wait()
        return result

    tier.read = slow_reply  # type: ignore[method-assign,assignment]
    source = Source({"k": "new"})
    read = asyncio.create_task(reader.get_many_or_load(["k"], source.load, tags=own_tag))
    await asyncio.wait_for(replied.wait(), 2)  # Redis answered: old entry, old version
    tier.read = real_read  # type: ignore[method-assign,assignment]
    assert await writer.invalidate(["k"], row=row) == 1  # the row is applied...
    await writer.close()
    await reader.relay_pass()  # ...and the reader, seeing it applied, clears its mark
    assert reader.stats["pending_invalidations"] == 0
    release.set()
    assert await read == {"k": "new"}


async def test_a_late_broadcast_does_not_revalidate_a_dropped_tag(
    engines: list[TieredCache], redis_server: RedisServer, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Finding 2. A broadcast of version 2 arriving after a later invalidation dropped the
    tag (and after that invalidation's row was applied elsewhere) must not bring back the
    L1 entry stamped 2."""
    url = redis_server.url
    client = aioredis.Redis.from_url(url)
    try:
        source = Source({"k": "v1"})
        writer = await start(engines, url, key_prefix, outbox, **LONG_GRACE)
        await writer.get_many_or_load(["k"], source.load, tags=own_tag)
        source.data["k"] = "v2"
        await writer.invalidate(["k"], row=await outbox.record(["k"]))
        assert await writer.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "v2"}
        tier = writer.redis_tier
        assert tier is not None
        version_2 = int(await client.get(tier.keys.tag("k")) or 0)

        await client.replicaof("127.0.0.1", free_port())  # Redis refuses writes
        source.data["k"] = "v3"
        await writer.invalidate(["k"], row=await outbox.record(["k"]))
        assert writer.stats["pending_invalidations"] == 1
        await client.replicaof("NO", "ONE")
        applier = await start(engines, url, key_prefix, outbox, **NO_GRACE)
        await applier.relay_pass()  # version 3
        await applier.close()
        await writer.relay_pass()  # applied elsewhere: the writer clears its mark
        assert writer.stats["pending_invalidations"] == 0

        received = writer.stats["invalidations_received"]
        late = msgpack.packb([["k"], [version_2]])
        await client.publish(tier.keys.channel, late)  # the old broadcast, delivered late
        await eventually(lambda: writer.stats["invalidations_received"] > received)
        assert await writer.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "v3"}
    finally:
        await client.aclose()


async def test_a_broadcast_for_a_pending_tag_is_not_lost(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Finding 3. This instance's relay bumps a pending tag (to version 2); a newer write
    elsewhere bumps it to 3 and broadcasts while the tag is still pending here; then the
    relay's own (older) result is handled. If the broadcast had been dropped, version 2
    would enter the view, and a load that read the database before the newer write (its
    versions read at 2) would fill L1 at 2 and be served after that write answered."""
    await outbox.record(["k"])  # a row no one applied
    relay = await start(engines, redis_url, key_prefix, outbox, **LONG_GRACE)  # pending
    writer = await start(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    tier = relay.redis_tier
    assert tier is not None
    real_invalidate = tier.invalidate
    held: list[asyncio.Event] = []  # one per bump of the relay's engine, replies held

    async def held_bump(*args: Any) -> Sequence[int | None]:
        result = await real_invalidate(*args)
        release = asyncio.Event()
        held.append(release)
        await release.wait()
        return result

    tier.invalidate = held_bump  # type: ignore[method-assign,assignment]
    applying = asyncio.create_task(relay.relay_pass())  # bumps "k" to 2, reply held
    await eventually(lambda: len(held) == 1)

    data = {"k": "before"}
    loading, release_load = asyncio.Event(), asyncio.Event()

    async def slow_load(keys: list[str]) -> dict[str, Any]:
        value = dict(data)  # the database read, before the newer write commits
        loading.set()
        await release_load.wait()
        return value

    read = asyncio.create_task(relay.get_many_or_load(["k"], slow_load, tags=own_tag))
    await asyncio.wait_for(loading.wait(), 2)  # its versions were read at 2
    data["k"] = "after"
    received = relay.stats["invalidations_received"]
    await writer.invalidate(["k"])  # a newer version, broadcast while "k" is pending here
    await eventually(lambda: relay.stats["invalidations_received"] > received)
    held[0].set()
    await applying  # the mark clears; the bump's own result (2) is handled
    assert relay.stats["pending_invalidations"] == 0
    release_load.set()
    assert await read == {"k": "before"}  # it started before the newer write answered

    async def load(keys: list[str]) -> dict[str, Any]:
        return dict(data)

    try:
        # (A replay the read scheduled, bump 3 here, is still held: it must not matter.)
        assert await relay.get_many_or_load(["k"], load, tags=own_tag) == {"k": "after"}
    finally:
        for release in held:
            release.set()
        tier.invalidate = real_invalidate  # type: ignore[method-assign,assignment]


async def test_l1_serves_an_entry_only_to_a_reader_expecting_its_tags(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Issue 13 item 1: two callers sharing a key but not tags never share the entry
    (L2 refused it already; L1 now does too), so an invalidation of one caller's tags
    cannot leave the other served a value computed for someone else."""
    cache = await start(engines, redis_url, key_prefix, outbox)
    first = Source({"k": "for-a"})
    second = Source({"k": "for-b"})
    assert await cache.get_many_or_load(["k"], first.load, tags=lambda _: ["A"]) == {"k": "for-a"}
    got = await cache.get_many_or_load(["k"], second.load, tags=lambda _: ["B"])
    assert got == {"k": "for-b"}
    assert second.reads == 1
    assert await cache.get_or_load("k", _one(second), tags=["B"]) == "for-b"
    assert await cache.get_or_load("k", _one(first), tags=["A"]) == "for-a"


def _one(source: Source) -> Any:
    async def load() -> Any:
        return (await source.load(["k"]))["k"]

    return load
