"""Whole responses, cached in front of parsing and execution (SPEC 6.15).

The key is the operation (its document normalized by parsing and printing, its operation
name, its variables with sorted keys) and the viewer scope: a response that used only
PUBLIC fields is stored once for every viewer; one that used a PRIVATE field is stored
per viewer, anonymous being a viewer of its own. Its tags are the tag versions of every
value it was built from, recorded while it executed, so the invalidation of any of them
drops it in both tiers and on every instance, and a response computed while a write
committed is refused by the engine (its recorded versions are already stale).

A hit is the stored bytes: no parsing, no Strawberry, no JSON encoding.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from graphql import GraphQLError, OperationDefinitionNode, parse, print_ast

from cache import TagVersions, TieredCache
from cache.strawberry import CachePolicy
from graph.settings import Settings

PUBLIC = "public"
NORMALIZED_DOCUMENTS = 4096  # distinct document texts remembered per process
_INTROSPECTION = re.compile(r"\b__(schema|type)\b")
_MUTATION = re.compile(r"^\s*(mutation|subscription)\b")


@dataclass(frozen=True, slots=True)
class Normalized:
    printed: str
    operation_names: list[str | None]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a hit sends: the body (without `extensions`) and its HTTP caching headers."""

    body: bytes
    cache_control: str
    etag: str
    tier: str = "L1"

    def to_value(self) -> list[Any]:
        return [self.body, self.cache_control, self.etag]

    @classmethod
    def from_value(cls, value: list[Any], tier: str) -> StoredResponse:
        body, cache_control, etag = value
        return cls(bytes(body), str(cache_control), str(etag), tier)


class ResponseCache:
    def __init__(
        self,
        cache: TieredCache,
        settings: Settings,
        on_read: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self._cache = cache
        self._on_read = on_read
        self.enabled = settings.cache_enabled and settings.response_cache
        self._excluded = frozenset(settings.response_cache_exclude)
        self._max_ttl = float(settings.response_cache_max_ttl)
        self._max_bytes = settings.response_cache_max_bytes
        self._max_tokens = settings.max_tokens
        # Plain LRU maps: read on every request, they must cost well under a microsecond.
        self._normalized: LRUCache[str, Normalized | None] = LRUCache(NORMALIZED_DOCUMENTS)
        # Whether each operation's response was private, so a hit costs one lookup, not two.
        self._scopes: LRUCache[str, bool] = LRUCache(NORMALIZED_DOCUMENTS)

    def operation_key(
        self, query: str | None, operation_name: str | None, variables: dict[str, Any] | None
    ) -> str | None:
        """The key of an operation whose response may be cached, else None."""
        if not self.enabled or query is None:
            return None
        if _MUTATION.match(query) or _INTROSPECTION.search(query):
            return None
        document = self._normalize(query)
        if document is None:
            return None
        names = document.operation_names
        name = operation_name if operation_name is not None else (names or [None])[0]
        if name in self._excluded:
            return None
        canonical = orjson.dumps(
            [document.printed, operation_name, variables or {}], option=orjson.OPT_SORT_KEYS
        )
        return hashlib.blake2b(canonical, digest_size=20).hexdigest()

    def _normalize(self, query: str) -> Normalized | None:
        """The document as printed from its syntax tree (spacing, commas and comments do
        not make new keys) and its operations' names. None when it does not parse:
        execution will say why."""
        if query in self._normalized:
            return self._normalized[query]
        try:
            document = parse(query, no_location=True, max_tokens=self._max_tokens)
        except (GraphQLError, RecursionError):
            normalized = None
        else:
            names = [
                definition.name.value if definition.name else None
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
            ]
            normalized = Normalized(print_ast(document), names)
        self._normalized[query] = normalized
        return normalized

    def name_of(self, query: str | None, operation_name: str | None) -> str | None:
        """The operation's name, as the client gave it or as its document says."""
        if operation_name is not None or query is None:
            return operation_name
        document = self._normalized.get(query)
        names = document.operation_names if document is not None else []
        return names[0] if len(names) == 1 else None

    @staticmethod
    def _key(operation: str, scope: str) -> str:
        return f"response:{operation}:{scope}"

    @staticmethod
    def viewer_scope(viewer: str | None) -> str:
        return "viewer=anonymous" if viewer is None else f"viewer={viewer}"

    async def lookup(self, operation: str, viewer: str | None) -> StoredResponse | None:
        private = self._scopes.get(operation)
        if private is None:
            scopes = [PUBLIC, self.viewer_scope(viewer)]
        else:
            scopes = [self.viewer_scope(viewer) if private else PUBLIC]
        keys = [self._key(operation, scope) for scope in scopes]
        if self._on_read is not None:
            self._on_read(keys[:1])
        for key in keys:
            found = await self._cache.get_entry_with_tier(key)
            if found is not None and found[0].found:
                entry, tier = found
                return StoredResponse.from_value(entry.value, tier)
        return None

    async def store(
        self,
        operation: str,
        viewer: str | None,
        response: StoredResponse,
        policy: CachePolicy,
        tag_versions: TagVersions,
    ) -> bool:
        """Keep a successful query's response; False when it may not be kept."""
        if policy.max_age is None or len(response.body) > self._max_bytes:
            return False
        scope = self.viewer_scope(viewer) if policy.private else PUBLIC
        self._scopes[operation] = policy.private
        ttl = min(policy.max_age, self._max_ttl)
        await self._cache.set_entry(
            self._key(operation, scope), response.to_value(), tag_versions, ttl=ttl
        )
        return True
