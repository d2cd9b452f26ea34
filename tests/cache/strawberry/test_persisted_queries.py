"""Automatic persisted queries as a library: documents by their SHA-256 in both tiers."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

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
