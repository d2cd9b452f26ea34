"""A cached field's key on a plain Strawberry schema over a real two-tier engine: two
argument values that a careless key would spell alike (null and "None") never share an
entry (SPEC 6.2a). Over HTTP the app's response cache and subtrees answer these before a
field is asked, so the field's own key is checked here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.types import Info

from cache.strawberry import CachedField, RequestCache
from tests.cache.conftest import MakeCache

TTL = 60.0


@dataclass
class Context:
    request_cache: RequestCache
    runs: Counter[str] = field(default_factory=Counter)


@strawberry.type
class Query:
    @strawberry.field(extensions=[CachedField(ttl=TTL, tags=lambda _root, _args: ["shelf"])])
    def shelf(self, info: Info[Context, None], genre: str | None = None) -> str:
        info.context.runs[repr(genre)] += 1
        return f"books of {genre!r}"


SCHEMA = strawberry.Schema(query=Query)
SHELF = "query ($genre: String) { shelf(genre: $genre) }"


async def test_null_and_the_string_none_never_share_a_field_entry(make_cache: MakeCache) -> None:
    cache = await make_cache()
    runs: Counter[str] = Counter()

    async def ask(genre: Any) -> str:
        context = Context(RequestCache(cache, None, default_ttl=TTL), runs)
        result = await SCHEMA.execute(
            SHELF, variable_values={"genre": genre}, context_value=context
        )
        assert result.errors is None
        assert result.data is not None
        answer: str = result.data["shelf"]
        return answer

    for _ in range(2):  # the second round from the cache
        assert await ask(None) == "books of None"
        assert await ask("None") == "books of 'None'"
    assert runs == {"None": 1, "'None'": 1}
