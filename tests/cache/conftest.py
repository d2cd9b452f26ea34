"""Fixtures for the cache engine tests: engines on a real Redis, and a source of truth."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from cache import CacheConfig, TieredCache
from cache.keys import KeySpace
from models import Database
from models.outbox import DatabaseOutbox

SECRET = b"test-secret"

MakeCache = Callable[..., Awaitable[TieredCache]]


FAST_FAULTS: dict[str, Any] = {
    "redis_timeout_ms": 50,
    "breaker_failure_threshold": 2,
    "breaker_reset_seconds": 0.1,
    "degraded_l1_ttl": 0.3,
}
"""Engine settings for fault tests: a short deadline and a quick breaker."""


def config_for(redis_url: str | None, namespace: str, **overrides: Any) -> CacheConfig:
    # A generous Redis deadline by default so a busy test machine does not turn hits into
    # timeouts; the fault tests set a short one.
    base = CacheConfig(
        redis_url=redis_url, namespace=namespace, secret=SECRET, redis_timeout_ms=1000
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def make_cache(l2_url: str, l2_kind: str, key_prefix: str) -> AsyncIterator[MakeCache]:
    """Started engines on the suite's L2 (one Redis, or the cluster for ``l2_both`` tests)
    under this test's prefix; closed at the end."""
    engines: list[TieredCache] = []

    async def make(**overrides: Any) -> TieredCache:
        overrides.setdefault("redis_url", l2_url)
        overrides.setdefault("redis_cluster", "on" if l2_kind == "cluster" else "off")
        url = overrides.pop("redis_url")
        engine = TieredCache(config_for(url, key_prefix, **overrides))
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


@pytest.fixture
async def redis_client(l2_url: str, l2_kind: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the L2 ``make_cache`` uses (a cluster client on a cluster: same
    commands, routed by key)."""
    if l2_kind == "cluster":
        cluster = RedisCluster.from_url(l2_url)
        yield cast(aioredis.Redis, cluster)
        await cluster.aclose()
        return
    client = aioredis.Redis.from_url(l2_url)
    yield client
    await client.aclose()


@pytest.fixture
def key_space(key_prefix: str, l2_kind: str) -> KeySpace:
    """The Redis names the engine uses under this test's prefix, in this L2's layout."""
    keys = KeySpace(key_prefix)
    if l2_kind == "cluster":
        keys.spread_over_slots()
    return keys


class Source:
    """The database stand-in: a dict, with a count of reads per key."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.batches: list[list[str]] = []

    async def load(self, keys: list[str]) -> dict[str, Any]:
        self.batches.append(list(keys))
        return {key: self.data[key] for key in keys if key in self.data}

    @property
    def reads(self) -> int:
        return sum(len(batch) for batch in self.batches)


class SlowSource(Source):
    """Reads the data at once, then holds its answer until released: the loader that read
    the database just before a concurrent write committed."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.has_read = asyncio.Event()
        self.release = asyncio.Event()

    async def load(self, keys: list[str]) -> dict[str, Any]:
        snapshot = await super().load(keys)
        self.has_read.set()
        await self.release.wait()
        return snapshot


def own_tag(key: str) -> list[str]:
    return [key]


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Polls ``condition`` (cheap, in-process) until it holds; fails the test after ``within``
    seconds. Used where the event is another task's progress, not the passage of time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {within}s")
        await asyncio.sleep(0.001)


def format2_blob(secret: bytes, redis_key: bytes, tags: list[str], body: bytes) -> bytes:
    """A genuine, signed entry in the previous wire format (MAC, u32 header length, tags
    joined by NUL, msgpack body), as a rolling deploy leaves behind."""
    header = "\x00".join(tags).encode()
    rest = len(header).to_bytes(4, "big") + header + body
    return hmac.new(secret, redis_key + b"\x00" + rest, hashlib.sha256).digest() + rest


@pytest.fixture
async def engines() -> AsyncIterator[list[TieredCache]]:
    """Engines a test starts with :func:`start_engine`; closed at the end."""
    made: list[TieredCache] = []
    yield made
    for engine in made:
        await engine.close()


async def start_engine(
    made: list[TieredCache],
    redis_url: str,
    namespace: str,
    outbox: DatabaseOutbox,
    **overrides: Any,
) -> TieredCache:
    """A started engine relaying from ``outbox``."""
    engine = TieredCache(config_for(redis_url, namespace, **overrides), outbox)
    await engine.start()
    made.append(engine)
    return engine


@pytest.fixture
async def outbox(database_url: str) -> AsyncIterator[DatabaseOutbox]:
    """The app's outbox on a fresh database of each kind: the engine tests that relay
    from a real table."""
    db = Database(database_url)
    yield DatabaseOutbox(db)
    await db.dispose()
