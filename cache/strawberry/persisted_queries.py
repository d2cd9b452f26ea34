"""Automatic persisted queries: the `extensions.persistedQuery` protocol of Apollo clients.

A client first sends only the SHA-256 of its document; when the server does not know it,
the client sends hash and document together, and the server keeps the pair for next time.

Documents are kept through aiocache's `cached` decorator over `TieredAiocache` (both tiers
of the engine, signed entries in Redis): a hash names one document forever, so this is
the plain "compute once, remember by key" cache the decorator is for. Only a document
that could run is kept: it is parsed, and checked by the app's `admit` (the schema's
validation rules and limits) before it is stored; anything else runs unstored, so the
client gets exactly the errors it would get without the protocol, and a client cannot
park arbitrary text under hashes of its choosing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiocache import cached
from graphql import DocumentNode, GraphQLError, parse

from cache import TieredAiocache, TieredCache

DEFAULT_TTL = 24 * 3600.0
KEY_PREFIX = "apq:"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# The app's checks of a document before it is kept: its errors (none: it may be kept).
Admit = Callable[[DocumentNode, str | None, Mapping[str, Any] | None], Sequence[GraphQLError]]


class PersistedQueryError(Exception):
    """The `persistedQuery` extension is malformed, or its hash is not that of the query."""


class PersistedQueryNotFound(PersistedQueryError):
    """Only a hash was sent and no document is known for it: the client resends both.

    Its message is the one Apollo clients look for."""

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class _Unfit(Exception):
    """The document fails the app's checks: it runs (and fails) without being kept."""


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


def _key(_function: object, sha: str, *_args: object, **_kwargs: object) -> str:
    return KEY_PREFIX + sha  # the hash alone names the document


class PersistedQueries:
    """Documents by their SHA-256, kept in both tiers of `cache` for `ttl` seconds."""

    def __init__(
        self,
        cache: TieredCache,
        *,
        ttl: float = DEFAULT_TTL,
        max_bytes: int = 64 * 1024,
        max_tokens: int = 2000,
        admit: Admit | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._max_tokens = max_tokens
        self._admit = admit
        # A hash names one document forever: no invalidation can make it stale, so a miss
        # (an unknown hash, which anyone can send) costs a read and writes nothing.
        remember = cached(
            cache=TieredAiocache, engine=cache, ttl=ttl, key_builder=_key, guard_misses=False
        )
        self._known = remember(self._document_to_keep)

    async def document(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        operation_name: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The document to execute: `query` itself, or the one its hash names.

        Raises PersistedQueryNotFound for an unknown hash sent alone, PersistedQueryError
        for a malformed extension, a hash that does not match the query, or a query that
        is too long or does not parse. A document the app's `admit` refuses is returned
        (to run, and fail, as it would without the protocol) but not kept."""
        sha = _hash_of(extensions)
        if sha is None:
            return query
        if query is not None:
            if hashlib.sha256(query.encode()).hexdigest() != sha:
                raise PersistedQueryError("provided sha256Hash does not match the query")
            if len(query.encode()) > self._max_bytes:
                raise PersistedQueryError(f"a persisted query is at most {self._max_bytes} bytes")
        try:
            document: str = await self._known(sha, query, operation_name, variables)
        except _Unfit:
            return query
        return document

    async def _document_to_keep(
        self,
        _sha: str,
        query: str | None,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> str:
        """Called on a miss only: what to keep under the hash (the decorator stores it), or
        an exception and nothing is kept."""
        if query is None:
            raise PersistedQueryNotFound
        try:
            parsed = parse(query, no_location=True, max_tokens=self._max_tokens)
        except (GraphQLError, RecursionError):
            raise PersistedQueryError("a persisted query must be a valid document") from None
        if self._admit is not None and self._admit(parsed, operation_name, variables):
            raise _Unfit
        return query
