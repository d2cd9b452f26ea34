"""The nodes of a Redis Cluster as the cluster tier uses them: commands routed by slot,
one round trip per node, a circuit breaker per node, redirects followed.

Every node's batch is written first, then the replies are read node by node: the nodes
work at once, and the replies of the later ones wait in their sockets meanwhile (cheaper
than a task per node). The reads run under one deadline renewed node by node, a write
that has to wait under its own. A node that fails or times out is skipped, not the
cluster; only when no master answers does a call raise, so the engine's own breaker
handles a whole outage as on one Redis. A redirect (``MOVED`` during resharding, ``ASK``
while a slot migrates, ``TRYAGAIN``, or a ``NOSCRIPT`` from a node that lost its scripts)
sends that one command through redis-py's ``RedisCluster``, which follows it and updates
its slot map.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

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

from cache.breaker import BreakerState, CircuitBreaker
from cache.config import CacheConfig
from cache.connections import ConnectionStack, pack
from cache.counters import Counters
from cache.deadline import Deadline
from cache.health import REDIS_FAILURES

logger = logging.getLogger(__name__)

Command = tuple[EncodableT, ...]

_REDIRECTS: Final = (AskError, TryAgainError, NoScriptError)  # MovedError is an AskError

ROUTES_KEPT: Final = 16_384
"""Keys whose slot and encoded ``GET`` are remembered (a few MB at most): a batch's keys
come back request after request, and computing both was 80 µs of a batch (benchmarks.md)."""

Batch = tuple[list[Command], bytes]
"""A node's commands, and the same encoded as they are sent."""

Route = tuple[int, bytes, Command]
"""A key's slot, its ``GET`` encoded, and that ``GET`` (sent again on a redirect)."""


class _Unreached:
    """The reply of a command whose node was skipped or failed."""


UNREACHED: Final = _Unreached()


class NodeLink:
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


class ClusterNodes:
    """This process's links to the nodes of one cluster (see the module docstring)."""

    def __init__(
        self,
        client: RedisCluster,
        config: CacheConfig,
        counters: Counters,
        scripts: dict[str, str],
        on_node_back: Callable[[], None],
    ) -> None:
        self.client = client
        self._timeout_s = config.redis_timeout_ms / 1000
        self._max_connections = config.redis_max_connections
        self._failure_threshold = config.breaker_failure_threshold
        self._reset_s = config.breaker_reset_seconds
        self._counters = counters
        self._scripts = scripts
        """``{sha: text}``: a script redirected to another node goes as ``EVAL``."""
        self._on_node_back = on_node_back
        """Runs when a node's breaker closes again: invalidations may have been missed."""
        self._links: dict[str, NodeLink] = {}
        self._ready = False
        self._routes: dict[str, Route] = {}  # at most ROUTES_KEPT
        self._slot_links: dict[int, NodeLink] = {}
        """Each slot's link as redis-py's map said; forgotten when that map is replaced or
        a command was redirected. A slot that moved meanwhile costs one redirect, never a
        wrong reply: the old node answers ``MOVED``."""
        self._slot_map: object = None

    async def route(self) -> None:
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
        return self.slot_link(key_slot(redis_key.encode())).name

    def route_get(self, redis_key: str) -> tuple[NodeLink, Route]:
        """The link serving ``redis_key``, and its remembered route."""
        route = self._routes.get(redis_key)
        if route is None:
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            name = redis_key.encode()
            command = ("GET", redis_key)
            route = self._routes[redis_key] = (key_slot(name), pack([("GET", name)]), command)
        return self.slot_link(route[0]), route

    def memos(self) -> tuple[dict[str, Route], dict[int, NodeLink]]:
        """The remembered routes, and links of slots as redis-py's slot map says now (for
        a loop over many keys that calls :meth:`route_get` only for what is missing)."""
        manager = self.client.nodes_manager
        if manager.slots_cache is not self._slot_map:
            self._slot_links.clear()
            self._slot_map = manager.slots_cache
        return self._routes, self._slot_links

    def slot_link(self, slot: int) -> NodeLink:
        _, slot_links = self.memos()
        link = slot_links.get(slot)
        if link is None:
            node = self.client.nodes_manager.get_node_from_slot(slot)
            link = slot_links[slot] = self.link(node)
        return link

    def link(self, node: ClusterNode) -> NodeLink:
        link = self._links.get(node.name)
        if link is None:
            breaker = CircuitBreaker(self._failure_threshold, self._reset_s)
            link = self._links[node.name] = NodeLink(node, self._max_connections, breaker)
        return link

    @property
    def whole(self) -> bool:
        return all(link.breaker.closed for link in self._links.values())

    def down(self) -> list[str]:
        return [link.name for link in self._links.values() if not link.breaker.closed]

    async def fan_out(
        self,
        by_node: dict[str, list[Command]],
        skipped: set[str] | None = None,
        force: bool = False,
    ) -> dict[str, list[Any] | None]:
        """:meth:`run` for commands not encoded yet."""
        batches = {name: (commands, pack(commands)) for name, commands in by_node.items()}
        return await self.run(batches, skipped, force)

    async def run(
        self,
        batches: dict[str, Batch],
        skipped: set[str] | None = None,
        force: bool = False,
    ) -> dict[str, list[Any] | None]:
        """Each node's replies, or ``None`` for a node that failed or was skipped (its
        name then goes to ``skipped``). Every node's batch is written first, then the
        replies are read node by node: the nodes work at once, and the replies of the
        later ones wait in their sockets meanwhile (cheaper than a task per node).
        Each node's read is bounded from when it starts (one deadline, renewed for
        each node: a server starved of CPU on a busy host gets its own time, as the
        first one does); a reply already here when it expires is still taken. A write
        has a deadline of its own when it has to wait (a connection to free or open)."""
        skipped = set() if skipped is None else skipped
        replies: dict[str, list[Any] | None] = {}
        sent: list[tuple[NodeLink, list[Command], AbstractConnection]] = []
        try:
            # In one order everywhere: a call holding one node's connection while it
            # waits for another's (at the cap) never waits on a call that holds the other
            # and waits for this one.
            for name in sorted(batches):
                commands, packed = batches[name]
                replies[name] = None
                link = self._links[name]
                if not self._allowed(link, skipped, force):
                    continue
                try:
                    connection = await link.stack.send_now(packed)
                    if connection is None:
                        async with Deadline(self._timeout_s):
                            connection = await link.stack.send(packed)
                    sent.append((link, commands, connection))
                except REDIS_FAILURES as error:
                    self._failed(link, error)
            while sent:
                link = sent[0][0]
                try:
                    async with Deadline(self._timeout_s) as deadline:
                        while sent:
                            link, commands, connection = sent.pop(0)
                            replies[link.name] = await self._receive(link, commands, connection)
                            if sent:
                                deadline.renew()
                except TimeoutError as error:  # the deadline's; _receive takes any other failure
                    self._failed(link, error)
        finally:
            for link, _, connection in sent:  # cancelled: the unread are out of step
                await link.stack.abandon(connection)
        return replies

    def _allowed(self, link: NodeLink, skipped: set[str], force: bool) -> bool:
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
        self, link: NodeLink, commands: list[Command], connection: AbstractConnection
    ) -> list[Any] | None:
        """The node's replies, or ``None`` when it fails (counted, and fed to its breaker:
        a failing node is skipped, the others are not). A connection the server closed
        while idle fails here, not on the write: its batch is sent once more. Runs under
        the caller's deadline."""
        try:
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
            self._on_node_back()
        return replies

    async def _redirected(self, command: Command) -> Any:
        """One command through redis-py's cluster client, which follows MOVED and ASK (and
        learns the new owner of the slot); a script goes as EVAL, whatever node it lands
        on. A refused command is returned as its error, like in a node's batch."""
        if command[0] == "EVALSHA":
            command = ("EVAL", self._scripts[str(command[1])], *command[2:])
        self._counters.add("redis_redirects")
        self._slot_links.clear()  # the slot may have moved: ask redis-py's map again
        try:
            return await self.client.execute_command(*command)
        except ResponseError as error:
            return error

    def _failed(self, link: NodeLink, error: BaseException) -> None:
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

    async def _release_discovery_connections(self) -> None:
        """redis-py keeps the connections it asked the slot map on; the engine's commands
        go over its own stacks, so only redirects need the client's (opened again then)."""
        manager = self.client.nodes_manager
        for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]:
            await node.disconnect_free_connections()

    async def close(self) -> None:
        for link in self._links.values():
            await link.stack.close()


