"""Text arguments bounded like the stored values (SPEC 2): the plan, and the refusal."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema, parse

from graph.api.arguments import CURSOR_LIMIT, ID_LIMIT, TEXT_LIMIT, text_bounds, text_plan
from graph.api.schema import build_schema
from graph.settings import Settings
from models.writes import GENRE_LIMIT
from tests.support.api import Api


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(Settings(env="dev"), observed=False)._schema


def test_every_text_argument_has_a_bound(schema: GraphQLSchema) -> None:
    bounds = text_bounds(schema)
    assert bounds[("Query", "books", "genre")] == GENRE_LIMIT
    assert bounds[("Query", "books", "authorId")] == ID_LIMIT
    assert bounds[("Query", "book", "id")] == ID_LIMIT
    assert bounds[("Mutation", "updateBook", "id")] == ID_LIMIT
    assert bounds[("Mutation", "invalidateCache", "tags")] == TEXT_LIMIT
    for type_, field in (("Query", "books"), ("Author", "books"), ("User", "reviews")):
        assert bounds[(type_, field, "after")] == CURSOR_LIMIT
    assert ("Query", "books", "first") not in bounds


def test_literals_and_variables_are_measured(schema: GraphQLSchema) -> None:
    bounds = text_bounds(schema)
    long_genre = "g" * (GENRE_LIMIT + 1)
    literal = text_plan(
        schema, bounds, parse(f'{{ books(genre: "{long_genre}") {{ totalCount }} }}')
    )
    assert literal.violation(None) == f"books(genre:) must be at most {GENRE_LIMIT} characters"
    fragment = text_plan(
        schema,
        bounds,
        parse(
            "query ($a: String) { ...F } "
            "fragment F on Query { books(after: $a) { edges { node { reviews(after: $a) { totalCount } } } } }"  # noqa: E501
        ),
    )
    assert fragment.violation({"a": "c" * CURSOR_LIMIT}) is None
    assert fragment.violation({"a": "c" * (CURSOR_LIMIT + 1)}) is not None
    assert fragment.violation({"a": 12}) is None  # a wrong type: coercion's to refuse
    tags = text_plan(
        schema, bounds, parse("mutation ($t: [String!]!) { invalidateCache(tags: $t) }")
    )
    assert tags.violation({"t": ["Book", "x" * (TEXT_LIMIT + 1)]}) is not None
    assert tags.violation({"t": ["Book", "x" * TEXT_LIMIT]}) is None


async def test_a_genre_longer_than_any_stored_one_is_bad_input(sqlite_api: Api) -> None:
    query = "query ($g: String) { books(genre: $g) { totalCount } }"
    assert await sqlite_api.error_codes(query, {"g": "g" * (GENRE_LIMIT + 1)}) == ["BAD_USER_INPUT"]
    data = await sqlite_api.data(query, {"g": "g" * GENRE_LIMIT})
    assert data["books"]["totalCount"] == 0
    literal = f'{{ books(genre: "{"g" * 33_000}") {{ totalCount }} }}'
    assert await sqlite_api.error_codes(literal) == ["BAD_USER_INPUT"]


async def test_ids_and_cursors_are_bounded(sqlite_api: Api) -> None:
    by_id = "query ($id: ID!) { book(id: $id) { id } }"
    assert (await sqlite_api.data(by_id, {"id": "1" * 40}))["book"] is None  # malformed: null
    assert await sqlite_api.error_codes(by_id, {"id": "1" * (ID_LIMIT + 1)}) == ["BAD_USER_INPUT"]
    page = "query ($a: String) { books(first: 1, after: $a) { totalCount } }"
    assert await sqlite_api.error_codes(page, {"a": "A" * (CURSOR_LIMIT + 1)}) == ["BAD_USER_INPUT"]
