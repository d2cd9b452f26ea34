"""L1: the bounded W-TinyLFU store."""

from __future__ import annotations

import random
import time

from cache.memory import TinyLFUStore


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
