"""L2: Redis on a redis-py asyncio pool built from a URL.

The batch read, the conditional fill and the invalidation are Lua scripts: each is one
round trip, and each must see the entries and the tag versions at the same instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from cache import scripts
from cache.connections import ConnectionStack
from cache.keys import KeySpace


@dataclass(frozen=True, slots=True)
class ReadResult:
    blobs: list[bytes | None]
    versions: list[int]
    """Current version of each tag asked for, created if it did not exist."""
    unreachable: tuple[str, ...] = ()
    """Tags whose version could not be read (on a cluster, their node is down): their
    place in ``versions`` holds 0, which no entry records; the reader gives them a
    version of its own (``TagVersionView.local_versions``)."""


@dataclass(frozen=True, slots=True)
class FillItem:
    redis_key: str
    blob: bytes
    ttl_ms: int
    tag_indexes: Sequence[int]
    """0-based positions in the fill's tag list of the tags this entry depends on."""


def build_client(url: str, timeout_s: float) -> aioredis.Redis:
    """A client for ``redis://``, ``rediss://`` or ``unix://`` URLs, ACL credentials included.

    One retry inside redis-py, for connection errors only: a pooled connection the
    server has closed (a restart, CLIENT KILL, an idle timeout) fails its next command
    at once, and redis-py's own check on checkout does not reliably notice. The retry
    reconnects. Timeouts are never retried: a hidden retry would multiply the wait.

    This client (redis-py's default socket timeout, an uncapped pool) serves the admin
    calls; the engine's own commands run on a capped
    :class:`ConnectionStack` of connections built from the same settings.
    """
    pool = aioredis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return aioredis.Redis(connection_pool=pool)


def build_listener_client(url: str, connect_timeout_s: float) -> aioredis.Redis:
    """A separate client for pub/sub, with a health check so a silently dead connection is
    noticed. Its waits for messages carry their own timeout (``get_message``); redis-py's
    default 5 s socket timeout bounds the rest (a SUBSCRIBE to a hung server fails and the
    listener reconnects)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=1,
    )


def _untimed_connections(client: aioredis.Redis) -> Callable[[], AbstractConnection]:
    """Connections like the pool's, without redis-py's socket timeout: every engine call
    already runs under the engine's deadline (``redis_timeout_ms``), and with a socket
    timeout redis-py wraps each write in ``asyncio.wait_for``, a Task per command."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": None}
    return lambda: pool.connection_class(**kwargs)


class L2Tier(Protocol):
    """What the engine calls on L2: :class:`RedisTier` (one Redis) or
    :class:`~cache.cluster_tier.ClusterTier` (a Redis Cluster)."""

    keys: KeySpace
    client: Any
    """redis-py's client (``Redis`` or ``RedisCluster``), for the operator's admin calls."""

    @property
    def deadline_s(self) -> float:
        """The bound of one engine call, however many round trips it makes."""
        ...

    @property
    def whole(self) -> bool:
        """False while part of L2 (a cluster node) is skipped."""
        ...

    async def read(
        self, keys: Sequence[str], tags: Sequence[str], tag_ttl_ms: int
    ) -> ReadResult: ...

    async def read_entry(self, key: str, tag_ttl_ms: int) -> tuple[bytes | None, list[int]]: ...

    async def fill(
        self, items: Sequence[FillItem], tags: Sequence[str], versions: Sequence[int]
    ) -> int: ...

    async def invalidate(self, tags: Sequence[str], tag_ttl_ms: int) -> Sequence[int | None]:
        """The new version of each tag, ``None`` where the bump did not reach its node."""
        ...

    async def warm_up(self) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisTier:
    """The engine's operations on Redis, each one round trip (a Lua script).

    At most ``max_connections`` calls run at once; the others queue for a connection,
    within the caller's deadline, instead of failing. The scripts run on a
    :class:`ConnectionStack` of the pool's connections; ``client`` (the pool) serves the
    operator's admin calls.
    """

    whole = True

    def __init__(self, url: str, keys: KeySpace, timeout_s: float, max_connections: int) -> None:
        self.url = url
        self.keys = keys
        self.deadline_s = timeout_s
        self.client = build_client(url, timeout_s)
        self._commands = ConnectionStack(_untimed_connections(self.client), max_connections)
        self._read = self.client.register_script(scripts.READ)
        self._read_entry = self.client.register_script(scripts.READ_ENTRY)
        self._fill = self.client.register_script(scripts.FILL)
        self._invalidate = self.client.register_script(scripts.INVALIDATE)

    async def _eval(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, loading the script once if the server lost it (a restart, a SCRIPT
        FLUSH). redis-py's script objects give the SHA; the call goes on our connections."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._commands.execute(*command)
        except NoScriptError:
            await self._commands.execute("SCRIPT", "LOAD", script.script)
            return await self._commands.execute(*command)

    async def read(self, keys: Sequence[str], tags: Sequence[str], tag_ttl_ms: int) -> ReadResult:
        """Entries of ``keys`` and the current versions of ``tags``, in one round trip."""
        space = self.keys
        names = msgpack.packb([keys, tags])
        reply = await self._eval(
            self._read, [space.prefix], [space.entry_prefix, space.tag_prefix, tag_ttl_ms, names]
        )
        blobs, versions = msgpack.unpackb(reply, raw=True, use_list=True)
        return ReadResult([blob or None for blob in blobs], versions)

    async def read_entry(self, key: str, tag_ttl_ms: int) -> tuple[bytes | None, list[int]]:
        """The blob of ``key`` and the current versions of the tags named in its stamps
        (in stamp order), in one round trip."""
        reply = await self._eval(
            self._read_entry, [self.keys.entry(key)], [self.keys.tag_prefix, tag_ttl_ms]
        )
        blob, versions = msgpack.unpackb(reply, raw=True, use_list=True)
        return blob or None, versions

    async def fill(
        self, items: Sequence[FillItem], tags: Sequence[str], versions: Sequence[int]
    ) -> int:
        """Writes the items whose tags still have ``versions``; returns how many it wrote."""
        keys = [item.redis_key for item in items] + [self.keys.tag(tag) for tag in tags]
        args: list[Any] = [len(items), len(tags), *versions]
        for item in items:
            args += [item.ttl_ms, item.blob, len(item.tag_indexes)]
            args += [index + 1 for index in item.tag_indexes]
        return int(await self._eval(self._fill, keys, args))

    async def invalidate(self, tags: Sequence[str], tag_ttl_ms: int) -> list[int]:
        reply = await self._eval(
            self._invalidate,
            [self.keys.tag(tag) for tag in tags],
            [tag_ttl_ms, self.keys.channel, *tags],
        )
        return [int(v) for v in reply]

    async def warm_up(self) -> None:
        """Opens a connection and loads the scripts, so the first real call is not the one
        paying for the handshake under the per-call deadline."""
        for script in (self._read, self._read_entry, self._fill, self._invalidate):
            await self._commands.execute("SCRIPT", "LOAD", script.script)

    async def ping(self) -> None:
        await self._commands.execute("PING")

    async def close(self) -> None:
        await self._commands.close()
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
