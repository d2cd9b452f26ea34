"""Recordings: the tag versions behind every value served, whichever tier served it."""

from __future__ import annotations

from tests.cache.conftest import MakeCache, Source, own_tag


async def test_recording_sees_hits_of_every_tier(make_cache: MakeCache) -> None:
    source = Source({"a": 1})
    cache = await make_cache()
    with cache.recording() as miss:
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
    with cache.recording() as hit:
        await cache.get_many_or_load(["a"], source.load, tags=own_tag)
    assert miss.tag_versions == hit.tag_versions
    assert hit.reads == 1