class _NodeBatch:
    """One node's share of a plan: its commands, encoded, and their places in the plan."""

    __slots__ = ("commands", "packed", "positions")

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.packed: list[bytes] = []
        self.positions: list[int] = []


class Plan:
    """Commands routed to their nodes, then run one round trip per node, in parallel."""

    def __init__(self, nodes: ClusterNodes) -> None:
        self._nodes = nodes
        self._by_node: dict[str, _NodeBatch] = {}
        self._count = 0

    @property
    def empty(self) -> bool:
        return not self._count

    def add(self, redis_key: str, command: Command) -> None:
        batch = self._batch(self._nodes.node_for(redis_key))
        batch.commands.append(command)
        batch.packed.append(pack([command]))
        batch.positions.append(self._count)
        self._count += 1

    def gets(self, redis_keys: Iterable[str]) -> None:
        """``add(key, ("GET", key))`` for each of ``redis_keys``, in one loop over their
        remembered routes (a batch read's dozens of keys)."""
        routes, slot_links = self._nodes.memos()
        route_get = self._nodes.route_get
        by_node = self._by_node
        position = self._count
        for redis_key in redis_keys:
            route = routes.get(redis_key)
            link = None if route is None else slot_links.get(route[0])
            if link is None or route is None:
                link, route = route_get(redis_key)
            batch = by_node.get(link.name) or self._batch(link.name)
            batch.commands.append(route[2])
            batch.packed.append(route[1])
            batch.positions.append(position)
            position += 1
        self._count = position

    def _batch(self, name: str) -> _NodeBatch:
        batch = self._by_node.get(name)
        if batch is None:
            batch = self._by_node[name] = _NodeBatch()
        return batch

    async def run(self) -> list[Any]:
        """Each command's reply in order: a value, an error reply, or :data:`UNREACHED`."""
        skipped: set[str] = set()
        by_node = self._by_node
        batches = {
            name: (batch.commands, b"".join(batch.packed)) for name, batch in by_node.items()
        }
        replies = await self._nodes.run(batches, skipped)
        if all(got is None for got in replies.values()):
            await self._nodes.check_whole_outage(replies, skipped)
        out: list[Any] = [UNREACHED] * self._count
        for name, batch in by_node.items():
            got = replies[name]
            if got is not None:
                for position, reply in zip(batch.positions, got, strict=True):
                    out[position] = reply
        return out
