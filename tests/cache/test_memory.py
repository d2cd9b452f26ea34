"""L1: the bounded W-TinyLFU store."""

from __future__ import annotations

import gc
import random
import time
import weakref

from cache import TieredCache
from cache.memory import TinyLFUStore
from tests.cache.conftest import config_for


def test_reads_writes_and_deletes() -> None:
    store = TinyLFUStore(100)
    store.set_many([("a", 1), ("b", 2), ("c", 3)], ttl=10)
    assert store.get("a") == 1
    assert store.get_many(["a", "b", "x"]) == [1, 2, None]
    store.delete("c")
    assert store.get("c") is None
    store.clear()
    assert store.get_many(["a", "b"]) == [None, None]
    assert len(store) == 0


def test_bound_holds_and_evictions_are_counted() -> None:
    store = TinyLFUStore(100)
    for index in range(2_000):
        store.set_many([(f"k{index}", index)])
    assert len(store) <= 100
    assert store.evictions >= 1_900


def test_evictions_survive_a_clear() -> None:
    store = TinyLFUStore(10)
    for index in range(500):
        store.set_many([(f"k{index}", index)])
    before = store.evictions
    assert before > 0
    store.clear()
    assert store.evictions == before


def test_frequently_used_entries_survive_a_scan() -> None:
    """The property that makes W-TinyLFU better than LRU: a one-off scan of many cold keys
    does not flush the hot set (under LRU every hot key would be gone)."""
    store = TinyLFUStore(200)
    hot = [f"hot{index}" for index in range(50)]
    for _ in range(20):
        for key in hot:
            if store.get(key) is None:
                store.set_many([(key, key)])
    for index in range(5_000):
        store.set_many([(f"cold{index}", index)])
    survivors = [value for value in store.get_many(hot) if value is not None]
    assert len(survivors) >= 45


def test_ttl_expires_entries() -> None:
    store = TinyLFUStore(10)
    store.set_many([("short", 1)], ttl=0.05)
    store.set_many([("long", 2)], ttl=60)
    time.sleep(0.1)
    assert store.get("short") is None
    assert store.get("long") == 2


class _Value:
    """A value a weak reference can follow (ints and bytes cannot be weakly referenced)."""


def test_a_clear_releases_what_the_store_held_at_once() -> None:
    """A theine cache is a reference cycle: replaced at a flush and left to itself, it and
    every value it held stayed alive until the next full garbage collection, so a server
    held a second L1 beside the refilling one for minutes. Checked with the collector off:
    the values must go when the store lets them go, not when a collection finds them."""
    store = TinyLFUStore(100)
    values = [_Value() for _ in range(50)]
    refs = [weakref.ref(value) for value in values]
    store.set_many([(f"k{index}", value) for index, value in enumerate(values)], ttl=60)
    del values
    assert all(ref() is not None for ref in refs)  # held by the store
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        store.clear()
        alive = sum(ref() is not None for ref in refs)
    finally:
        if was_enabled:
            gc.enable()
    assert alive == 0
    store.set_many([("after", 1)], ttl=60)  # the fresh store works
    assert store.get("after") == 1


def test_flushes_between_writes_never_break_the_store() -> None:
    """theine 2.0's own clear() corrupts its policy core (a later write panics in Rust);
    the store must survive any mix of writes, reads, deletes and flushes."""
    store = TinyLFUStore(200)
    rng = random.Random(1)
    for step in range(20_000):
        key = f"k{rng.randint(0, 1000)}"
        roll = rng.random()
        if roll < 0.5:
            store.get(key)
        elif roll < 0.85:
            store.set_many([(key, step)], ttl=300)
        elif roll < 0.97:
            store.delete(key)
        else:
            store.clear()
    store.set_many([("last", "value")], ttl=300)
    assert store.get("last") == "value"
    assert len(store) <= 200


def _weigh(value: bytes) -> int:
    return len(value)


def test_bytes_are_bounded_whatever_the_sizes() -> None:
    # 1,000 entries and 1 MiB: small values (at most 512 B with their key) are bounded by
    # count in theine, larger ones by bytes in the LRU beside it.
    store = TinyLFUStore(1_000, 1024 * 1024, _weigh)
    for index in range(3_000):
        store.set_many([(f"big{index}", b"x" * 64 * 1024)], ttl=60)
    small_limit = 1024 * 1024 // 2_000
    assert store.bytes_held <= 1024 * 1024 - 1_000 * small_limit
    assert store.bytes_held >= 7 * 64 * 1024  # the large part is used, not skipped
    assert len(store) <= 1_000 + 8
    assert store.evictions >= 3_000 - 8
    assert store.get("big2999") == b"x" * 64 * 1024  # the newest large value is kept
    assert store.get("big0") is None


def test_a_value_moves_between_the_small_and_large_parts() -> None:
    store = TinyLFUStore(100, 100 * 1024, _weigh)
    store.set_many([("k", b"s")], ttl=60)
    store.set_many([("k", b"L" * 4096)], ttl=60)
    assert store.get("k") == b"L" * 4096
    store.set_many([("k", b"s2")], ttl=60)
    assert store.get("k") == b"s2"
    assert store.get_many(["k", "missing"]) == [b"s2", None]
    store.delete("k")
    assert store.get("k") is None


def test_a_value_over_the_whole_budget_is_not_kept_and_hides_no_older_one() -> None:
    store = TinyLFUStore(10, 10 * 1024, _weigh)
    store.set_many([("k", b"old")], ttl=60)
    store.set_many([("k", b"x" * 20 * 1024)], ttl=60)
    assert store.get("k") is None


def test_large_values_expire_and_clear_keeps_the_eviction_count() -> None:
    store = TinyLFUStore(10, 10 * 1024, _weigh)
    store.set_many([("k", b"x" * 2048)], ttl=0.05)
    assert store.get("k") is not None
    time.sleep(0.1)
    assert store.get("k") is None
    for index in range(20):
        store.set_many([(f"k{index}", b"x" * 2048)], ttl=60)
    before = store.evictions
    assert before > 0
    store.clear()
    assert store.evictions == before
    assert store.get("k19") is None


async def test_the_engine_holds_its_l1_to_the_byte_bound() -> None:
    # Memory-only, so every value lives in L1: 200 values of 64 KiB against 1 MiB.
    config = config_for(None, "l1-bytes", l1_max_entries=100, l1_max_bytes=1024 * 1024)
    async with TieredCache(config) as cache:
        for index in range(200):

            async def load(index: int = index) -> str:
                return f"{index}:" + "x" * 64 * 1024

            await cache.get_or_load(f"big:{index}", load, ttl=60, tags=[f"big:{index}"])
        assert 0 < cache.stats["l1_bytes"] <= 1024 * 1024
        assert cache.stats["l1_evictions"] >= 200 - 16
