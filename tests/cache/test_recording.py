"""Recordings: the tag versions behind every value served, whichever tier served it."""

from __future__ import annotations

from cache import recording
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


def test_a_recording_keeps_the_oldest_version_of_each_tag() -> None:
    """Two values read across an invalidation of their tag: the composite of them must
    carry the older version, so it is stale from the start, never current."""
    with recording.recording() as rec:
        recording.record((("t", 2), ("u", 5)))
        recording.record((("t", 1),))
        recording.record((("t", 3), ("u", 6)))
    assert rec.tag_versions == (("t", 1), ("u", 5))
