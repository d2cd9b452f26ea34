"""L2 on a Redis Cluster: the operations of ``RedisTier``, one round trip per node.

Entries and tag versions spread over every slot (``KeySpace.spread_over_slots``), so an
entry and the versions that validate it are usually on different nodes and no script can
read them together. Each operation therefore routes its commands to the nodes that serve
their slots, one round trip per node involved, all nodes at once (``cluster_nodes.py``);
a batch read is plain GETs, validated in the client exactly as on one Redis (an entry is
served only if the versions it recorded equal the ones just read). Scripts run only where
they must, each on keys of one slot: creating a missing version (from that node's clock)
and bumping versions.

A node that fails or times out is skipped, not the cluster: its keys are misses and its
versions unknown (``ReadResult.unreachable``), and bumps that did not reach it come back
as ``None`` so they stay pending.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from cache import scripts
from cache.cluster_nodes import UNREACHED, ClusterNodes, Plan
from cache.codec import tags_in
from cache.config import CacheConfig
from cache.counters import Counters
from cache.health import REDIS_FAILURES
from cache.keys import KeySpace
from cache.redis_tier import FillItem, ReadResult

logger = logging.getLogger(__name__)


async def serves_a_cluster(url: str, timeout_s: float) -> bool:
    """Does the server at ``url`` run in cluster mode (``INFO cluster``)? ``False`` when it
    cannot be asked now (the engine then starts on one Redis, and says so)."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            info = await client.info("cluster")
    except REDIS_FAILURES as error:
        logger.warning(
            "could not ask Redis whether it is a cluster (%r): using it as one Redis; "
            "set STRATA_REDIS_CLUSTER=on for a cluster",
            error,
        )
        return False
    finally:
        await client.aclose()
    return bool(int(info.get("cluster_enabled", 0)))


