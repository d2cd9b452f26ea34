"""Tag invalidation, and the stale-set race of SPEC 6.8 in both tiers."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from cache.entry import TagVersions
from cache.keys import KeySpace
from cache.versions import TagVersionView
from tests.cache.conftest import MakeCache, SlowSource, Source, eventually, own_tag

pytestmark = pytest.mark.l2_both


async def test_invalidation_reaches_every_list_that_depends_on_a_tag(
    make_cache: MakeCache,
) -> None:
    source = Source({"item:1": "a", "list:all": ["a"], "item:2": "b"})
    cache = await make_cache()
    tags = {"item:1": ["Item:1"], "list:all": ["Item"], "item:2": ["Item:2"]}
    await cache.get_many_or_load(list(source.data), source.load, tags=tags.__getitem__)
    source.data.update({"item:1": "a2", "list:all": ["a2"]})
    assert await cache.invalidate(["Item:1", "Item", "Item:1"]) == 2
    got = await cache.get_many_or_load(list(source.data), source.load, tags=tags.__getitem__)
    assert got == source.data
    assert source.batches[-1] == ["item:1", "list:all"]  # item:2 was not touched


async def test_slow_loader_cannot_store_its_old_value_after_an_invalidation(
    make_cache: MakeCache,
) -> None:
    """Same process: the load starts, the write commits and invalidates, the load ends."""
    source = SlowSource({"k": "old"})
    cache = await make_cache()
    other = await make_cache()
    reader = asyncio.create_task(cache.get_many_or_load(["k"], source.load, tags=own_tag))
    await source.has_read.wait()
    source.data["k"] = "new"
    await cache.invalidate(["k"])
    source.release.set()
    assert await reader == {"k": "old"}  # it was concurrent with the write: allowed

    fresh = Source(source.data)
    assert await cache.get_many_or_load(["k"], fresh.load, tags=own_tag) == {"k": "new"}
    assert await other.get_many_or_load(["k"], fresh.load, tags=own_tag) == {"k": "new"}
    stats = cache.stats
    assert stats["l1_stale_rejected"] >= 1
    assert stats["l2_stale_rejected"] == 1


async def test_slow_loader_on_another_instance_cannot_store_its_old_value(
    make_cache: MakeCache,
) -> None:
    source = SlowSource({"k": "old"})
    loader_instance = await make_cache()
    writer_instance = await make_cache()
    reader = asyncio.create_task(loader_instance.get_many_or_load(["k"], source.load, tags=own_tag))
    await source.has_read.wait()
    source.data["k"] = "new"
    await writer_instance.invalidate(["k"])
    source.release.set()
    await reader

    fresh = Source(source.data)
    assert await writer_instance.get_many_or_load(["k"], fresh.load, tags=own_tag) == {"k": "new"}
    # Redis refused the old value at once (the version it was loaded under has moved). The
    # loader instance's own L1 may hold it until the broadcast arrives (the window the
    # design allows): wait for that event, then neither tier holds "old".
    await eventually(lambda: loader_instance.stats["invalidations_received"] >= 1)
    assert await loader_instance.get_many_or_load(["k"], fresh.load, tags=own_tag) == {"k": "new"}
    assert loader_instance.stats["l2_stale_rejected"] == 1


async def test_read_after_invalidation_does_not_join_an_older_load(make_cache: MakeCache) -> None:
    """Read-your-writes: a load in flight from before the write must not be shared with a
    read that starts after the invalidation returned."""
    source = SlowSource({"k": "old"})
    cache = await make_cache()
    before = asyncio.create_task(cache.get_many_or_load(["k"], source.load, tags=own_tag))
    await source.has_read.wait()
    source.data["k"] = "new"
    await cache.invalidate(["k"])
    fresh = Source(source.data)
    # Bounded: a read that joined the old load would wait for a release that never comes.
    after = await asyncio.wait_for(cache.get_many_or_load(["k"], fresh.load, tags=own_tag), 5)
    assert after == {"k": "new"}
    source.release.set()
    await before


async def test_vanished_tag_version_never_revalidates_old_entries(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    """A version key that expires or is evicted comes back above every recorded version."""
    source = Source({"k": "old"})
    writer = await make_cache()
    await writer.get_many_or_load(["k"], source.load, tags=own_tag)
    tag_key = key_space.tag("k")
    recorded = int(await redis_client.get(tag_key) or 0)
    await redis_client.delete(tag_key)  # as maxmemory eviction or expiry would
    source.data["k"] = "new"
    reader = await make_cache()
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    assert int(await redis_client.get(tag_key) or 0) > recorded
    assert reader.stats["l2_invalid_versions"] == 1


async def test_a_tag_version_that_is_not_a_number_is_started_again(
    make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    """A version key overwritten with anything but a decimal integer (not by us) neither
    fails a read or an invalidation nor revalidates an old entry: it starts again."""
    source = Source({"k": "old"})
    cache = await make_cache(l1_max_entries=0)
    await cache.get_many_or_load(["k"], source.load, tags=own_tag)
    tag_key = key_space.tag("k")
    await redis_client.set(tag_key, b"not a version")
    source.data["k"] = "new"
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    assert (await redis_client.get(tag_key) or b"").isdigit()
    await redis_client.set(tag_key, b"1.5")
    assert await cache.invalidate(["k"]) == 1
    assert (await redis_client.get(tag_key) or b"").isdigit()
    source.data["k"] = "newer"
    assert await cache.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "newer"}
    stats = cache.stats
    assert stats["redis_errors"] + stats["redis_timeouts"] == 0, stats


async def test_global_tag_drops_the_whole_namespace(make_cache: MakeCache) -> None:
    source = Source({"a": 1, "b": 2})
    cache = await make_cache()
    other = await make_cache()
    await cache.get_many_or_load(["a", "b"], source.load, tags=own_tag)
    source.data.update({"a": 10, "b": 20})
    await other.invalidate(["*"])
    assert await other.get_many_or_load(["a", "b"], source.load, tags=own_tag) == source.data


async def test_l1_hits_skip_the_tag_check_only_while_the_view_is_unchanged(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = 0
    original = TagVersionView.is_current

    def counting(self: TagVersionView, versions: TagVersions) -> bool:
        nonlocal checks
        checks += 1
        return original(self, versions)

    cache = await make_cache()
    many = [f"T:{i}" for i in range(50)]
    data = {"page": "v1"}

    async def load() -> str:
        return data["page"]

    await cache.get_or_load("page", load, tags=many)
    monkeypatch.setattr(TagVersionView, "is_current", counting)
    for _ in range(5):
        assert await cache.get_or_load("page", load, tags=many) == "v1"
    assert checks == 0  # verified when it was filled; the view has not moved since
    await cache.invalidate(["unrelated"])
    for _ in range(3):
        assert await cache.get_or_load("page", load, tags=many) == "v1"
    assert checks == 1  # the view moved: checked once more, then remembered again
    data["page"] = "v2"
    await cache.invalidate(["T:49"])
    assert await cache.get_or_load("page", load, tags=many) == "v2"
