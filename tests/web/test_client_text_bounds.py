"""Client text kept in process or in Redis is bounded and well formed (issue 14, SPEC 14)."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis

from graph.settings import Settings
from tests.support.api import Api, running_api


def _persisted(query: str) -> dict[str, Any]:
    sha = hashlib.sha256(query.encode()).hexdigest()
    return {"query": query, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}


async def _apq_keys(redis_url: str, key_prefix: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return len([key async for key in client.scan_iter(match=f"*{key_prefix}*apq*")])
    finally:
        await client.aclose()


async def test_persisted_queries_are_parsed_and_bounded_before_they_are_stored(
    cached_api: Api, redis_url: str, key_prefix: str
) -> None:
    client = cached_api.client
    unparsable = await client.post("/graphql", json=_persisted("{ books(first: 1) { "))
    assert unparsable.status_code == 400
    padded = "{ books(first: 1) { totalCount } }" + "#" * (100 * 1024)
    oversized = await client.post("/graphql", json=_persisted(padded))
    assert oversized.status_code == 400
    assert await _apq_keys(redis_url, key_prefix) == 0
    good = await client.post("/graphql", json=_persisted("{ books(first: 1) { totalCount } }"))
    assert good.status_code == 200
    assert "errors" not in good.json()


async def test_unparsable_text_is_not_kept_in_the_document_map(cached_api: Api) -> None:
    documents = cached_api.services.responses._normalized
    before = len(documents)
    for i in range(20):
        await cached_api.post("{ books(first: 1) { " + "#" * 10_000 + str(i))
    assert len(documents) == before
    await cached_api.post("{ books(first: 1) { totalCount } }")
    assert documents.currsize <= documents.maxsize


async def test_a_response_is_measured_with_its_stamps(cached_settings: Settings) -> None:
    query = "{ books(first: 5) { edges { node { id title } } } }"
    async with running_api(cached_settings) as api:
        body = (await api.client.get("/graphql", params={"query": query})).content
        tokens = api.tokens
    # Room for the body, not for the tag versions stored beside it: not kept.
    tight = cached_settings.model_copy(
        update={
            "response_cache_max_bytes": len(body) + 1,
            "cache_prefix": f"{cached_settings.cache_prefix}-tight",
        }
    )
    async with running_api(tight, tokens) as api:
        await api.client.get("/graphql", params={"query": query})
        skips = api.services.metrics.response_cache.labels(result="skip")
        hits = api.services.metrics.response_cache.labels(result="hit")
        await api.client.get("/graphql", params={"query": query})
        assert hits._value.get() == 0
        assert skips._value.get() >= 2
