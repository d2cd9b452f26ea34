"""Leases of L1 hits (`get_entry_with_tier`, `TieredCache.holds`): a caller replaying what
it made of an entry may do so only while L1 would still serve that very entry. Every event
that can make an L1 entry unservable, or make L1 serve another one, ends every lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cache import Lease, TagVersions, TieredCache
from cache.versions import TagVersionView
from tests.cache.conftest import MakeCache, Source, eventually, own_tag


async def _versions(cache: TieredCache) -> TagVersions:
    source = Source({"a": 1, "b": 2})
    with cache.recording() as rec:
        await cache.get_many_or_load(["a", "b"], source.load, tags=own_tag)
    return rec.tag_versions


async def _page(cache: TieredCache, key: str = "page", ttl: float = 60) -> Lease:
    """A composite of "a" and "b" stored under `key`, read back from L1: its lease."""
    await cache.set_entry(key, {"sum": 3}, await _versions(cache), ttl=ttl)
    found = await cache.get_entry_with_tier(key)
    assert found is not None
    entry, tier, lease = found
    assert (entry.value, tier) == ({"sum": 3}, "L1")
    assert lease is not None
    assert cache.holds(lease)
    return lease


async def test_a_lease_holds_while_nothing_happens(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    lease = await _page(cache)
    for _ in range(3):  # reads, of the entry and of the values it was built from
        assert await cache.get_entry("page") is not None
        await cache.get_many_or_load(["a", "b"], Source({}).load, tags=own_tag)
    assert cache.holds(lease)


async def test_an_l2_hit_has_no_lease(make_cache: MakeCache) -> None:
    writer = await make_cache()
    await _page(writer)
    reader = await make_cache()
    found = await reader.get_entry_with_tier("page")
    assert found is not None
    assert found[1:] == ("L2", None)


async def test_a_local_invalidation_ends_it(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    lease = await _page(cache)
    await cache.invalidate(["b"])
    assert not cache.holds(lease)


async def test_an_invalidation_heard_from_another_instance_ends_it(
    make_cache: MakeCache,
) -> None:
    cache = await make_cache()
    other = await make_cache()
    lease = await _page(cache)
    await other.invalidate(["a"])
    await eventually(lambda: cache.stats["invalidations_received"] >= 1)
    assert not cache.holds(lease)


async def test_a_flush_of_l1_ends_it(make_cache: MakeCache) -> None:
    cache = await make_cache()
    lease = await _page(cache)
    cache._invalidator.on_broadcast_lost()  # messages may have been missed meanwhile
    assert not cache.holds(lease)


async def test_any_write_to_l1_ends_it(make_cache: MakeCache) -> None:
    """An overwrite of the entry, or any fill, which may evict it."""
    cache = await make_cache(redis_url=None)
    lease = await _page(cache)
    await cache.get_many_or_load(["c"], Source({"c": 3}).load, tags=own_tag)
    assert not cache.holds(lease)
    lease = await _page(cache)
    await cache.set_entry("page", {"sum": 4}, await _versions(cache))  # overwritten
    assert not cache.holds(lease)


async def test_a_write_refused_by_l1_leaves_it(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    lease = await _page(cache)
    await cache.set_entry("other", {"sum": 0}, (("a", -99),))  # a stale version: refused
    assert cache.holds(lease)


async def test_its_entry_expiring_ends_it(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    lease = await _page(cache, ttl=0.2)
    await asyncio.sleep(0.25)
    assert not cache.holds(lease)
    assert await cache.get_entry("page") is None  # L1 no longer serves it either


async def test_closing_the_engine_ends_it(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    lease = await _page(cache)
    await cache.close()
    assert not cache.holds(lease)


def test_the_view_ends_leases_on_every_move_that_can_stale_an_entry() -> None:
    view = TagVersionView(max_tags=3)
    now = 0

    def lease() -> Lease:
        return Lease(view.revision, view.writes, float("inf"))

    moves: dict[str, Callable[[], object]] = {
        "a read raising a known version": lambda: view.merge([("a", now + 1)]),
        "a broadcast raising one": lambda: view.merge_late([("a", now + 1)]),
        "a drop": lambda: view.drop(["b"]),
        "a flush": view.flush,
        "the view full, flushed": lambda: [view.merge([(t, 1)]) for t in ("x", "y")],
    }
    for move, apply in moves.items():
        now += 10
        view.merge([("a", now), ("b", now)])
        held = lease()
        view.merge([("a", now - 1), ("b", now)])  # nothing new: still held
        assert view.holds(held), move
        apply()
        assert not view.holds(held), move
    held = lease()
    view.merge([("c", 1)])  # a tag no entry current now can carry
    assert view.holds(held)
    assert not view.holds(Lease(view.revision, view.writes, 0.0))  # expired
