"""`ResponseCache.serves_again`: whether an anonymous lookup would answer a hit's stored
response again now, without looking it up; counted and seen as that lookup would be."""

from __future__ import annotations

from cache.strawberry import CachePolicy
from cache.strawberry.response_cache import (
    NORMALIZED_DOCUMENTS,
    Executed,
    Hit,
    Operation,
    ResponseCache,
    StoredResponse,
)
from tests.cache.conftest import MakeCache
from tests.cache.strawberry.test_response_cache import Source, anonymous, responses_on


async def _hit(responses: ResponseCache, source: Source, operation: Operation) -> Hit:
    await responses.answer(operation, source.execute)
    hit = await responses.answer(operation, source.execute)
    assert isinstance(hit, Hit)
    return hit


def _key(responses: ResponseCache, operation: Operation) -> str:
    key = responses.key_of(operation)
    assert key is not None
    return key


async def test_an_l1_hit_is_served_again_and_counted_as_a_lookup(make_cache: MakeCache) -> None:
    cache = await make_cache()
    seen: list[list[str]] = []
    responses = responses_on(cache, on_read=lambda keys: seen.append(list(keys)))
    hit = await _hit(responses, Source(cache, CachePolicy(max_age=60)), anonymous())
    assert hit.response.tier == "L1"
    looked_up = list(seen[-1])
    hits = cache.stats["l1_hits"]
    key = _key(responses, anonymous())
    assert responses.serves_again(key, hit.response)
    assert seen[-1] == looked_up  # the hot-key tracking sees the same key
    assert cache.stats["l1_hits"] == hits + 1
    await cache.invalidate(["Book:7"])
    assert not responses.serves_again(key, hit.response)
    assert cache.stats["l1_hits"] == hits + 1  # refused: not counted


async def test_an_l2_hit_is_never_served_again(make_cache: MakeCache) -> None:
    writer = await make_cache()
    await responses_on(writer).answer(anonymous(), Source(writer, CachePolicy(60)).execute)
    reader = await make_cache()
    responses = responses_on(reader)
    hit = await responses.answer(anonymous(), Source(reader, CachePolicy(60)).execute)
    assert isinstance(hit, Hit)
    assert hit.response.tier == "L2"
    assert not responses.serves_again(_key(responses, anonymous()), hit.response)


async def test_a_forgotten_scope_hint_stops_it(make_cache: MakeCache) -> None:
    """Without its hint, an anonymous lookup of a private response first looks for a
    shared one (in L2 too): it would not simply find the same entry in L1."""
    cache = await make_cache()
    responses = responses_on(cache)
    private = await _hit(responses, Source(cache, CachePolicy(60, private=True)), anonymous())
    key = _key(responses, anonymous())
    assert responses.serves_again(key, private.response)
    writes = cache.stats["l1_sets"]
    for n in range(NORMALIZED_DOCUMENTS):  # hints of other operations push it out
        operation = anonymous(f'{{ book(id: "other {n}") {{ title }} }}')
        stale = (("Book:gone", 12345),)  # refused by both tiers: L1 is not written
        await responses.store(_key(responses, operation), None, _executed(), stale)
    assert cache.stats["l1_sets"] == writes
    assert not responses.serves_again(key, private.response)
    misses = cache.stats["l1_misses"]
    assert isinstance(await responses.answer(anonymous(), Source(cache, None).execute), Hit)
    assert cache.stats["l1_misses"] == misses + 1  # the shared scope was looked at first


async def test_a_shared_response_needs_no_hint(make_cache: MakeCache) -> None:
    cache = await make_cache(redis_url=None)
    responses = responses_on(cache)
    hit = await _hit(responses, Source(cache, CachePolicy(max_age=60)), anonymous())
    shared = StoredResponse(b"{}", 60, False, "f", "L1", hit.response.lease)
    assert responses.serves_again("never-stored", shared)
    assert not responses.serves_again("never-stored", StoredResponse(b"{}", 60, True, "f"))


def _executed() -> Executed[None]:
    return Executed(b'{"data":{}}', CachePolicy(max_age=60), None)
