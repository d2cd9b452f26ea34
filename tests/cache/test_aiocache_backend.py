"""The engine behind aiocache's own decorators: two tiers and tag invalidation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiocache import cached, multi_cached

from cache import TieredAiocache, TieredCache
from tests.cache.conftest import MakeCache, eventually


def book_count(engine: TieredCache, calls: list[str]) -> Callable[[str], Awaitable[Any]]:
    """The same decorated function an app would have, on one engine (one instance)."""

    @cached(cache=TieredAiocache, engine=engine, tags_of=lambda key: ["Book"], ttl=60)
    async def count(genre: str) -> dict[str, Any]:
        calls.append(genre)
        return {"genre": genre, "computed": len(calls)}

    return cast(Callable[[str], Awaitable[Any]], count)


async def test_cached_hits_l1_then_l2_elsewhere_and_dies_with_its_tag(
    make_cache: MakeCache,
) -> None:
    first, second = await make_cache(), await make_cache()
    calls: list[str] = []
    on_first, on_second = book_count(first, calls), book_count(second, calls)

    assert await on_first("poetry") == {"genre": "poetry", "computed": 1}
    hits = first.stats["l1_hits"]
    assert await on_first("poetry") == {"genre": "poetry", "computed": 1}
    assert first.stats["l1_hits"] == hits + 1

    assert await on_second("poetry") == {"genre": "poetry", "computed": 1}
    assert second.stats["l2_hits"] == 1
    assert await on_second("poetry") == {"genre": "poetry", "computed": 1}
    assert second.stats["l1_hits"] >= 1
    assert calls == ["poetry"]

    await first.invalidate(["Book"])
    await eventually(lambda: second.stats["invalidations_received"] >= 1)
    # Neither tier of either instance still has the old value.
    assert await on_second("poetry") == {"genre": "poetry", "computed": 2}
    assert await on_first("poetry") == {"genre": "poetry", "computed": 2}
    assert calls == ["poetry", "poetry"]


async def test_multi_cached_computes_only_the_missing_keys(make_cache: MakeCache) -> None:
    first, second = await make_cache(), await make_cache()
    batches: list[list[str]] = []

    def users_on(engine: TieredCache) -> Callable[..., Awaitable[dict[str, Any]]]:
        @multi_cached(
            keys_from_attr="ids",
            cache=TieredAiocache,
            engine=engine,
            tags_of=lambda key: [f"User:{key}"],
        )
        async def users(ids: list[str]) -> dict[str, Any]:
            batches.append(list(ids))
            return {user_id: {"id": user_id} for user_id in ids}

        return cast(Callable[..., Awaitable[dict[str, Any]]], users)

    on_first, on_second = users_on(first), users_on(second)
    assert await on_first(ids=["1", "2"]) == {"1": {"id": "1"}, "2": {"id": "2"}}
    assert await on_first(ids=["1", "2", "3"]) == {f"{i}": {"id": f"{i}"} for i in (1, 2, 3)}
    assert batches == [["1", "2"], ["3"]]
    assert await on_second(ids=["1", "3"]) == {"1": {"id": "1"}, "3": {"id": "3"}}
    assert second.stats["l2_hits"] == 2
    assert batches == [["1", "2"], ["3"]]

    await first.invalidate(["User:2"])
    await eventually(lambda: second.stats["invalidations_received"] >= 1)
    await on_second(ids=["1", "2", "3"])
    assert batches == [["1", "2"], ["3"], ["2"]]


async def test_a_value_computed_across_an_invalidation_is_stored_nowhere(
    make_cache: MakeCache,
) -> None:
    """get (a miss) -> the app computes -> an invalidation lands -> set: the set is refused
    by both tiers, as an engine loader's fill would be."""
    engine, other = await make_cache(), await make_cache()
    backend = TieredAiocache(engine, tags_of=lambda key: ["Book"])
    assert await backend.get("top") is None
    await engine.invalidate(["Book"])
    assert await backend.set("top", "computed before the invalidation")
    assert await backend.get("top") is None
    assert await TieredAiocache(other).get("top") is None
    assert await backend.set("top", "fresh")
    assert await backend.get("top") == "fresh"


async def test_delete_drops_the_key_on_every_instance(make_cache: MakeCache) -> None:
    engine, other = await make_cache(), await make_cache()
    here, there = TieredAiocache(engine), TieredAiocache(other)
    await here.set("k", [1, 2])
    assert await there.get("k") == [1, 2]
    assert await here.exists("k")
    assert await here.delete("k") == 1
    await eventually(lambda: other.stats["invalidations_received"] >= 1)
    assert await here.get("k") is None
    assert await there.get("k") is None


async def test_no_wait_for_around_each_call_by_default(make_cache: MakeCache) -> None:
    assert TieredAiocache(await make_cache()).timeout is None
