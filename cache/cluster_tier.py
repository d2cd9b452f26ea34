"""L2 on a Redis Cluster: the operations of ``RedisTier``, one round trip per node.

Entries and tag versions spread over every slot (``KeySpace.spread_over_slots``), so an
entry and the versions that validate it are usually on different nodes and no script can
read them together. Each operation therefore groups its commands by the node that serves
each key's slot and sends every node its group in one write, all nodes at once; a batch
read is plain GETs, validated in the client exactly as on one Redis (an entry is served
only if the versions it recorded equal the ones just read). Scripts run only where they
must, each on keys of one slot: creating a missing version (from that node's clock) and
bumping versions.

A node that fails or times out is skipped, not the cluster: each node has its own
circuit breaker, its keys are misses and its versions unknown (``ReadResult.unreachable``),
and bumps that did not reach it come back as ``None`` so they stay pending. A redirect
(``MOVED`` during resharding, ``ASK`` while a slot migrates, ``TRYAGAIN``) sends that one
command through redis-py's ``RedisCluster``, which follows it and updates its slot map.
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
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

from cache import scripts
from cache.breaker import BreakerState, CircuitBreaker
from cache.codec import tags_in
from cache.config import CacheConfig
from cache.connections import ConnectionStack
from cache.counters import Counters
from cache.deadline import Deadline
from cache.health import REDIS_FAILURES
from cache.keys import KeySpace
from cache.redis_tier import FillItem, ReadResult

logger = logging.getLogger(__name__)

Command = tuple[EncodableT, ...]

_REDIRECTS: Final = (AskError, TryAgainError, NoScriptError)  # MovedError is an AskError


class _Unreached:
    """The reply of a command whose node was skipped or failed."""


UNREACHED: Final = _Unreached()


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


class _Link:
    """This process's connections to one node, and that node's breaker."""

    def __init__(self, node: ClusterNode, max_connections: int, breaker: CircuitBreaker) -> None:
        kwargs = {
            **node.connection_kwargs,
            "socket_timeout": None,  # every call runs under the engine's own deadline
            "retry": Retry(NoBackoff(), 0),
        }
        self.name = node.name
        self.host = node.host
        self.port = node.port
        self.stack = ConnectionStack(lambda: node.connection_class(**kwargs), max_connections)
        self.breaker = breaker


class _Plan:
    """Commands routed to their nodes, then run one round trip per node, in parallel."""

    def __init__(self, tier: ClusterTier) -> None:
        self._tier = tier
        self.by_node: dict[str, list[Command]] = {}
        self._where: list[tuple[str, int]] = []

    def add(self, redis_key: str, command: Command) -> None:
        name = self._tier.node_for(redis_key)
        commands = self.by_node.setdefault(name, [])
        self._where.append((name, len(commands)))
        commands.append(command)

    async def run(self) -> list[Any]:
        """Each command's reply in order: a value, an error reply, or :data:`UNREACHED`."""
        skipped: set[str] = set()
        replies = await self._tier.fan_out(self.by_node, skipped)
        await self._tier.check_whole_outage(replies, skipped)
        out: list[Any] = []
        for name, index in self._where:
            got = replies[name]
            out.append(UNREACHED if got is None else got[index])
        return out


