"""Cached subtrees on a small Strawberry schema over a real two-tier engine: a warm subtree
runs no resolver, and it is dropped by the invalidation of anything it used (nested
subtrees included), never kept when a write raced its computation or a field failed,
and a private one is only ever served to its viewer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.types import Info

from cache import TieredCache
from cache.strawberry import CachedField, RequestCache, Scope
from cache.strawberry.subtrees import Subtrees, subtree_executor
from tests.cache.conftest import MakeCache

TTL = 60.0


@dataclass
class World:
    """The database stand-in, and how often each resolver ran."""

    names: dict[str, str] = field(default_factory=lambda: {"Item:1": "one", "Item:2": "two"})
    owners: dict[str, str] = field(default_factory=lambda: {"Owner:9": "nine"})
    parts: dict[str, int] = field(default_factory=lambda: {"1": 3, "2": 5})
    runs: Counter[str] = field(default_factory=Counter)
    hold: asyncio.Event | None = None  # awaited by `parts` after it read (a racing write)
    reading: asyncio.Event = field(default_factory=asyncio.Event)  # set once `parts` read
    failing: bool = False


@dataclass
class Context:
    request_cache: RequestCache
    world: World


async def entities(info: Info[Context, None], keys: list[str]) -> dict[str, Any]:
    world = info.context.world

    async def load(missing: list[str]) -> Mapping[str, Any]:
        rows = {**world.names, **world.owners}
        return {key: rows[key] for key in missing if key in rows}

    return await info.context.request_cache.get_many_or_load(
        keys, load, ttl=TTL, tags=lambda key: [key]
    )


PARTS = CachedField(ttl=TTL, tags=lambda item, _args: [f"Item:{item.id}:parts"])
NOTE = CachedField(ttl=TTL, scope=Scope.PRIVATE, tags=lambda item, _args: [f"Item:{item.id}"])


@strawberry.type
class Owner:
    KIND: ClassVar[str] = "Owner"
    id: strawberry.ID
    name: str


@strawberry.type
class Item:
    KIND: ClassVar[str] = "Item"
    id: strawberry.ID
    name: str

    @strawberry.field(extensions=[PARTS])
    async def parts(self, info: Info[Context, None]) -> int:
        world = info.context.world
        world.runs["parts"] += 1
        count = world.parts[str(self.id)]
        world.reading.set()
        if world.hold is not None:
            await world.hold.wait()
        return count

    @strawberry.field
    async def owner(self, info: Info[Context, None]) -> Owner:
        info.context.world.runs["owner"] += 1
        # Not counted as consumed here: the owner's own subtree says what it used.
        found = await entities(info, ["Owner:9"])
        return Owner(id=strawberry.ID("9"), name=found["Owner:9"])

    @strawberry.field(extensions=[NOTE])
    def note(self, info: Info[Context, None]) -> str:
        info.context.world.runs["note"] += 1
        return f"note of {info.context.request_cache.viewer} on {self.name}"

    @strawberry.field
    def label(self, prefix: str | None = "x") -> str:
        return f"{prefix}{self.name}"

    @strawberry.field
    def fragile(self, info: Info[Context, None]) -> str | None:
        world = info.context.world
        world.runs["fragile"] += 1
        if world.failing:
            raise ValueError("not now")
        return "fine"

    @strawberry.field
    def unstamped(self, info: Info[Context, None]) -> Owner:
        # An entity built without being read through the cache: its versions are unknown.
        info.context.world.runs["unstamped"] += 1
        return Owner(id=strawberry.ID("404"), name="nobody")


async def load_item(info: Info[Context, None], id: strawberry.ID) -> Item | None:
    info.context.world.runs["item"] += 1
    key = f"Item:{id}"
    name = (await entities(info, [key]))[key]
    return None if name is None else Item(id=id, name=name)


@strawberry.type
class Query:
    @strawberry.field
    async def item(self, info: Info[Context, None], id: strawberry.ID) -> Item | None:
        return await load_item(info, id)


def entity_of(_parent: str, _field: str, value: Any) -> str | None:
    kind = getattr(value, "KIND", None)
    return None if kind is None else f"{kind}:{value.id}"


def entity_at(parent: str, field_name: str, arguments: Mapping[str, Any]) -> str | None:
    return f"Item:{arguments['id']}" if (parent, field_name) == ("Query", "item") else None


Ask = Callable[..., Coroutine[Any, Any, tuple[dict[str, Any], RequestCache]]]


def instance(cache: TieredCache, world: World, max_bytes: int = 64 * 1024) -> Ask:
    """One app instance: its own schema (and subtree memos) on `cache`."""
    subtrees = Subtrees(entity_of, entity_at, max_bytes=max_bytes)
    schema = strawberry.Schema(query=Query, execution_context_class=subtree_executor(subtrees))

    async def ask(
        query: str,
        viewer: str | None = None,
        errors: bool = False,
        variables: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], RequestCache]:
        request = RequestCache(cache, viewer, default_ttl=TTL)
        result = await schema.execute(
            query, variable_values=variables, context_value=Context(request, world)
        )
        assert bool(result.errors) == errors, result.errors
        assert result.data is not None
        return result.data, request

    return ask


@pytest.fixture
async def setup(make_cache: MakeCache) -> tuple[TieredCache, World, Ask]:
    cache = await make_cache()
    world = World()
    return cache, world, instance(cache, world)


ITEM = '{ item(id: "1") { name parts owner { name } } }'


async def test_a_warm_subtree_runs_no_resolver(setup: tuple[TieredCache, World, Ask]) -> None:
    _cache, world, ask = setup
    first, _ = await ask(ITEM)
    runs = dict(world.runs)
    assert runs == {"item": 1, "parts": 1, "owner": 1}
    second, request = await ask(ITEM)
    assert second == first == {"item": {"name": "one", "parts": 3, "owner": {"name": "nine"}}}
    assert world.runs == runs  # not even the lookup by id ran
    assert request.policy.max_age == TTL
    assert not request.policy.private


@pytest.mark.parametrize(
    ("change", "tag", "expected"),
    [
        (lambda w: w.names.update({"Item:1": "uno"}), "Item:1", ("uno", 3, "nine")),
        (lambda w: w.parts.update({"1": 4}), "Item:1:parts", ("one", 4, "nine")),
        (lambda w: w.owners.update({"Owner:9": "nueve"}), "Owner:9", ("one", 3, "nueve")),
    ],
)
async def test_an_invalidation_of_anything_used_drops_the_subtree(
    setup: tuple[TieredCache, World, Ask],
    change: Callable[[World], None],
    tag: str,
    expected: tuple[str, int, str],
) -> None:
    cache, world, ask = setup
    await ask(ITEM)
    await ask(ITEM)
    change(world)
    await cache.invalidate([tag])
    data, _ = await ask(ITEM)
    name, parts, owner = expected
    assert data == {"item": {"name": name, "parts": parts, "owner": {"name": owner}}}


async def test_a_replayed_nested_subtree_ties_its_parent_to_what_it_used(
    setup: tuple[TieredCache, World, Ask],
) -> None:
    cache, world, ask = setup
    await ask('{ item(id: "1") { owner { name } } }')
    # Item 2's subtree is built around the owner's, replayed from L1 without running.
    other = '{ item(id: "2") { owner { name } } }'
    await ask(other)
    assert world.runs["owner"] == 2
    world.owners["Owner:9"] = "nueve"
    await cache.invalidate(["Owner:9"])
    data, _ = await ask(other)
    assert data == {"item": {"owner": {"name": "nueve"}}}


async def test_a_subtree_computed_while_a_write_commits_is_not_kept(
    setup: tuple[TieredCache, World, Ask],
) -> None:
    cache, world, ask = setup
    world.hold = asyncio.Event()
    racing = asyncio.create_task(ask('{ item(id: "1") { name parts } }'))
    await asyncio.wait_for(world.reading.wait(), 5)
    world.parts["1"] = 4  # the write commits, then invalidates, while `parts` is loading
    await cache.invalidate(["Item:1:parts"])
    world.hold.set()
    stale, _ = await racing
    assert stale == {"item": {"name": "one", "parts": 3}}  # read before the write
    world.hold = None
    fresh, _ = await ask('{ item(id: "1") { name parts } }')
    assert fresh == {"item": {"name": "one", "parts": 4}}


async def test_private_subtrees_are_kept_per_viewer(make_cache: MakeCache) -> None:
    world = World()
    ask = instance(await make_cache(), world)
    query = '{ item(id: "1") { note } }'
    alice, request = await ask(query, "alice")
    assert request.policy.private
    assert alice == {"item": {"note": "note of alice on one"}}
    # Another instance (its own L1 and memos, the same Redis) knows nothing of the first.
    for other in (instance(await make_cache(), world), ask):
        bob, _ = await other(query, "bob")
        anonymous, _ = await other(query, None)
        assert bob == {"item": {"note": "note of bob on one"}}
        assert anonymous == {"item": {"note": "note of None on one"}}
    again, request = await ask(query, "alice")
    assert again == alice
    assert request.policy.private  # a replayed private subtree keeps the answer private


async def test_a_subtree_with_an_error_is_not_kept(setup: tuple[TieredCache, World, Ask]) -> None:
    _cache, world, ask = setup
    query = '{ item(id: "1") { name fragile } }'
    world.failing = True
    failed, _ = await ask(query, errors=True)
    assert failed == {"item": {"name": "one", "fragile": None}}
    world.failing = False
    healed, _ = await ask(query)
    assert healed == {"item": {"name": "one", "fragile": "fine"}}
    await ask(query)
    assert world.runs["fragile"] == 2  # ran again after the error, then was kept


async def test_nothing_built_from_unknown_versions_is_kept(
    setup: tuple[TieredCache, World, Ask],
) -> None:
    _cache, world, ask = setup
    query = '{ item(id: "1") { name unstamped { name } } }'
    for _ in range(3):
        data, _ = await ask(query)
        assert data == {"item": {"name": "one", "unstamped": {"name": "nobody"}}}
    assert world.runs["unstamped"] == 3


async def test_not_found_is_executed_every_time(setup: tuple[TieredCache, World, Ask]) -> None:
    _cache, world, ask = setup
    for _ in range(2):
        data, request = await ask('{ item(id: "5") { name } }')
        assert data == {"item": None}
        assert request.policy.max_age is not None
        assert request.policy.max_age < TTL
    assert world.runs["item"] == 2


async def test_mutations_run_in_full(make_cache: MakeCache) -> None:
    @strawberry.type
    class Mutation:
        @strawberry.mutation
        async def touch(self, info: Info[Context, None], id: strawberry.ID) -> Item | None:
            return await load_item(info, id)

    cache = await make_cache()
    world = World()
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        execution_context_class=subtree_executor(Subtrees(entity_of, entity_at)),
    )
    for _ in range(2):
        request = RequestCache(cache, None, default_ttl=TTL)
        result = await schema.execute(
            'mutation { touch(id: "1") { name parts } }', context_value=Context(request, world)
        )
        assert result.data == {"touch": {"name": "one", "parts": 3}}
    assert world.runs["item"] == 2
    assert world.runs["parts"] == 1  # the field's own cache still answers


async def test_the_variables_a_selection_uses_are_in_its_key(
    setup: tuple[TieredCache, World, Ask],
) -> None:
    _cache, _world, ask = setup
    query = 'query ($p: String) { item(id: "1") { label(prefix: $p) } }'
    cases = [({"p": "a-"}, "a-one"), ({"p": "b-"}, "b-one"), ({}, "xone"), ({"p": None}, "Noneone")]
    for _ in range(2):  # computed, then replayed
        for variables, label in cases:
            data, _ = await ask(query, variables=variables)
            assert data == {"item": {"label": label}}


async def test_a_subtree_over_the_byte_bound_is_executed_every_time(make_cache: MakeCache) -> None:
    world = World()
    world.names["Item:1"] = "x" * 2000
    ask = instance(await make_cache(), world, max_bytes=1000)
    for _ in range(2):
        data, _ = await ask('{ item(id: "1") { name } }')
        assert data == {"item": {"name": "x" * 2000}}
    assert world.runs["item"] == 2
    short, _ = await ask('{ item(id: "2") { name } }')
    await ask('{ item(id: "2") { name } }')
    assert short == {"item": {"name": "two"}}
    assert world.runs["item"] == 3  # a small one is kept
