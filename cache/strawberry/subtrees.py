"""Completed subtrees of a query's result, cached and replayed without executing them.

Executing a selection costs graphql-core and Strawberry a few microseconds per field,
however cheap each resolver is; a page of a hundred fields costs more than the cache
reads behind it. So, for a query, the completed result (plain dicts, lists and scalars,
as they go into the response) of two kinds of subtree is a cache value of its own:

* a field declared with :class:`~cache.strawberry.CachedField` whose type is an object
  (a connection, a viewer...): keyed by the field, its parent's id and its arguments;
* an *entity* (an object the app names with its entity key, ``entity_of``): keyed by
  that key; a field that looks one up by id (``entity_at``) is answered from it before
  its resolver runs.

Both keys also hold the selection below the field (its printed syntax with the fragments
it uses, as a digest) and the values of the variables that selection refers to, and the
viewer when the subtree used a ``PRIVATE`` value. A subtree found (L1, and L2 for one
not nested in another) is returned as it is: its fields do not run.

A subtree computed here is stored with the tag versions of every value its resolvers
consumed (``cache.strawberry.consumption``; an entity also consumes its own key), the
smallest TTL and the widest scope among them, and only when it completed without an
error: the same versions the whole-response cache would record, so the same bumps drop
it, in both tiers and on every instance, and the engine refuses to store it when one of
them already moved (the stale-set race). A replayed subtree adds its versions, TTL and
scope to the request (and to the subtrees around it) as the values it was built from
would have. Subtrees nested in a stored one are kept in L1 only: an L2 write each would
cost a round trip, and the outermost one is in L2.

The contract for the resolvers below a cached subtree: everything they use comes from
the cache (read through the `RequestCache`), and they depend on the viewer only through
``PRIVATE`` cached fields. Mutations are executed as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cachetools import LRUCache
from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    OperationType,
    get_nullable_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.values import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from cache.entry import Entry
from cache.keys import KeyPart, extend_key
from cache.strawberry import consumption
from cache.strawberry.consumption import Consumption, Scope
from cache.strawberry.fields import CachedField, RequestCache
from cache.strawberry.selections import Selections

EntityOf = Callable[[str, str, Any], str | None]
"""``entity_of(parent type name, field name, value)``: the entity key of an object a
field returned, whose data all came from that key's cached value; None if it is not one."""
EntityAt = Callable[[str, str, Mapping[str, Any]], str | None]
"""``entity_at(parent type name, field name, arguments)``: the entity key of the object
the field returns when it exists (a lookup by id), known before its resolver runs."""

PRIVATE_KEYS = 16384  # subtrees known to be private, so a lookup costs one read
MAX_BYTES = 256 * 1024  # a larger subtree (with its tags) is executed every time


class _Plan:
    """What a field can do with subtrees: its cache declaration, the object type it
    returns (whose entity subtrees may be looked up before the resolver runs)."""

    __slots__ = ("cached", "type_name")

    def __init__(self, cached: CachedField | None, type_name: str) -> None:
        self.cached = cached
        self.type_name = type_name


def _plan(field: GraphQLField) -> _Plan | None:
    returned = get_nullable_type(field.type)
    if not is_object_type(returned):
        return None
    definition = field.extensions.get("strawberry-definition")
    declared = definition.extensions if isinstance(definition, StrawberryField) else []
    cached = next((ext for ext in declared if isinstance(ext, CachedField)), None)
    return _Plan(cached, returned.name)


class Subtrees:
    """One schema's memos: selection digests, field plans, which keys are private; and
    the most bytes one stored subtree may take (L1 is bounded in entries).

    `entity_of` names the entity an object is (see `EntityOf`); `entity_at` the entity a
    field will return, from its arguments alone (`EntityAt`), so that its subtree can
    be answered before the resolver runs."""

    def __init__(
        self, entity_of: EntityOf, entity_at: EntityAt, *, max_bytes: int = MAX_BYTES
    ) -> None:
        self.entity_of = entity_of
        self.entity_at = entity_at
        self.max_bytes = max_bytes
        self.selections = Selections()
        self.private: LRUCache[str, bool] = LRUCache(PRIVATE_KEYS)
        self._plans: dict[int, tuple[GraphQLField, _Plan | None]] = {}

    def plan(self, field: GraphQLField) -> _Plan | None:
        known = self._plans.get(id(field))
        if known is None or known[0] is not field:
            known = self._plans[id(field)] = (field, _plan(field))
        return known[1]