class ClusterTier:
    """The engine's operations on a Redis Cluster (see the module docstring)."""

    backstop_deadlines: Final = 10
    """The health guard's bound around a whole call, in per-node deadlines: only a
    backstop, since every round trip to a node runs under its own deadline (a call chains
    at most a few: a read that creates missing versions, a redirect, a PING of the other
    masters when nothing answered). Kept loose so this process's own delays (a busy event
    loop before the nodes' tasks start) are not taken for Redis's."""

    def __init__(self, url: str, keys: KeySpace, config: CacheConfig, counters: Counters) -> None:
        self.url = url
        self.keys = keys
        self._timeout_s = config.redis_timeout_ms / 1000
        self.deadline_s = self._timeout_s * self.backstop_deadlines
        self._max_connections = config.redis_max_connections
        self._failure_threshold = config.breaker_failure_threshold
        self._reset_s = config.breaker_reset_seconds
        self._counters = counters
        self.client = RedisCluster.from_url(
            url,
            socket_connect_timeout=self._timeout_s,
            require_full_coverage=False,
            max_connections=config.redis_max_connections,
        )
        self._links: dict[str, _Link] = {}
        self._ready = False
        self.on_node_back: Callable[[], None] = lambda: None
        """Runs when a node's breaker closes again: invalidations may have been missed."""
        self._scripts = {
            hashlib.sha1(text.encode()).hexdigest(): text
            for text in (scripts.VERSIONS, scripts.BUMP)
        }
        self._versions_sha, self._bump_sha = list(self._scripts)

    # -- routing -------------------------------------------------------------------------

    async def _route(self) -> None:
        """Learns the slot map once (redis-py keeps it current after redirects)."""
        if self._ready:
            return
        try:
            await self.client.initialize()
        except RedisClusterException as error:  # not a RedisError: keep the guard's types
            raise RedisConnectionError(str(error)) from error
        self._ready = True
        await self._release_discovery_connections()

    def node_for(self, redis_key: str) -> str:
        node = self.client.nodes_manager.get_node_from_slot(key_slot(redis_key.encode()))
        return self._link(node).name

    def _link(self, node: ClusterNode) -> _Link:
        link = self._links.get(node.name)
        if link is None:
            breaker = CircuitBreaker(self._failure_threshold, self._reset_s)
            link = self._links[node.name] = _Link(node, self._max_connections, breaker)
        return link

    @property
    def whole(self) -> bool:
        return all(link.breaker.closed for link in self._links.values())

    async def masters(self) -> dict[str, str]:
        """``{node name: URL}`` of every master now, for the broadcast listener, which
        asks every second. While a node is skipped, also refreshes the slot map (a failover
        may have replaced it) and probes the skipped nodes when their breakers allow, so an
        idle instance recovers too."""
        await self._route()
        if not self.whole:
            try:
                await self.client.nodes_manager.initialize()
            except (*REDIS_FAILURES, RedisClusterException) as error:
                logger.debug("cluster topology refresh failed: %r", error)
            down = [link.name for link in self._links.values() if not link.breaker.closed]
            await self.fan_out({name: [("PING",)] for name in down})
        return {
            node.name: node_url(self.url, node.host, node.port)
            for node in self.client.get_primaries()
        }

    # -- one round trip per node -------------------------------------------------------------

    async def fan_out(
        self,
        by_node: dict[str, list[Command]],
        skipped: set[str] | None = None,
        force: bool = False,
    ) -> dict[str, list[Any] | None]:
        """Each node's replies, or ``None`` for a node that failed or was skipped (its
        name then goes to ``skipped``). Every node's batch is written first, then the
        replies are read node by node: the nodes work at once, and the replies of the
        later ones wait in their sockets meanwhile (cheaper than a task per node).
        Each node's write and its read run under a deadline of their own."""
        skipped = set() if skipped is None else skipped
        replies: dict[str, list[Any] | None] = {}
        sent: list[tuple[_Link, list[Command], AbstractConnection]] = []
        try:
            # In one order everywhere: a call holding one node's connection while it
            # waits for another's (at the cap) never waits on a call that holds the other
            # and waits for this one.
            for name in sorted(by_node):
                commands = by_node[name]
                replies[name] = None
                link = self._links[name]
                if not self._allowed(link, skipped, force):
                    continue
                try:
                    async with Deadline(self._timeout_s):
                        sent.append((link, commands, await link.stack.send(commands)))
                except REDIS_FAILURES as error:
                    self._failed(link, error)
            while sent:
                link, commands, connection = sent.pop(0)
                replies[link.name] = await self._receive(link, commands, connection)
        finally:
            for link, _, connection in sent:  # cancelled: the unread are out of step
                await link.stack.abandon(connection)
        return replies

    def _allowed(self, link: _Link, skipped: set[str], force: bool) -> bool:
        breaker = link.breaker
        if breaker.closed or breaker.begin_probe(force=force):
            return True
        self._counters.add("redis_skipped")
        skipped.add(link.name)
        return False

    async def check_whole_outage(
        self, replies: dict[str, list[Any] | None], skipped: set[str]
    ) -> None:
        """Raises when no master of the cluster answers: the whole cluster is away, which
        the engine's own breaker handles as it does one Redis (probes, replay, L1 flush on
        recovery). One node down never raises: when nothing answered because its nodes
        just failed, the other masters are asked for a PING, and a known-down node
        (skipped) raises only once every node is known down."""
        if any(reply is not None for reply in replies.values()):
            return
        if skipped >= set(replies):
            if any(link.breaker.closed for link in self._links.values()):
                return
            raise RedisConnectionError("every Redis Cluster master is skipped")
        others: dict[str, list[Command]] = {
            name: [("PING",)]
            for name, link in self._links.items()
            if name not in replies and link.breaker.closed
        }
        if others and any(reply is not None for reply in (await self.fan_out(others)).values()):
            return
        raise RedisConnectionError("no Redis Cluster master answers")

    async def _receive(
        self, link: _Link, commands: list[Command], connection: AbstractConnection
    ) -> list[Any] | None:
        """The node's replies, or ``None`` when it fails (counted, and fed to its breaker:
        a failing node is skipped, the others are not). A connection the server closed
        while idle fails here, not on the write: its batch is sent once more."""
        try:
            async with Deadline(self._timeout_s):
                try:
                    replies = await link.stack.receive(connection, len(commands))
                except RedisConnectionError:
                    replies = await link.stack.execute_many(commands)
                for index, reply in enumerate(replies):
                    if isinstance(reply, ClusterDownError):
                        raise reply
                    if isinstance(reply, _REDIRECTS):
                        replies[index] = await self._redirected(commands[index])
        except REDIS_FAILURES as error:
            self._failed(link, error)
            return None
        breaker = link.breaker
        if breaker.closed:
            breaker.record_success()
        else:
            breaker.close()
            self._counters.add("node_breaker_closed")
            logger.warning("Redis Cluster node %s is back: L1 flushed", link.name)
            self.on_node_back()
        return replies

    async def _redirected(self, command: Command) -> Any:
        """One command through redis-py's cluster client, which follows MOVED and ASK (and
        learns the new owner of the slot); a script goes as EVAL, whatever node it lands
        on. A refused command is returned as its error, like in a node's batch."""
        if command[0] == "EVALSHA":
            command = ("EVAL", self._scripts[str(command[1])], *command[2:])
        self._counters.add("redis_redirects")
        try:
            return await self.client.execute_command(*command)
        except ResponseError as error:
            return error

    def _failed(self, link: _Link, error: BaseException) -> None:
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            self._counters.add("redis_timeouts")
        else:
            self._counters.add("redis_errors")
        breaker = link.breaker
        if breaker.state is BreakerState.PROBING:
            breaker.trip()
        elif breaker.record_failure():
            self._counters.add("node_breaker_opened")
            logger.warning("Redis Cluster node %s unavailable (%r): skipped", link.name, error)

    # -- the engine's operations ---------------------------------------------------------

    async def read(self, keys: Sequence[str], tags: Sequence[str], tag_ttl_ms: int) -> ReadResult:
        await self._route()
        plan = _Plan(self)
        entry_prefix = self.keys.entry_prefix
        for key in keys:
            name = entry_prefix + key
            plan.add(name, ("GET", name))
        tag_names = [self.keys.tag(tag) for tag in tags]
        for name in tag_names:
            plan.add(name, ("GET", name))
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
            plan = _Plan(self)
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
        await self._route()
        plan = _Plan(self)
        name = self.keys.entry(key)
        plan.add(name, ("GET", name))
        (blob,) = await plan.run()
        if not isinstance(blob, bytes):
            return None, []
        tags = tags_in(blob)
        if not tags:
            return blob, []
        plan = _Plan(self)
        for tag in tags:
            tag_name = self.keys.tag(tag)
            plan.add(tag_name, ("GET", tag_name))
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
        await self._route()
        plan = _Plan(self)
        for tag in tags:
            name = self.keys.tag(tag)
            plan.add(name, ("GET", name))
        current = [
            isinstance(reply, bytes) and reply.isdigit() and int(reply) == expected
            for reply, expected in zip(await plan.run(), versions, strict=True)
        ]
        plan = _Plan(self)
        for item in items:
            if all(current[index] for index in item.tag_indexes):
                plan.add(item.redis_key, ("SET", item.redis_key, item.blob, "PX", item.ttl_ms))
        if not plan.by_node:
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
        await self._route()
        by_slot: dict[int, list[int]] = {}
        names = [self.keys.tag(tag) for tag in tags]
        for index, name in enumerate(names):
            by_slot.setdefault(key_slot(name.encode()), []).append(index)
        plan = _Plan(self)
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
        cluster bus carries it to every node's subscribers); the next if that one fails."""
        for name in dict.fromkeys(self.node_for(key) for key in via):
            replies = await self.fan_out({name: [("PUBLISH", self.keys.channel, message)]})
            if replies[name] is not None:
                return
        logger.warning("an invalidation was applied but its broadcast could not be sent")

    async def warm_up(self) -> None:
        """Learns the slot map, opens a connection to every master and loads the scripts
        there, so no first call pays for a handshake under the per-call deadline."""
        await self._route()
        load = [("SCRIPT", "LOAD", text) for text in self._scripts.values()]
        nodes = [self._link(node).name for node in self.client.get_primaries()]
        await self.fan_out({name: list(load) for name in nodes})

    async def ping(self) -> None:
        """The engine's probe: raises unless the slot map is known and some master
        answers. Probes every skipped master now, whatever its own reset delay."""
        await self._route()
        nodes = [self._link(node).name for node in self.client.get_primaries()]
        replies = await self.fan_out({name: [("PING",)] for name in nodes}, force=True)
        if all(reply is None for reply in replies.values()):
            raise RedisConnectionError("no Redis Cluster master answered")

    async def _release_discovery_connections(self) -> None:
        """redis-py keeps the connections it asked the slot map on; the engine's commands
        go over its own stacks, so only redirects need the client's (opened again then)."""
        manager = self.client.nodes_manager
        for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]:
            await node.disconnect_free_connections()

    async def close(self) -> None:
        for link in self._links.values():
            await link.stack.close()
        await self.client.aclose()
