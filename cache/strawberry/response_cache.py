"""Whole responses, cached in front of parsing and execution.

The key is the operation (its document normalized by parsing and printing, its operation
name, its variables with sorted keys) and the viewer scope: a response that used only
PUBLIC fields is stored once for every viewer; one that used a PRIVATE field is stored
per viewer, anonymous being a viewer of its own. Its tags are the tag versions of every
value it was built from, recorded while it executed, so the invalidation of any of them
drops it in both tiers and on every instance, and a response computed while a write
committed is refused by the engine (its recorded versions are already stale).

A hit is the stored bytes: no parsing, no execution, no JSON encoding.

`ResponseCache.answer` owns the whole decision: whether the operation may be cached at
all, the lookup, recording what execution read, and whether and what to store::

    answer = await responses.answer(Operation(query, name, variables, viewer), execute)
    if isinstance(answer, Hit): ...       # answer.response: the stored bytes
    else: ...                             # answer.executed: what `execute` returned
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import orjson
from cachetools import LRUCache
from graphql import GraphQLError, OperationDefinitionNode, parse, print_ast

from cache import Lease, TagVersions, TieredCache
from cache.strawberry.consumption import CachePolicy

R = TypeVar("R")
Outcome = Literal["hit", "miss", "skip"]

PUBLIC = "public"
NORMALIZED_DOCUMENTS = 4096  # distinct operations whose scope is remembered per process
# The document map is bounded by the bytes of the texts it keeps (query and printed form),
# not by a count: a count lets a client pin any number of megabytes of comments.
NORMALIZED_BYTES = 8 * 1024 * 1024
# What a stored tag version costs beside its tag's text (the version and the framing).
STAMP_OVERHEAD = 16
_INTROSPECTION = re.compile(r"\b__(schema|type)\b")
_MUTATION = re.compile(r"^\s*(mutation|subscription)\b")


def fingerprint(body: bytes) -> str:
    """A digest of the body, stored with it: what an HTTP layer makes its ETag from."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def key_prefix(printed: str, name: str | None) -> bytes:
    return orjson.dumps([printed, name])[:-1] + b","


# Operation, StoredResponse, Executed, Hit and Fresh are built on every request: plain
# slots dataclasses, treated as immutable (a frozen one pays an object.__setattr__ per field).


@dataclass(slots=True)
class Operation:
    """What a response is looked up by: the operation and who asks for it."""

    document: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    viewer: str | None  # the viewer's id; None for an anonymous request


@dataclass(slots=True)
class StoredResponse:
    """What a hit sends: the body (without `extensions`), its freshness and digest."""

    body: bytes
    max_age: float
    private: bool
    fingerprint: str
    tier: str = "L1"
    lease: Lease | None = None  # read from L1: how long L1 would serve it again

    def to_value(self) -> list[Any]:
        return [self.body, self.max_age, self.private, self.fingerprint]

    @classmethod
    def from_value(cls, value: list[Any], tier: str, lease: Lease | None) -> StoredResponse:
        body, max_age, private, digest = value
        return cls(bytes(body), float(max_age), bool(private), str(digest), tier, lease)


@dataclass(slots=True)
class Executed(Generic[R]):
    """What execution hands back: the body as it would be stored, the policy it earned
    (None when it must never be reused: a write, or any error), and the caller's own
    `result` (an ExecutionResult, say), passed through untouched."""

    body: bytes
    policy: CachePolicy | None
    result: R


@dataclass(frozen=True, slots=True)
class Prepared:
    """An operation's key (None: its response is never stored) and its name, as the
    client gave it or as its document says."""

    key: str | None
    name: str | None


@dataclass(slots=True)
class Hit:
    response: StoredResponse
    operation_name: str | None  # as the client gave it or as its document says
    outcome: ClassVar[Outcome] = "hit"


@dataclass(slots=True)
class Fresh(Generic[R]):
    executed: Executed[R]
    stored: StoredResponse | None  # what was kept for the next asker; None: nothing

    @property
    def outcome(self) -> Outcome:
        return "skip" if self.stored is None else "miss"


