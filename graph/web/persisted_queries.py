"""Automatic persisted queries: the `extensions.persistedQuery` protocol of Apollo clients.

A client first sends only the SHA-256 of its document; when the server does not know it,
the client sends hash and document together, and the server keeps the pair for next time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from cache import TieredCache
from graph.api.errors import ErrorCode
from graph.web.requests import GraphQLParams, RequestError

TTL = 24 * 3600.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"


def _hash_of(params: GraphQLParams) -> str | None:
    extensions = params.extensions or {}
    if "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise RequestError(400, "persistedQuery must be {version: 1, sha256Hash}", "bad_apq")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise RequestError(400, "sha256Hash must be 64 lowercase hex digits", "bad_apq")
    return sha


async def resolve(params: GraphQLParams, cache: TieredCache) -> GraphQLParams:
    """The params with their document: looked up by hash, or checked and registered."""
    sha = _hash_of(params)
    if sha is None:
        return params
    key = f"apq:{sha}"
    if params.query is None:
        entry = await cache.get_entry(key)
        if entry is None or not entry.found:
            raise RequestError(
                200, NOT_FOUND_MESSAGE, "apq_not_found", code=ErrorCode.PERSISTED_QUERY_NOT_FOUND
            )
        return dataclasses.replace(params, query=str(entry.value))
    query = params.query
    if hashlib.sha256(query.encode()).hexdigest() != sha:
        raise RequestError(400, "provided sha256Hash does not match the query", "bad_apq")

    async def document() -> str:
        return query

    # A hash names one document forever: store it unless it is there already.
    await cache.get_or_load(key, document, ttl=TTL)
    return params
