"""The whole-response cache as a library, on a real two-tier engine: one `answer` call
decides whether to look up, what execution read, and whether and what to keep."""

from __future__ import annotations

from typing import Any

import pytest

from cache import TieredCache
from cache.strawberry import CachePolicy
from cache.strawberry.response_cache import (
    Executed,
    Fresh,
    Hit,
    Operation,
    ResponseCache,
    fingerprint,
)
from tests.cache.conftest import MakeCache

BOOK = '{ book(id: "7") { title } }'


class Source:
    """An `execute` that reads one tagged value through the cache, as resolvers do."""

    def __init__(self, cache: TieredCache, policy: CachePolicy | None) -> None:
        self.cache = cache
        self.policy = policy
        self.runs = 0
        self.during: Any = None  # awaited after the read: a write committing meanwhile

    async def execute(self) -> Executed[str]:
        self.runs += 1

        async def load() -> str:
            return f"title {self.runs}"

        title = await self.cache.get_or_load("Book:7", load, ttl=60, tags=["Book:7"])
        if self.during is not None:
            await self.during()
        return Executed(f'{{"data":"{title}"}}'.encode(), self.policy, f"result {self.runs}")


def responses_on(cache: TieredCache, **overrides: Any) -> ResponseCache:
    settings: dict[str, Any] = {"max_ttl": 300.0, "max_bytes": 1024, "max_tokens": 200}
    return ResponseCache(cache, **{**settings, **overrides})


def anonymous(document: str | None = BOOK, name: str | None = None) -> Operation:
    return Operation(document, name, None, None)


async def test_a_fresh_answer_is_kept_and_then_served(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache)
    source = Source(cache, CachePolicy(max_age=60))
    first = await responses.answer(anonymous(), source.execute)
    assert isinstance(first, Fresh)
    assert first.outcome == "miss"
    assert first.executed.result == "result 1"  # the caller's own result, untouched
    assert first.stored is not None
    assert first.stored.fingerprint == fingerprint(first.executed.body)
    second = await responses.answer(anonymous(), source.execute)
    assert isinstance(second, Hit)
    assert second.outcome == "hit"
    assert second.response.body == first.executed.body
    assert (second.response.max_age, second.response.private) == (60, False)
    assert source.runs == 1


async def test_an_invalidation_drops_the_response(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache)
    source = Source(cache, CachePolicy(max_age=60))
    await responses.answer(anonymous(), source.execute)
    await cache.invalidate(["Book:7"])
    again = await responses.answer(anonymous(), source.execute)
    assert isinstance(again, Fresh)
    assert again.outcome == "miss"
    assert source.runs == 2


async def test_stale_responses_are_refused(make_cache: MakeCache) -> None:
    """A response recorded before an invalidation may not be stored after it."""
    cache = await make_cache()
    responses = responses_on(cache)
    source = Source(cache, CachePolicy(max_age=60))
    source.during = lambda: cache.invalidate(["Book:7"])
    await responses.answer(anonymous(), source.execute)
    source.during = None
    again = await responses.answer(anonymous(), source.execute)
    assert isinstance(again, Fresh), "a response built from stale values was served"
    assert source.runs == 2


async def test_what_is_never_stored(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache, max_bytes=8, excluded=["Live"])
    cases = [
        (anonymous(), None),  # a write, or an answer with errors
        (anonymous(), CachePolicy()),  # used nothing with a TTL
        (anonymous(), CachePolicy(max_age=60)),  # longer than max_bytes
        (anonymous('query Live { book(id: "7") { title } }'), CachePolicy(max_age=60)),
        (anonymous('mutation { m(id: "7") }'), CachePolicy(max_age=60)),
        (anonymous("{ __schema { queryType { name } } }"), CachePolicy(max_age=60)),
        (anonymous("{ not a document"), CachePolicy(max_age=60)),
        (anonymous(None), CachePolicy(max_age=60)),  # no document: execution says why
    ]
    for operation, policy in cases:
        source = Source(cache, policy)
        for _ in range(2):
            answer = await responses.answer(operation, source.execute)
            assert isinstance(answer, Fresh), operation
            assert answer.outcome == "skip", operation
        assert source.runs == 2


async def test_disabled_executes_every_time(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache, enabled=False)
    source = Source(cache, CachePolicy(max_age=60))
    for _ in range(2):
        assert (await responses.answer(anonymous(), source.execute)).outcome == "skip"
    assert source.runs == 2


async def test_private_responses_are_kept_per_viewer(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache)
    source = Source(cache, CachePolicy(max_age=60, private=True))
    alice, bob = (Operation("{ me { name } }", None, None, viewer) for viewer in ("1", "2"))
    assert (await responses.answer(alice, source.execute)).outcome == "miss"
    assert (await responses.answer(alice, source.execute)).outcome == "hit"
    assert (await responses.answer(bob, source.execute)).outcome == "miss"
    nobody = Operation("{ me { name } }", None, None, None)
    assert (await responses.answer(nobody, source.execute)).outcome == "miss"
    assert source.runs == 3


async def test_a_hit_is_named_by_its_document(make_cache: MakeCache) -> None:
    cache = await make_cache()
    responses = responses_on(cache)
    source = Source(cache, CachePolicy(max_age=60))
    named = anonymous('query OneBook { book(id: "7") { title } }')
    await responses.answer(named, source.execute)
    hit = await responses.answer(named, source.execute)
    assert isinstance(hit, Hit)
    assert hit.operation_name == "OneBook"


@pytest.mark.parametrize("tier", ["L1", "L2"])
async def test_stored_values_round_trip(make_cache: MakeCache, tier: str) -> None:
    first = await make_cache()
    source = Source(first, CachePolicy(max_age=30, private=False))
    kept = await responses_on(first).answer(anonymous(), source.execute)
    assert isinstance(kept, Fresh)
    assert kept.stored is not None
    reader = first if tier == "L1" else await make_cache()
    hit = await responses_on(reader).answer(anonymous(), source.execute)
    assert isinstance(hit, Hit)
    assert hit.response.tier == tier
    assert hit.response.body == kept.stored.body
    assert hit.response.fingerprint == kept.stored.fingerprint