@dataclass(frozen=True, slots=True)
class _Normalized:
    printed: str
    operation_names: list[str | None]
    # The variables each operation declares, by operation name: computed once per
    # document, so the key leaves out whatever else a client sends.
    declared: dict[str | None, frozenset[str]]
    size: int  # bytes of the query text and its printed form, what the map is bounded by
    # By each name the document gives an operation (and None, no name sent): the encoded
    # key material before the variables, so a key costs one encoding of the variables.
    prefixes: dict[str | None, bytes]

    def prefix(self, name: str | None) -> bytes:
        """`orjson.dumps([printed, name, variables])` up to the variables: the same bytes,
        so the same keys, as encoding the whole list each time."""
        known = self.prefixes.get(name)
        return known if known is not None else key_prefix(self.printed, name)

    def name_of(self, name: str | None) -> str | None:
        """The operation's name, as the client gave it or as the document says."""
        if name is not None:
            return name
        names = self.operation_names
        return names[0] if len(names) == 1 else None


class ResponseCache:
    """Whole responses in `cache`, each kept at most `max_ttl` seconds and `max_bytes`
    long. Operations named in `excluded` are never stored; `max_tokens` bounds the
    parse done to normalize a document. `on_read` sees the key of every lookup."""

    def __init__(
        self,
        cache: TieredCache,
        *,
        max_ttl: float,
        max_bytes: int,
        max_tokens: int,
        excluded: Iterable[str] = (),
        enabled: bool = True,
        on_read: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self._cache = cache
        self._on_read = on_read
        self.enabled = enabled
        self._excluded = frozenset(excluded)
        self._max_ttl = max_ttl
        self._max_bytes = max_bytes
        self._max_tokens = max_tokens
        # Plain LRU maps: read on every request, they must cost well under a microsecond.
        self._normalized: LRUCache[str, _Normalized] = LRUCache(
            NORMALIZED_BYTES, getsizeof=lambda normalized: normalized.size
        )
        # Whether each operation's response was private, so a hit costs one lookup, not two.
        # A hint (a key names its scope: a wrong or forgotten hint costs a lookup, never
        # a wrong answer), so a plain dict dropping its oldest entry beyond the bound.
        self._scopes: dict[str, bool] = {}

    async def answer(
        self,
        operation: Operation,
        execute: Callable[[], Awaitable[Executed[R]]],
        prepared: Prepared | None = None,
    ) -> Hit | Fresh[R]:
        """The stored response of `operation`, or a fresh one from `execute`, kept for the
        next asker when it may be. `prepared`: what `prepare` said of the same operation."""
        if prepared is None:
            prepared = self.prepare(operation)
        key = prepared.key
        if key is None:  # nothing will be stored: no need to record what execution reads
            return Fresh(await execute(), None)
        stored = await self.lookup(key, operation.viewer)
        if stored is not None:
            return Hit(stored, prepared.name)
        with self._cache.recording() as recorder:
            executed = await execute()
        kept = await self.store(key, operation.viewer, executed, recorder.tag_versions)
        return Fresh(executed, kept)

    def key_of(self, operation: Operation) -> str | None:
        """The key of an operation whose response may be cached, else None."""
        return self.prepare(operation).key

    def prepare(self, operation: Operation) -> Prepared:
        """What a lookup needs of an operation. It depends on the operation's text alone
        (document, name, variables; not the viewer), so a caller that sees the same text
        again may keep it and hand it back to `answer`."""
        document = self._document(operation)
        if document is None:
            return Prepared(None, operation.operation_name)
        return Prepared(self._key(document, operation), document.name_of(operation.operation_name))

    def _document(self, operation: Operation) -> _Normalized | None:
        """The normalized document of an operation that may be cached, else None."""
        query = operation.document
        if not self.enabled or query is None:
            return None
        # Only documents that passed the checks below are ever remembered.
        document = self._normalized.get(query)
        if document is None:
            if _MUTATION.match(query) or _INTROSPECTION.search(query):
                return None
            document = self._normalize(query)
            if document is None:
                return None
        names = document.operation_names
        name = operation.operation_name
        if (name if name is not None else (names or [None])[0]) in self._excluded:
            return None
        return document

    def _key(self, document: _Normalized, operation: Operation) -> str | None:
        name = operation.operation_name
        names = document.operation_names
        chosen = name if name is not None else (names[0] if len(names) == 1 else None)
        given = operation.variables
        if given:
            declared = document.declared.get(chosen, frozenset())
            variables = {
                variable: value for variable, value in given.items() if variable in declared
            }
        else:
            variables = {}
        try:
            encoded = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            # Client input this encoder refuses (nesting past its limit): not cached, and
            # execution answers the request; key building never fails a request.
            return None
        canonical = document.prefix(name) + encoded + b"]"
        return hashlib.blake2b(canonical, digest_size=20).hexdigest()

    def _normalize(self, query: str) -> _Normalized | None:
        """The document as printed from its syntax tree (spacing, commas and comments do
        not make new keys) and its operations' names. None when it does not parse:
        execution will say why, and the text is not kept (it would be client bytes held
        for nothing)."""
        known = self._normalized.get(query)
        if known is not None:
            return known
        try:
            document = parse(query, no_location=True, max_tokens=self._max_tokens)
        except (GraphQLError, RecursionError):
            return None
        else:
            operations = [
                definition
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
            ]
            names = [op.name.value if op.name else None for op in operations]
            declared = {
                name: frozenset(d.variable.name.value for d in op.variable_definitions or ())
                for name, op in zip(names, operations, strict=True)
            }
            printed = print_ast(document)
            prefixes = {name: key_prefix(printed, name) for name in [None, *names]}
            size = len(query.encode()) + len(printed.encode())
            size += sum(len(prefix) for prefix in prefixes.values())
            normalized = _Normalized(printed, names, declared, size, prefixes)
        if size <= NORMALIZED_BYTES:
            self._normalized[query] = normalized
        return normalized

    @staticmethod
    def _entry_key(operation: str, scope: str) -> str:
        return f"response:{operation}:{scope}"

    @staticmethod
    def viewer_scope(viewer: str | None) -> str:
        return "viewer=anonymous" if viewer is None else f"viewer={viewer}"

    async def lookup(self, key: str, viewer: str | None) -> StoredResponse | None:
        """The response stored under `key` for `viewer`: its own, or the shared one."""
        private = self._scopes.get(key)
        if private is None:
            scopes = [PUBLIC, self.viewer_scope(viewer)]
        else:
            scopes = [self.viewer_scope(viewer) if private else PUBLIC]
        keys = [self._entry_key(key, scope) for scope in scopes]
        if self._on_read is not None:
            self._on_read(keys[:1])
        for entry_key in keys:
            found = await self._cache.get_entry_with_tier(entry_key)
            if found is not None and found[0].found:
                entry, tier, lease = found
                return StoredResponse.from_value(entry.value, tier, lease)
        return None

    def serves_again(self, key: str, stored: StoredResponse) -> bool:
        """Whether `lookup(key, None)` (anonymous) would answer `stored` now, read from
        L1: the same scope looked up first (the hint unchanged) and L1 still serving the
        entry it came from (its lease). If so, counted and seen as that lookup would be,
        so a caller may replay what it made of `stored` without looking up again."""
        lease = stored.lease
        if (
            lease is None
            or self._scopes.get(key, False) != stored.private
            or not self._cache.holds(lease)
        ):
            return False
        entry_key = self._entry_key(key, self.viewer_scope(None) if stored.private else PUBLIC)
        self._cache.touch(entry_key)  # L1 keeps what is replayed as it keeps what is read
        if self._on_read is not None:
            self._on_read([entry_key])
        self._cache.counters.add("l1_hits")
        return True

    async def store(
        self, key: str, viewer: str | None, executed: Executed[Any], tag_versions: TagVersions
    ) -> StoredResponse | None:
        """Keep a reusable response under `key`, tagged with the versions execution read;
        None when it may not be kept (a write or an error, no freshness, too long).

        The engine itself refuses it when one of `tag_versions` was bumped meanwhile."""
        policy = executed.policy
        if policy is None or policy.max_age is None:
            return None
        # Measured as stored: the body and the tag versions kept beside it.
        stamps = sum(len(tag.encode()) + STAMP_OVERHEAD for tag, _ in tag_versions)
        if len(executed.body) + stamps > self._max_bytes:
            return None
        scope = self.viewer_scope(viewer) if policy.private else PUBLIC
        scopes = self._scopes
        scopes[key] = policy.private
        if len(scopes) > NORMALIZED_DOCUMENTS:
            del scopes[next(iter(scopes))]
        response = StoredResponse(
            executed.body, policy.max_age, policy.private, fingerprint(executed.body)
        )
        ttl = min(policy.max_age, self._max_ttl)
        entry_key = self._entry_key(key, scope)
        await self._cache.set_entry(entry_key, response.to_value(), tag_versions, ttl=ttl)
        return response