def node_url(url: str, host: str, port: int | str) -> str:
    """``url`` (scheme, credentials, options) pointed at one node of the cluster."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"{host}:{port}"
    return parts._replace(netloc=f"{credentials}@{address}" if credentials else address).geturl()


class ClusterTier:
    """The engine's operations on a Redis Cluster (see the module docstring)."""

    backstop_deadlines: Final = 10
    """The health guard's bound around a whole call, in per-node deadlines: only a
    backstop, since every round trip to a node runs under its own deadline (a call chains
    at most a few: a read that creates missing versions, a redirect, a PING of the other
    masters when nothing answered). Kept loose so this process's own delays (a busy event
    loop) are not taken for Redis's."""

    def __init__(
        self,
        url: str,
        keys: KeySpace,
        config: CacheConfig,
        counters: Counters,
        on_node_back: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self.keys = keys
        timeout_s = config.redis_timeout_ms / 1000
        self.deadline_s = timeout_s * self.backstop_deadlines
        self.client = RedisCluster.from_url(
            url,
            socket_connect_timeout=timeout_s,
            require_full_coverage=False,
            max_connections=config.redis_max_connections,
        )
        self._scripts = {
            hashlib.sha1(text.encode()).hexdigest(): text
            for text in (scripts.VERSIONS, scripts.BUMP)
        }
        self._versions_sha, self._bump_sha = list(self._scripts)
        self.nodes = ClusterNodes(self.client, config, counters, self._scripts, on_node_back)

    @property
    def whole(self) -> bool:
        return self.nodes.whole

    def node_for(self, redis_key: str) -> str:
        return self.nodes.node_for(redis_key)

    async def masters(self) -> dict[str, str]:
        """``{node name: URL}`` of every master now, for the broadcast listener, which
        asks every second. While a node is skipped, also refreshes the slot map (a failover
        may have replaced it) and probes the skipped nodes when their breakers allow, so an
        idle instance recovers too."""
        await self.nodes.route()
        if not self.whole:
            try:
                await self.client.nodes_manager.initialize()
            except (*REDIS_FAILURES, RedisClusterException) as error:
                logger.debug("cluster topology refresh failed: %r", error)
            await self.nodes.fan_out({name: [("PING",)] for name in self.nodes.down()})
        return {
            node.name: node_url(self.url, node.host, node.port)
            for node in self.client.get_primaries()
        }

    # -- the engine's operations ---------------------------------------------------------

    async def read(self, keys: Sequence[str], tags: Sequence[str], tag_ttl_ms: int) -> ReadResult:
        await self.nodes.route()
        plan = Plan(self.nodes)
        entry_prefix, tag_prefix = self.keys.entry_prefix, self.keys.tag_prefix
        plan.gets([entry_prefix + key for key in keys])
        plan.gets([tag_prefix + tag for tag in tags])
        replies = await plan.run()
        blobs = [reply if isinstance(reply, bytes) else None for reply in replies[: len(keys)]]
        versions, unreachable = await self._versions(tags, replies[len(keys) :], tag_ttl_ms)
        return ReadResult(blobs, versions, unreachable)

    async def _versions(
        self, tags: Sequence[str], replies: list[Any], tag_ttl_ms: int
    ) -> tuple[list[int], tuple[str, ...]]:
        """Versions from GET replies; the missing ones created by their node's script (a
        second round trip, only for tags never read or expired)."""
        versions: list[int] = []
        missing: list[int] = []
        unreachable: list[str] = []
        for index, reply in enumerate(replies):
            if isinstance(reply, bytes) and reply.isdigit():
                versions.append(int(reply))
                continue
            versions.append(0)
            if reply is None or isinstance(reply, bytes):
                missing.append(index)
            else:
                unreachable.append(tags[index])
        if missing:
            plan = Plan(self.nodes)
            for index in missing:
                name = self.keys.tag(tags[index])
                plan.add(name, ("EVALSHA", self._versions_sha, 1, name, tag_ttl_ms))
            for index, reply in zip(missing, await plan.run(), strict=True):
                if isinstance(reply, list) and reply:
                    versions[index] = int(reply[0])
                else:
                    unreachable.append(tags[index])
        return versions, tuple(unreachable)

    async def read_entry(self, key: str, tag_ttl_ms: int) -> tuple[bytes | None, list[int]]:
        """The blob of ``key`` and the current versions of the tags its stamps name. Two
        round trips: the tags are known only once the blob is read."""
        await self.nodes.route()
        plan = Plan(self.nodes)
        plan.gets([self.keys.entry(key)])
        (blob,) = await plan.run()
        if not isinstance(blob, bytes):
            return None, []
        tags = tags_in(blob)
        if not tags:
            return blob, []
        plan = Plan(self.nodes)
        plan.gets([self.keys.tag(tag) for tag in tags])
        versions, unreachable = await self._versions(tags, await plan.run(), tag_ttl_ms)
        if unreachable:
            return None, []
        return blob, versions

    async def fill(
        self, items: Sequence[FillItem], tags: Sequence[str], versions: Sequence[int]
    ) -> int:
        """Writes the items whose tags still have ``versions``: the versions are checked in
        one round trip, then the entries written in another. Not atomic across nodes, and
        need not be: an entry written just after its tag moved records the old version,
        which no reader accepts (reads compare it with the current one)."""
        await self.nodes.route()
        plan = Plan(self.nodes)
        plan.gets([self.keys.tag(tag) for tag in tags])
        current = [
            isinstance(reply, bytes) and reply.isdigit() and int(reply) == expected
            for reply, expected in zip(await plan.run(), versions, strict=True)
        ]
        plan = Plan(self.nodes)
        for item in items:
            if all(current[index] for index in item.tag_indexes):
                plan.add(item.redis_key, ("SET", item.redis_key, item.blob, "PX", item.ttl_ms))
        if plan.empty:
            return 0
        replies = await plan.run()
        return sum(
            1 for reply in replies if reply is not UNREACHED and not isinstance(reply, Exception)
        )

    async def invalidate(self, tags: Sequence[str], tag_ttl_ms: int) -> list[int | None]:
        """Bumps each tag on its node (the tags of one slot in one script), then publishes
        the new versions once, through a node that just answered: two round trips, and
        one message per invalidation for every listener rather than one per slot.
        ``None`` for a tag whose node did not apply it (it stays pending)."""
        await self.nodes.route()
        by_slot: dict[int, list[int]] = {}
        names = [self.keys.tag(tag) for tag in tags]
        for index, name in enumerate(names):
            by_slot.setdefault(key_slot(name.encode()), []).append(index)
        plan = Plan(self.nodes)
        groups = list(by_slot.values())
        for group in groups:
            keys = [names[index] for index in group]
            plan.add(keys[0], ("EVALSHA", self._bump_sha, len(keys), *keys, tag_ttl_ms))
        out: list[int | None] = [None] * len(tags)
        answered: list[str] = []
        for group, reply in zip(groups, await plan.run(), strict=True):
            if isinstance(reply, list) and len(reply) == len(group):
                answered.append(names[group[0]])
                for index, version in zip(group, reply, strict=True):
                    out[index] = int(version)
        applied = [tag for tag, version in zip(tags, out, strict=True) if version is not None]
        if applied:
            versions = [version for version in out if version is not None]
            await self._publish(answered, msgpack.packb([applied, versions]))
        return out

    async def _publish(self, via: list[str], message: bytes) -> None:
        """PUBLISH on the namespace's channel through the node of one of ``via`` (the
        cluster bus carries it to every node's subscribers); the next if that one fails.
        Raises when none took it: the bumps are then not reported applied, so their marks
        stay pending and their outbox rows unapplied, and a replay or a relay bumps and
        publishes again (the other instances would otherwise serve stale until TTL)."""
        for name in dict.fromkeys(self.node_for(key) for key in via):
            replies = await self.nodes.fan_out({name: [("PUBLISH", self.keys.channel, message)]})
            reply = replies[name]
            if reply is not None and not isinstance(reply[0], Exception):  # not refused
                return
        raise RedisConnectionError("an invalidation was applied but not broadcast")

    async def warm_up(self) -> None:
        """Learns the slot map, opens a connection to every master and loads the scripts
        there, so no first call pays for a handshake under the per-call deadline."""
        await self.nodes.route()
        load = [("SCRIPT", "LOAD", text) for text in self._scripts.values()]
        nodes = [self.nodes.link(node).name for node in self.client.get_primaries()]
        await self.nodes.fan_out({name: list(load) for name in nodes})

    async def ping(self) -> None:
        """The engine's probe: raises unless the slot map is known and some master
        answers. Probes every skipped master now, whatever its own reset delay."""
        await self.nodes.route()
        nodes = [self.nodes.link(node).name for node in self.client.get_primaries()]
        replies = await self.nodes.fan_out({name: [("PING",)] for name in nodes}, force=True)
        if all(reply is None for reply in replies.values()):
            raise RedisConnectionError("no Redis Cluster master answered")

    async def close(self) -> None:
        await self.nodes.close()
        await self.client.aclose()
