"""Operator helpers (``cache/admin.py``) against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from cache.admin import CacheAdmin
from cache.keys import KeySpace
from tests.cache.conftest import MakeCache, Source

pytestmark = pytest.mark.l2_both


def tags_of(key: str) -> list[str]:
    kind = key.split(":")[0]
    return [key, kind]


@pytest.fixture
async def filled(make_cache: MakeCache) -> Any:
    cache = await make_cache()
    source = Source({f"User:{i}": {"n": i} for i in range(30)} | {f"Post:{i}": i for i in range(5)})
    await cache.get_many_or_load(list(source.data), source.load, tags=tags_of)
    return cache


async def test_scan_entries_by_pattern_and_tag_never_uses_keys(
    filled: Any, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_keys(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("KEYS must not be used")

    monkeypatch.setattr(aioredis.Redis, "keys", no_keys)
    admin = CacheAdmin(filled)
    everything = await admin.scan_entries(limit=1000)
    assert len(everything) == 35
    posts = await admin.scan_entries(pattern="Post:*")
    assert sorted(info.key for info in posts) == [f"Post:{i}" for i in range(5)]
    tagged = await admin.scan_entries(tag="User:7")
    assert [info.key for info in tagged] == ["User:7"]
    assert tagged[0].tags == ("*", "User", "User:7")  # canonical (sorted) order
    assert tagged[0].size_bytes > 32
    assert 0 < (tagged[0].ttl_seconds or 0) <= 330
    assert len(await admin.scan_entries(tag="User", limit=10)) == 10  # bounded


async def test_inspect_shows_value_tags_versions_and_validity(
    filled: Any, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    admin = CacheAdmin(filled)
    seen = await admin.inspect("User:3")
    assert seen.exists
    assert seen.integrity_ok
    assert seen.found
    assert seen.valid
    assert seen.value == {"n": 3}
    assert [state.tag for state in seen.tags] == ["*", "User", "User:3"]
    assert all(state.recorded == state.current for state in seen.tags)
    assert seen.size_bytes == await redis_client.strlen(key_space.entry("User:3"))
    assert seen.ttl_seconds is not None
    assert seen.ttl_seconds > 0

    await filled.invalidate(["User"])
    stale = await admin.inspect("User:3")
    assert stale.exists
    assert stale.integrity_ok
    assert not stale.valid
    moved = {state.tag: state for state in stale.tags}["User"]
    assert moved.current is not None
    assert moved.current > moved.recorded

    assert not (await admin.inspect("nope")).exists

    entry_key = key_space.entry("User:4")
    blob = await redis_client.get(entry_key)
    assert isinstance(blob, bytes)
    await redis_client.set(entry_key, blob[:-1] + bytes([blob[-1] ^ 1]), px=60_000)
    tampered = await admin.inspect("User:4")
    assert tampered.exists
    assert not tampered.integrity_ok
    assert not tampered.valid
    assert tampered.integrity_error == "bad signature"
    assert tampered.value is None


async def test_flush_drops_the_namespace_logically_then_physically(
    filled: Any, make_cache: MakeCache, redis_client: aioredis.Redis, key_space: KeySpace
) -> None:
    admin = CacheAdmin(filled)
    result = await admin.flush()
    assert result.global_tag_invalidated
    assert result.deleted_keys == 0
    other = await make_cache()
    source = Source({"User:1": "reloaded"})
    assert await other.get_many_or_load(["User:1"], source.load, tags=tags_of) == {
        "User:1": "reloaded"
    }
    assert source.reads == 1  # the old entry no longer validates anywhere

    result = await admin.flush(delete_keys=True, batch=7)
    assert result.deleted_keys >= 35
    left = [key async for key in redis_client.scan_iter(match=key_space.prefix + "*")]
    assert left == []


async def test_redis_summary(filled: Any) -> None:
    summary = await CacheAdmin(filled).redis_summary()
    assert summary["used_memory"] > 0
    assert summary["entry_keys"] == 35
    assert summary["namespace_keys_complete"]
    assert summary["tag_version_keys"] >= 35 + 2 + 1  # own tags, kinds, "*"
    assert summary["namespace_keys"] == summary["entry_keys"] + summary["tag_version_keys"]
    assert summary["l2_misses"] == 35
    assert summary["redis_round_trips"] >= 2
    assert summary["status"] == "ok"


async def test_admin_needs_a_redis_tier(make_cache: MakeCache) -> None:
    memory_only = await make_cache(redis_url=None)
    with pytest.raises(RuntimeError):
        await CacheAdmin(memory_only).inspect("x")


async def test_summary_says_when_the_key_count_stopped_at_its_bound(filled: Any) -> None:
    summary = await CacheAdmin(filled).redis_summary(max_scanned=10)
    assert summary["namespace_keys"] == 10
    assert not summary["namespace_keys_complete"]


async def test_listing_stops_at_its_limit(filled: Any) -> None:
    listed = await CacheAdmin(filled).scan_entries(limit=3)
    assert len(listed) == 3
