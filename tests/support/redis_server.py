"""A throwaway redis-server process for tests: started, stopped and restarted for real."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError

from graph.cli.redis_process import RedisServer, free_port, redis_server_binary

__all__ = ["RedisServer", "fill_until_refused", "free_port", "redis_server_binary"]


async def fill_until_refused(client: aioredis.Redis) -> None:
    """maxmemory just above what is used, noeviction, then filler keys until a write is
    refused with OOM."""
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", str(used + 2_000_000))
    blob = b"x" * 100_000
    for index in range(1000):
        try:
            await client.set(f"filler:{index}", blob)
        except OutOfMemoryError:
            # Freed buffers could bring it back under the line by a few kilobytes: lower
            # the line well below what the filler keys hold (noeviction keeps them).
            await client.config_set("maxmemory", str(used + 1_000_000))
            return
    raise AssertionError("Redis never refused a write")
