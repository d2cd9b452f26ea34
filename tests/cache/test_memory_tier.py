"""L1: a bounded W-TinyLFU store behind aiocache's backend interface."""

from __future__ import annotations

import asyncio

from cache import TinyLFUMemoryBackend


async def test_backend_speaks_the_aiocache_api() -> None:
    store = TinyLFUMemoryBackend(100)
    assert await store.set("a", 1, ttl=10)
    assert await store.multi_set([("b", 2), ("c", 3)])
    assert await store.get("a") == 1
    assert await store.multi_get(["a", "b", "x"]) == [1, 2, None]
    assert await store.exists("c")
    assert await store.delete("c") == 1
    assert await store.get("c") is None
    assert await store.increment("n", 5) == 5


async def test_bound_holds_and_evictions_are_counted() -> None:
    store = TinyLFUMemoryBackend(100)
    for index in range(2_000):
        await store.set(f"k{index}", index)
    assert len(store) <= 100
    assert store.evictions >= 1_900


async def test_frequently_used_entries_survive_a_scan() -> None:
    """The property that makes W-TinyLFU better than LRU: a one-off scan of many cold keys
    does not flush the hot set (under LRU every hot key would be gone)."""
    store = TinyLFUMemoryBackend(200)
    hot = [f"hot{index}" for index in range(50)]
    for _ in range(20):
        for key in hot:
            if await store.get(key) is None:
                await store.set(key, key)
    for index in range(5_000):
        await store.set(f"cold{index}", index)
    survivors = [value for value in await store.multi_get(hot) if value is not None]
    assert len(survivors) >= 45


async def test_ttl_expires_entries() -> None:
    store = TinyLFUMemoryBackend(10)
    await store.set("short", 1, ttl=0.05)
    await store.set("long", 2, ttl=60)
    await asyncio.sleep(0.1)
    assert await store.get("short") is None
    assert await store.get("long") == 2


def test_flushes_between_writes_never_break_the_store() -> None:
    """theine 2.0's own clear() corrupts its policy core (a later write panics in Rust);
    the backend must survive any mix of writes, reads, deletes and flushes."""
    import random

    from cache.memory import TinyLFUMemoryBackend

    backend = TinyLFUMemoryBackend(200)
    rng = random.Random(1)
    for step in range(20_000):
        key = f"k{rng.randint(0, 1000)}"
        roll = rng.random()
        if roll < 0.5:
            backend.get_now(key)
        elif roll < 0.85:
            backend.set_many_now([(key, step)], ttl=300)
        elif roll < 0.97:
            backend.delete_now(key)
        else:
            backend.clear_now()
    backend.set_many_now([("last", "value")], ttl=300)
    assert backend.get_now("last") == "value"
    assert len(backend) <= 200
