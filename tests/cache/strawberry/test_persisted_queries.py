"""Automatic persisted queries as a library: documents by their SHA-256 in both tiers."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import redis.asyncio as aioredis
from graphql import DocumentNode, GraphQLError

from cache.strawberry.persisted_queries import (
    PersistedQueries,
    PersistedQueryError,
    PersistedQueryNotFound,
)
from tests.cache.conftest import MakeCache

QUERY = '{ book(id: "3") { title } }'
SHA = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(sha: str = SHA) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


async def test_a_hash_is_known_once_sent_with_its_document(make_cache: MakeCache) -> None:
    queries = PersistedQueries(await make_cache())
    with pytest.raises(PersistedQueryNotFound, match="PersistedQueryNotFound"):
        await queries.document(None, persisted())
    assert await queries.document(QUERY, persisted()) == QUERY
    assert await queries.document(None, persisted()) == QUERY
    # Another instance finds it in Redis.
    assert await PersistedQueries(await make_cache()).document(None, persisted()) == QUERY


async def test_without_the_extension_the_query_is_the_document(make_cache: MakeCache) -> None:
    queries = PersistedQueries(await make_cache())
    assert await queries.document(QUERY, None) == QUERY
    assert await queries.document(QUERY, {"other": 1}) == QUERY
    assert await queries.document(None, {}) is None


@pytest.mark.parametrize(
    ("query", "extensions", "message"),
    [
        (QUERY, persisted("0" * 64), "does not match"),
        (None, {"persistedQuery": {"version": 2, "sha256Hash": SHA}}, "version: 1"),
        (None, {"persistedQuery": "x"}, "version: 1"),
        (None, persisted(SHA.upper()), "64 lowercase hex"),
        (None, {"persistedQuery": {"version": 1}}, "64 lowercase hex"),
    ],
)
async def test_malformed_or_mismatched_is_refused(
    make_cache: MakeCache, query: str | None, extensions: dict[str, Any], message: str
) -> None:
    queries = PersistedQueries(await make_cache())
    with pytest.raises(PersistedQueryError, match=message) as refused:
        await queries.document(query, extensions)
    assert not isinstance(refused.value, PersistedQueryNotFound)


async def _namespace_keys(redis_url: str, key_prefix: str) -> int:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return len([key async for key in client.scan_iter(match=f"*{key_prefix}*")])
    finally:
        await client.aclose()


async def test_kept_through_the_decorator_in_both_tiers_and_across_restarts(
    make_cache: MakeCache,
) -> None:
    engine = await make_cache()
    queries = PersistedQueries(engine)
    assert await queries.document(QUERY, persisted()) == QUERY  # kept in L1 and L2
    hits = engine.stats["l1_hits"]
    assert await queries.document(None, persisted()) == QUERY
    assert engine.stats["l1_hits"] == hits + 1
    await engine.close()
    # A new process (a restarted app): nothing in memory, the document comes from Redis.
    restarted = await make_cache()
    assert await PersistedQueries(restarted).document(None, persisted()) == QUERY
    assert restarted.stats["l2_hits"] == 1
    assert await PersistedQueries(restarted).document(None, persisted()) == QUERY
    assert restarted.stats["l1_hits"] >= 1


async def test_a_document_the_app_refuses_runs_but_is_not_kept(
    make_cache: MakeCache, redis_url: str, key_prefix: str
) -> None:
    seen: list[tuple[str | None, Any]] = []

    def admit(document: DocumentNode, name: str | None, variables: Any) -> list[GraphQLError]:
        seen.append((name, variables))
        return [GraphQLError("no such field")]

    queries = PersistedQueries(await make_cache(), admit=admit)
    before = await _namespace_keys(redis_url, key_prefix)
    # Returned to run (and fail as it would without the protocol), but not kept.
    assert await queries.document(QUERY, persisted(), "Op", {"n": 1}) == QUERY
    assert seen == [("Op", {"n": 1})]
    with pytest.raises(PersistedQueryNotFound):
        await queries.document(None, persisted())
    # Unknown hashes, which anyone can make up, write nothing either.
    for i in range(20):
        with pytest.raises(PersistedQueryNotFound):
            await queries.document(None, persisted(f"{i:064x}"))
    assert await _namespace_keys(redis_url, key_prefix) == before
    # The same document, admitted, is kept.
    accepting = PersistedQueries(await make_cache(), admit=lambda *_: [])
    assert await accepting.document(QUERY, persisted()) == QUERY
    assert await queries.document(None, persisted()) == QUERY
    assert await _namespace_keys(redis_url, key_prefix) > before
