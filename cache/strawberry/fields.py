"""Per-field caching for Strawberry: a resolver opts in with TTL, scope and tags.

    @strawberry.field(extensions=[CachedField(ttl=60, tags=lambda post, args: [f"Post:{post.id}"])])
    async def comment_count(self, info: Info) -> int: ...

The resolver's context must carry a :class:`RequestCache` as ``request_cache`` (see
:class:`CacheAware`). A field's key is ``<Type>.<field>:<parent id>[:<viewer>]:<arguments>``
(the viewer for ``PRIVATE`` fields), built by :func:`cache.keys.compose_key`, so two
different inputs never share a key: arguments are the resolver's keyword arguments after
Strawberry applied their defaults, sorted by name, so neither argument order nor spelling
out a default makes a new key.

Fields resolved in the same event-loop tick share one batch: one L1 pass and one Redis
round trip, however many of them there are. For fields on every node of a list,
:meth:`RequestCache.prefetch` fetches the whole list's values up front so the field
answers synchronously (an async field costs far more in graphql-core than a plain value).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from strawberry.dataloader import DataLoader
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver, SyncExtensionResolver
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from cache.engine import TieredCache
from cache.entry import Entry, TagVersions
from cache.keys import KeyPart, compose_key, viewer_part
from cache.strawberry import consumption
from cache.strawberry.consumption import CachePolicy, Scope

TagsOf = Callable[[Any, Mapping[str, Any]], Iterable[str]]
ScopeOf = Callable[[Any], "Scope"]
Codec = Callable[[Any], Any]


@dataclass(slots=True)
class _Pending:
    load: Callable[[], Awaitable[Any]]
    ttl: float
    tags: tuple[str, ...]


@dataclass
class RequestCache:
    """One request's view of the cache: who is asking, what was used, what is at hand."""

    cache: TieredCache
    viewer: str | None
    default_ttl: float
    on_read: Callable[[Sequence[str]], None] | None = None
    """Told the keys of every read, e.g. to keep a tally of the hottest keys."""
    policy: CachePolicy = field(default_factory=CachePolicy)
    _memo: dict[str, Any] = field(default_factory=dict)
    # The tag versions of every value served to this request, and whether it was found:
    # what a subtree that consumes the value depends on (see `consumed`).
    _stamps: dict[str, tuple[TagVersions, bool]] = field(default_factory=dict)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _batch: DataLoader[str, Any] | None = None

    def viewer_key(self) -> KeyPart:
        return viewer_part(self.viewer)

    async def get_many_or_load(
        self,
        keys: Sequence[str],
        load: Callable[[list[str]], Awaitable[Mapping[str, Any]]],
        *,
        ttl: float | None = None,
        scope: Scope = Scope.PUBLIC,
        tags: Callable[[str], Sequence[str]],
    ) -> dict[str, Any]:
        """The engine's batch read-through, counted in this response's policy."""
        ttl = ttl or self.default_ttl
        if self.on_read is not None:
            self.on_read(keys)
        found = await self._get_many(keys, load, ttl, tags)
        self.served_uncached(
            all_found=all(value is not None for value in found.values()), ttl=ttl, scope=scope
        )
        return found

    @property
    def storing(self) -> bool:
        """Whether the cache is on. Off, a caller may read its source directly, without
        keys or codecs, and count what it served with :meth:`served_uncached`."""
        return self.cache.config.enabled

    def served_uncached(
        self, *, all_found: bool, ttl: float | None = None, scope: Scope = Scope.PUBLIC
    ) -> None:
        """Count values served in this response's policy, as :meth:`get_many_or_load` does."""
        self.policy.include(ttl or self.default_ttl, scope)
        if not all_found:
            # A not-found answer is kept only not_found_ttl (SPEC 6.13): promise no more.
            self.policy.include(self.cache.config.not_found_ttl, scope)

    async def _get_many(
        self,
        keys: Sequence[str],
        load: Callable[[list[str]], Awaitable[Mapping[str, Any]]],
        ttl: float,
        tags: Callable[[str], Sequence[str]],
    ) -> dict[str, Any]:
        """The engine's read-through, remembering the versions of what it served."""
        cache = self.cache
        if not cache.config.enabled:
            return await cache.get_many_or_load(keys, load, ttl=ttl, tags=tags)
        entries = await cache.get_many_entries_or_load(keys, load, ttl=ttl, tags=tags)
        return self._served(entries)

    def _served(self, entries: Mapping[str, Entry]) -> dict[str, Any]:
        stamps = self._stamps
        found: dict[str, Any] = {}
        for key, entry in entries.items():
            stamps[key] = (entry.versions, entry.found)
            found[key] = entry.value
        return found

    def consumed(self, key: str, ttl: float, scope: Scope) -> None:
        """A resolver used the value of `key`: the subtrees open around it depend on it."""
        if not consumption.is_open():
            return
        stamp = self._stamps.get(key)
        if stamp is None:
            consumption.unknown()
            return
        versions, found = stamp
        if not found:
            ttl = min(ttl, self.cache.config.not_found_ttl)
        consumption.consume(versions, ttl, scope)

    @property
    def consuming(self) -> bool:
        """Whether a cached subtree is open around the caller (see `consumed`)."""
        return consumption.is_open()

    def consumed_entities(self, keys: Iterable[str]) -> None:
        """Entities (tagged with their own key, kept the default TTL) were used."""
        if consumption.is_open():
            for key in keys:
                self.consumed(key, self.default_ttl, Scope.PUBLIC)

    def recall(self, key: str) -> tuple[bool, Any]:
        if key in self._memo:
            return True, self._memo[key]
        return False, None

    def load(self, key: str, pending: _Pending) -> Awaitable[Any]:
        """Queue one field's read; the batch goes out on the next tick."""
        self._pending.setdefault(key, pending)
        if self._batch is None:
            self._batch = DataLoader(self._dispatch)
        return self._batch.load(key)

    async def _dispatch(self, keys: Sequence[str]) -> list[Any]:
        by_ttl: dict[float, list[str]] = defaultdict(list)
        for key in keys:
            by_ttl[self._pending[key].ttl].append(key)
        found: dict[str, Any] = {}
        results = await asyncio.gather(*(self._read(group, ttl) for ttl, group in by_ttl.items()))
        for result in results:
            found.update(result)
        return [found[key] for key in keys]

    async def _read(self, keys: list[str], ttl: float) -> dict[str, Any]:
        pending = self._pending
        if self.on_read is not None:
            self.on_read(keys)

        async def load(missing: list[str]) -> dict[str, Any]:
            results = await asyncio.gather(
                *(pending[key].load() for key in missing), return_exceptions=True
            )
            loaded = dict(zip(missing, results, strict=True))
            if any(isinstance(result, BaseException) for result in results):
                raise _FailedFields(loaded)
            return loaded

        try:
            return await self._get_many(keys, load, ttl, lambda key: pending[key].tags)
        except _FailedFields as failed:
            # One field's error must not fail its batch mates. Nothing the failed loader
            # computed is stored (the engine stores a batch only when its loader returns);
            # the keys it did not load, hits included, are read again.
            rest = [key for key in keys if key not in failed.results]
            if rest:
                failed.results.update(await self._read(rest, ttl))
            return failed.results

    async def prefetch(
        self,
        cached: CachedField,
        sources: Sequence[Any],
        load_many: Callable[[list[Any]], Awaitable[Sequence[Any]]],
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        """Fetch one field's values for many parents in one batch, for synchronous answers.

        ``load_many(sources)`` returns the resolver's values for the parents that neither
        tier had, in order.
        """
        arguments = arguments or {}
        keyed = {cached.key(source, arguments, self): source for source in sources}
        keyed = {key: source for key, source in keyed.items() if key not in self._memo}
        if not keyed:
            return

        async def load(missing: list[str]) -> dict[str, Any]:
            values = await load_many([keyed[key] for key in missing])
            return {key: cached.encode(value) for key, value in zip(missing, values, strict=True)}

        found = await self.get_many_or_load(
            list(keyed),
            load,
            ttl=cached.ttl,
            scope=cached.scope_of(sources[0]) if sources else Scope.PUBLIC,
            tags=lambda key: cached.tags_of(keyed[key], arguments),
        )
        self._memo.update(found)


class _FailedFields(Exception):
    """Some loads of a batch raised; carries every result, exceptions included."""

    def __init__(self, results: dict[str, Any]) -> None:
        super().__init__("some cached fields failed to load")
        self.results = results


class CacheAware(Protocol):
    """What a GraphQL context must offer for :class:`CachedField` to work."""

    @property
    def request_cache(self) -> RequestCache: ...


def _default_parent_id(source: Any) -> KeyPart:
    return None if source is None else source.id


def _identity(value: Any) -> Any:
    return value


class CachedField(FieldExtension):
    """Caches a field's value under its type, name, parent, arguments and viewer scope.

    ``tags(source, arguments)`` names what the value depends on; it must be computable
    before the value is (the engine reads their versions before the resolver runs).
    ``encode`` turns the resolver's result into msgpack-able data and ``decode`` back.
    """

    def __init__(
        self,
        *,
        tags: TagsOf,
        ttl: float | None = None,
        scope: Scope | ScopeOf = Scope.PUBLIC,
        parent_id: Callable[[Any], KeyPart] = _default_parent_id,
        encode: Codec = _identity,
        decode: Codec = _identity,
    ) -> None:
        self.tags = tags
        self.ttl = ttl
        self._scope = scope
        self.parent_id = parent_id
        self.encode = encode
        self.decode = decode
        self.name = "?"

    def apply(self, field: StrawberryField) -> None:
        origin = getattr(field.origin, "__name__", str(field.origin))
        self.name = f"{origin}.{field.python_name}"

    def tags_of(self, source: Any, arguments: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.tags(source, arguments))

    def scope_of(self, source: Any) -> Scope:
        """PRIVATE or PUBLIC; a field shared by several lists may depend on its parent."""
        return self._scope if isinstance(self._scope, Scope) else self._scope(source)

    def key(self, source: Any, arguments: Mapping[str, Any], request: RequestCache) -> str:
        parent = self.parent_id(source)
        if self.scope_of(source) is Scope.PRIVATE:
            return compose_key(self.name, parent, request.viewer_key(), args=arguments)
        return compose_key(self.name, parent, args=arguments)

    def _request(self, info: Info) -> RequestCache:
        request: RequestCache = info.context.request_cache
        return request

    def resolve(self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        request = self._request(info)
        key = self.key(source, kwargs, request)
        hit, value = request.recall(key)
        ttl = self.ttl or request.default_ttl
        scope = self.scope_of(source)
        request.policy.include(ttl, scope)
        if hit:
            request.consumed(key, ttl, scope)
            return None if value is None else self.decode(value)
        return self._fetch(request, key, lambda: next_(source, info, **kwargs), source, kwargs)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        # The same steps: `_fetch` awaits whatever the resolver returns.
        result = self.resolve(next_, source, info, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def _fetch(
        self,
        request: RequestCache,
        key: str,
        resolve: Callable[[], Any],
        source: Any,
        arguments: Mapping[str, Any],
    ) -> Any:
        async def load() -> Any:
            result = resolve()
            if inspect.isawaitable(result):
                result = await result
            return None if result is None else self.encode(result)

        ttl = self.ttl or request.default_ttl
        pending = _Pending(load=load, ttl=ttl, tags=self.tags_of(source, arguments))
        value = await request.load(key, pending)
        request.consumed(key, ttl, self.scope_of(source))
        return None if value is None else self.decode(value)
