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


async def _keys(redis_url: str, match: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return len([key async for key in client.scan_iter(match=match)])
    finally:
        await client.aclose()


async def _apq_keys(redis_url: str, key_prefix: str) -> int:
    return await _keys(redis_url, f"*{key_prefix}*apq*")


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


# Parsed, but each fails before execution as it would without the protocol.
DEEP = (
    "{ books(first: 1) { edges { node { "
    + "author { books(first: 1) { edges { node { " * 3
    + "id"
    + " } } } }" * 3
    + " } } } }"
)
UNFIT = {
    "{ books(first: 1) { nope } }": "GRAPHQL_VALIDATION_FAILED",
    "{ a: books { totalCount } b: books { totalCount }": "GRAPHQL_PARSE_FAILED",
    DEEP: "GRAPHQL_VALIDATION_FAILED",  # deeper than STRATA_MAX_DEPTH
    "{ books(first: 100) { edges { node { reviews(first: 100) { edges { node { "
    "reviewer { reviews(first: 100) { totalCount } } } } } } } } }": "QUERY_TOO_COMPLEX",
    # With {"n": 100}: the variables sent with it are checked too.
    "query ($n: Int) { books(first: $n) { edges { node { "
    "reviews(first: $n) { edges { node { id } } } } } } }": "QUERY_TOO_COMPLEX",
}


async def test_invalid_or_too_costly_persisted_queries_are_refused_and_not_stored(
    cached_api: Api, redis_url: str, key_prefix: str
) -> None:
    client = cached_api.client
    await cached_api.data("{ books(first: 1) { totalCount } }")  # the namespace exists
    keys = await _keys(redis_url, f"*{key_prefix}*")
    for query, code in UNFIT.items():
        sent = {**_persisted(query), "variables": {"n": 100}}
        refused = await client.post("/graphql", json=sent)
        if code == "GRAPHQL_PARSE_FAILED":
            assert refused.status_code == 400, refused.text
            continue
        errors = refused.json()["errors"]
        assert {error["extensions"]["code"] for error in errors} == {code}, (query, errors)
        if code == "QUERY_TOO_COMPLEX":
            assert "10000" in errors[0]["message"]
        hash_only = {"extensions": _persisted(query)["extensions"]}
        unknown = (await client.post("/graphql", json=hash_only)).json()
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert await _keys(redis_url, f"*{key_prefix}*") == keys
    # The variables were the problem, not the document: with small ones it is kept.
    query = list(UNFIT)[-1]
    kept = await client.post("/graphql", json={**_persisted(query), "variables": {"n": 2}})
    assert "errors" not in kept.json(), kept.text
    hash_only = {"extensions": _persisted(query)["extensions"], "variables": {"n": 2}}
    assert "errors" not in (await client.post("/graphql", json=hash_only)).json()


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