async def _after(pending: Awaitable[None], result: Any) -> Any:
    await pending
    return result


def subtree_executor(subtrees: Subtrees) -> type[StrawberryGraphQLCoreExecutionContext]:
    """The executor class to give the schema (`execution_context_class`)."""

    class SubtreeExecutor(_SubtreeExecutor):
        memos = subtrees

    return SubtreeExecutor


class _SubtreeExecutor(StrawberryGraphQLCoreExecutionContext):
    memos: Subtrees

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = getattr(self.context_value, "request_cache", None)
        usable = (
            isinstance(request, RequestCache)
            and request.cache.config.enabled
            and self.operation.operation is OperationType.QUERY
        )
        self._request: RequestCache | None = request if usable else None
        if not usable:
            # Nothing to cache (the cache is off, or a mutation): graphql-core's own
            # methods, without one more layer on every field.
            self.execute_field = super().execute_field  # type: ignore[method-assign]
            self.complete_object_value = super().complete_object_value  # type: ignore[method-assign]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        run = super().execute_field
        if self._request is None:
            return run(parent_type, source, field_details_list, path, position_context)
        node = field_details_list[0].node
        field = self.schema.get_field(parent_type, node.name.value)
        plan = None if field is None else self.memos.plan(field)
        if field is None or plan is None:
            return run(parent_type, source, field_details_list, path, position_context)
        try:
            arguments = (
                get_argument_values(field, node, self.variable_values)
                if field.args or node.arguments
                else {}
            )
            cached = plan.cached
            parent = None if cached is None else cached.parent_id(source)
            entity = (
                None
                if cached
                else self.memos.entity_at(parent_type.name, node.name.value, arguments)
            )
        except (GraphQLError, AttributeError, TypeError, ValueError):
            return run(parent_type, source, field_details_list, path, position_context)
        if cached is not None:
            return self._subtree(
                cached.name,
                parent,
                arguments,
                field_details_list,
                path,
                None,
                lambda: run(parent_type, source, field_details_list, path, position_context),
            )
        if entity is not None:
            # The same key the object's own completion would look up: a hit needs no
            # resolver at all; on a miss that completion reads again and stores.
            keys = self._keys(plan.type_name, entity, None, field_details_list)
            entry = None if keys is None else self._request_cache().cache.get_local_entry(keys[1])
            if entry is not None:
                return self._replay(entry, self._request_cache())
        return run(parent_type, source, field_details_list, path, position_context)

    def _request_cache(self) -> RequestCache:
        request = self._request
        assert request is not None
        return request

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        complete = super().complete_object_value
        entity = None
        if self._request is not None:
            entity = self.memos.entity_of(info.parent_type.name, info.field_name, result)
        if entity is None:
            return complete(return_type, field_details_list, info, path, result, position_context)
        return self._subtree(  # type: ignore[no-any-return]
            return_type.name,
            entity,
            None,
            field_details_list,
            path,
            entity,
            lambda: complete(return_type, field_details_list, info, path, result, position_context),
        )

    # -- one subtree -------------------------------------------------------------------

    def _subtree(
        self,
        name: str,
        part: KeyPart,
        arguments: dict[str, Any] | None,
        details: FieldDetailsList,
        path: Path,
        entity: str | None,
        execute: Callable[[], Any],
    ) -> Any:
        """`name` is the field or type, `part` the parent's id or the entity's key, and
        `arguments` the field's (None for an entity)."""
        request = self._request_cache()
        keys = self._keys(name, part, arguments, details)
        if keys is None:
            return execute()
        public, key = keys
        if request.on_read is not None:
            request.on_read([key])
        outer = consumption.opened()
        entry = request.cache.get_local_entry(key)
        if entry is not None:
            return self._replay(entry, request)
        if outer:
            return self._execute(public, outer, path, entity, execute, nested=True)
        return self._outermost(key, public, path, entity, execute)

    def _keys(
        self, name: str, part: KeyPart, arguments: dict[str, Any] | None, details: FieldDetailsList
    ) -> tuple[str, str] | None:
        """The subtree's public key, and the key to read (the viewer's when it is known
        to be private: the public key with the viewer appended); None
        when it is not to be cached."""
        identity = self.memos.selections.identity(details, self.fragment_definitions)
        if identity is None:
            return None
        args: dict[str, Any] | None = None
        if arguments is not None or identity.variables:
            coerced = self.variable_values.coerced
            # A variable left out is not a variable given as null: only given ones count.
            given = {name: coerced[name] for name in identity.variables if name in coerced}
            args = {"v": given}
            if arguments is not None:
                args["a"] = arguments
        try:
            public = extend_key(identity.prefix(name), part, args=args)
        except TypeError:  # a value the key encoder refuses (a custom scalar): executed
            return None
        return public, self._per_viewer(public) if self.memos.private.get(public) else public

    def _per_viewer(self, public: str) -> str:
        return extend_key(public, self._request_cache().viewer_key())

    async def _outermost(
        self,
        key: str,
        public: str,
        path: Path,
        entity: str | None,
        execute: Callable[[], Any],
    ) -> Any:
        request = self._request_cache()
        entry = await request.cache.get_remote_entry(key)
        if entry is not None:
            return self._replay(entry, request)
        result = self._execute(public, (), path, entity, execute, nested=False)
        return await result if self.is_awaitable(result) else result

    def _replay(self, entry: Entry, request: RequestCache) -> Any:
        completed, max_age, private = entry.value
        scope = Scope.PRIVATE if private else Scope.PUBLIC
        request.policy.include(max_age, scope)
        consumption.consume(entry.versions, max_age, scope)
        return completed

    def _execute(
        self,
        public: str,
        outer: tuple[Consumption, ...],
        path: Path,
        entity: str | None,
        execute: Callable[[], Any],
        *,
        nested: bool,
    ) -> Any:
        """Runs the subtree with its own consumption open; keeps what it completed."""
        request = self._request_cache()
        run = _Run(public, (*outer, Consumption()), path, len(self.collected_errors.errors), nested)
        token = consumption.enter(run.stack)
        try:
            if entity is not None:
                request.consumed_entities([entity])
            result = execute()
        finally:
            consumption.leave(token)
        if self.is_awaitable(result):
            return self._finish(result, run)
        keep = self._keep(result, run)
        return result if keep is None else _after(keep, result)

    async def _finish(self, pending: Any, run: _Run) -> Any:
        token = consumption.enter(run.stack)
        try:
            result = await pending
        finally:
            consumption.leave(token)
        keep = self._keep(result, run)
        if keep is not None:
            await keep
        return result

    def _keep(self, result: Any, run: _Run) -> Awaitable[None] | None:
        """Stores a completed subtree: L1 at once when nested, else returns the awaitable
        write of both tiers. Nothing is kept after an error or an unknown input."""
        record = run.stack[-1]
        max_age = record.policy.max_age
        if not record.complete or max_age is None or self._failed_under(run):
            return None
        request = self._request_cache()
        private = record.policy.private
        public = run.key
        self.memos.private[public] = private
        key = self._per_viewer(public) if private else public
        value = [result, max_age, private]
        versions = record.recorder.tag_versions
        size = self.memos.max_bytes
        if run.nested:
            request.cache.set_local_entry(key, value, versions, ttl=max_age, max_bytes=size)
            return None
        return request.cache.set_entry(key, value, versions, ttl=max_age, max_bytes=size)

    def _failed_under(self, run: _Run) -> bool:
        errors = self.collected_errors.errors
        if len(errors) == run.errors_before:
            return False
        prefix = run.path.as_list()
        size = len(prefix)
        return any(
            error.path is None or list(error.path[:size]) == prefix
            for error in errors[run.errors_before :]
        )


class _Run:
    """One subtree being computed: its keys, the consumptions open around it (its own
    last), where it is in the result, and the errors already reported before it ran."""

    __slots__ = ("errors_before", "key", "nested", "path", "stack")

    def __init__(
        self,
        key: str,
        stack: tuple[Consumption, ...],
        path: Path,
        errors_before: int,
        nested: bool,
    ) -> None:
        self.key = key
        self.stack = stack
        self.path = path
        self.errors_before = errors_before
        self.nested = nested
