"""Composites: entries stored with a recording's tag versions, dying with any of them."""

from __future__ import annotations

from cache import TieredCache
from tests.cache.conftest import MakeCache, Source, eventually, own_tag


async def test_composite_entry_dies_with_any_of_its_tags(make_cache: MakeCache) -> None:
    source = Source({"a": 1, "b": 2})
    cache = await make_cache()
    other = await make_cache()
    with cache.recording() as rec:
        parts = await cache.get_many_or_load(["a", "b"], source.load, tags=own_tag)
    assert {tag for tag, _ in rec.tag_versions} == {"a", "b", "*"}
    await cache.set_entry("page", {"sum": sum(v or 0 for v in parts.values())}, rec.tag_versions)
    assert (await cache.get_entry("page")) is not None
    entry = await other.get_entry("page")
    assert entry is not None
    assert entry.value == {"sum": 3}

    await other.invalidate(["b"])
    assert await other.get_entry("page") is None
    await eventually(lambda: cache.stats["invalidations_received"] >= 1)
    assert await cache.get_entry("page") is None


async def test_composite_built_across_an_invalidation_is_refused(make_cache: MakeCache) -> None:
    source = Source({"a": 1})
    cache = await make_cache()
    with cache.recording() as rec:
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
        await cache.invalidate(["a"])  # a write lands while the response is being built
    await cache.set_entry("page", "stale page", rec.tag_versions)
    assert await cache.get_entry("page") is None
    fresh = await _fresh_engine_like(cache)
    try:
        assert await fresh.get_entry("page") is None
    finally:
        await fresh.close()


async def _fresh_engine_like(cache: TieredCache) -> TieredCache:
    engine = TieredCache(cache.config)
    await engine.start()
    return engine


async def test_a_composite_of_values_read_on_both_sides_of_a_write_never_validates(
    make_cache: MakeCache,
) -> None:
    """A response reads one value, a write lands, it reads another value of the same tag:
    it holds the old "a" beside the new "b", so it must not be served, on any instance."""
    source = Source({"a": "a1", "b": "b1"})
    cache = await make_cache()
    other = await make_cache()

    def same_tag(_: str) -> list[str]:
        return ["t"]

    with cache.recording() as rec:
        first = await cache.get_many_or_load(["a"], source.load, tags=same_tag)
        source.data.update(a="a2", b="b2")
        await other.invalidate(["t"])
        await eventually(lambda: cache.stats["invalidations_received"] >= 1)
        second = await cache.get_many_or_load(["b"], source.load, tags=same_tag)
    assert {**first, **second} == {"a": "a1", "b": "b2"}
    await cache.set_entry("page", {**first, **second}, rec.tag_versions)
    assert await cache.get_entry("page") is None
    assert await other.get_entry("page") is None
