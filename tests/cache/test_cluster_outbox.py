"""The outbox on a Redis Cluster: an outbox row is applied only once every tag of it was
bumped and its broadcast sent. A master down leaves the rows with a tag there unapplied
and their tags pending (the other rows of the same bump are applied); a refused PUBLISH
leaves the bumped rows unapplied, so a replay bumps and publishes them again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from cache import TieredCache
from cache.keys import KeySpace
from models import Database
from models.outbox import DatabaseOutbox
from tests.cache.conftest import Source, eventually, own_tag, start_engine
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer

# The relay runs only when a test calls relay_pass, and then takes every unapplied row.
CLUSTER_OUTBOX = {
    "redis_cluster": "on",
    "redis_timeout_ms": 200,
    "breaker_failure_threshold": 2,
    "breaker_reset_seconds": 0.1,
    "outbox_grace_seconds": 0.0,
    "outbox_relay_seconds": 3600.0,
}


@pytest.fixture
async def outbox(sqlite_url: str) -> AsyncIterator[DatabaseOutbox]:
    """The app's outbox table (the subject here is the cluster, not the database)."""
    db = Database(sqlite_url)
    yield DatabaseOutbox(db)
    await db.dispose()


async def applied(outbox: DatabaseOutbox) -> dict[int, bool]:
    rows = await outbox.since(0, time.time() + 60, 100)
    return {row.id: row.applied for row in rows}


async def until(condition: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Awaits ``condition`` (a database or Redis query) until it holds, bounded."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def cluster_keys(prefix: str) -> KeySpace:
    """The engine's Redis names under ``prefix`` in the cluster layout."""
    keys = KeySpace(prefix)
    keys.spread_over_slots()
    return keys


def tags_by_node(cluster: RedisClusterServers, prefix: str) -> dict[int, list[str]]:
    """Per master (by port), tag names whose version lives there."""
    keys = cluster_keys(prefix)
    found: dict[int, list[str]] = {node.port: [] for node in cluster.nodes}
    for i in range(60):
        found[cluster.master_of(keys.tag(f"t{i}")).port].append(f"t{i}")
    return found


def star_master(cluster: RedisClusterServers, prefix: str) -> RedisServer:
    """The master of the global tag: every read needs it, so the tests keep it up."""
    return cluster.master_of(cluster_keys(prefix).tag("*"))


def tag_version(node: RedisServer, prefix: str, tag: str) -> int:
    """The version of ``tag`` on its master, read directly."""
    keys = cluster_keys(prefix)
    client = redis.Redis(host="127.0.0.1", port=node.port)
    try:
        return int(client.get(keys.tag(tag)) or 0)
    finally:
        client.close()


def set_publish(cluster: RedisClusterServers, allowed: bool) -> None:
    """Grants or revokes PUBLISH for the default user on every master (bumps still run)."""
    for node in cluster.nodes:
        client = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            client.acl_setuser(
                "default", enabled=True, commands=["+publish" if allowed else "-publish"]
            )
        finally:
            client.close()


async def _is(got: Awaitable[dict[int, bool]], wanted: dict[int, bool]) -> bool:
    return await got == wanted


async def test_a_row_with_a_tag_on_a_down_master_stays_unapplied_until_it_is_back(
    outbox: DatabaseOutbox,  # first: closed after the engines that mark rows in it
    engines: list[TieredCache],
    private_cluster: RedisClusterServers,
    key_prefix: str,
) -> None:
    cluster = private_cluster
    star = star_master(cluster, key_prefix)
    down = next(node for node in cluster.nodes if node is not star)
    on_node = tags_by_node(cluster, key_prefix)
    down_tag = on_node[down.port][0]
    up_tag, up_tag_2 = on_node[star.port][:2]
    source = Source({tag: "old" for tag in (down_tag, up_tag, up_tag_2)})
    writer = await start_engine(engines, cluster.url, key_prefix, outbox, **CLUSTER_OUTBOX)
    await writer.get_many_or_load(list(source.data), source.load, tags=own_tag)  # both tiers
    down.stop()

    spanning = await outbox.record([down_tag, up_tag])
    for tag in (down_tag, up_tag):
        source.data[tag] = "new"
    assert await writer.invalidate([down_tag, up_tag], row=spanning) == 2
    # One bump carrying both marks: the healthy row is applied, the spanning one not.
    healthy = await outbox.record([up_tag_2])
    source.data[up_tag_2] = "new"
    await writer.invalidate([up_tag_2], row=healthy)
    await until(lambda: _is(applied(outbox), {spanning: False, healthy: True}))
    # (The relay, woken by the lost subscription, may mark the healthy row again if it read
    # it before it was marked applied; its next pass clears that mark, seeing it applied.)

    async def only_the_spanning_row_pending() -> bool:
        if writer.stats["pending_invalidations"] != 1:
            await writer.relay_pass()
        return bool(writer.stats["pending_invalidations"] == 1)

    await until(only_the_spanning_row_pending, within=10)
    assert writer.stats["breaker_state"] == "closed"

    # Its tags stay pending, the bumped one too: never filled, so every read loads.
    reads = source.reads
    for _ in range(2):
        assert await writer.get_many_or_load([up_tag], source.load, tags=own_tag) == {up_tag: "new"}
    assert source.reads == reads + 2
    # A relay pass cannot apply it either while the node is down, and does not bump the
    # tag that already landed again (every bump would reach every instance's listener).
    bumped_once = tag_version(star, key_prefix, up_tag)
    await writer.relay_pass()
    assert (await applied(outbox))[spanning] is False
    assert tag_version(star, key_prefix, up_tag) == bumped_once

    down.start()
    cluster.wait_until_ok()

    async def relayed() -> bool:
        await writer.relay_pass()
        return (await applied(outbox))[spanning]

    await until(relayed)
    assert writer.stats["pending_invalidations"] == 0
    # Another instance: no entry stored before the writes (still in L2) is served.
    fresh = await start_engine(engines, cluster.url, key_prefix, outbox, **CLUSTER_OUTBOX)
    got = await fresh.get_many_or_load(list(source.data), source.load, tags=own_tag)
    assert got == dict.fromkeys(source.data, "new")


async def test_a_bump_whose_broadcast_was_refused_leaves_its_row_unapplied(
    outbox: DatabaseOutbox,  # first: closed after the engines that mark rows in it
    engines: list[TieredCache],
    private_cluster: RedisClusterServers,
    key_prefix: str,
) -> None:
    """Bump and PUBLISH are two round trips on a cluster: a bump applied but never
    broadcast is not reported applied, and is bumped and published again later."""
    cluster = private_cluster
    writer = await start_engine(engines, cluster.url, key_prefix, outbox, **CLUSTER_OUTBOX)
    other = await start_engine(engines, cluster.url, key_prefix, outbox, **CLUSTER_OUTBOX)
    heard: list[list[str]] = []
    other.on_invalidation_received(lambda tags: heard.append(list(tags)))
    set_publish(cluster, allowed=False)
    try:
        row = await outbox.record(["k"])
        await writer.invalidate(["k"], row=row)
        assert writer.stats["pending_invalidations"] == 1
        await writer.close()  # waits for any mark of an applied row in flight
        assert await applied(outbox) == {row: False}
        assert heard == []
    finally:
        set_publish(cluster, allowed=True)

    async def relayed() -> bool:
        await other.relay_pass()  # the row is unapplied: bumped and published again
        return (await applied(outbox))[row]

    await until(relayed)
    await eventually(lambda: ["k"] in heard, within=5)
