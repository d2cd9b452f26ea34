"""Automatic persisted queries: the `extensions.persistedQuery` protocol of Apollo clients.

A client first sends only the SHA-256 of its document; when the server does not know it,
the client sends hash and document together, and the server keeps the pair for next time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, parse

from cache import TieredCache

DEFAULT_TTL = 24 * 3600.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryError(Exception):
    """The `persistedQuery` extension is malformed, or its hash is not that of the query."""


class PersistedQueryNotFound(PersistedQueryError):
    """Only a hash was sent and no document is known for it: the client resends both.

    Its message is the one Apollo clients look for."""

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


def names_a_hash(extensions: Mapping[str, Any] | None) -> bool:
    """Whether the request uses the protocol at all (cheap: checked on every request)."""
    return extensions is not None and "persistedQuery" in extensions


def _hash_of(extensions: Mapping[str, Any] | None) -> str | None:
    if extensions is None or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedQueryError("persistedQuery must be {version: 1, sha256Hash}")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise PersistedQueryError("sha256Hash must be 64 lowercase hex digits")
    return sha


class PersistedQueries:
    """Documents by their SHA-256, kept in both tiers of `cache` for `ttl` seconds."""

    def __init__(
        self,
        cache: TieredCache,
        *,
        ttl: float = DEFAULT_TTL,
        max_bytes: int = 64 * 1024,
        max_tokens: int = 2000,
    ) -> None:
        self._cache = cache
        self._ttl = ttl
        # Stored documents live a day in both tiers: only ones that could ever run are
        # kept, so a client cannot park arbitrary text under hashes of its choosing.
        self._max_bytes = max_bytes
        self._max_tokens = max_tokens

    async def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to execute: `query` itself, or the one its hash names.

        Raises PersistedQueryNotFound for an unknown hash sent alone, PersistedQueryError
        for a malformed extension or a hash that does not match the query."""
        sha = _hash_of(extensions)
        if sha is None:
            return query
        key = f"apq:{sha}"
        if query is None:
            entry = await self._cache.get_entry(key)
            if entry is None or not entry.found:
                raise PersistedQueryNotFound
            return str(entry.value)
        if hashlib.sha256(query.encode()).hexdigest() != sha:
            raise PersistedQueryError("provided sha256Hash does not match the query")
        if len(query.encode()) > self._max_bytes:
            raise PersistedQueryError(f"a persisted query is at most {self._max_bytes} bytes")
        try:
            parse(query, no_location=True, max_tokens=self._max_tokens)
        except (GraphQLError, RecursionError):
            raise PersistedQueryError("a persisted query must be a valid document") from None
        document = query

        async def load() -> str:
            return document

        # A hash names one document forever: store it unless it is there already.
        await self._cache.get_or_load(key, load, ttl=self._ttl)
        return query
