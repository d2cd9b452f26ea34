"""Query cost (SPEC 2): the counting, on the real schema, and the refusal in process."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLSchema, parse

from graph.api.cost import CostMeter, connection_fields, first_variables, query_cost
from graph.api.memo import document_key
from graph.api.schema import build_schema
from graph.settings import Settings
from tests.support.api import Api


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(Settings(env="dev"), observed=False)._schema


def cost(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    operation: str | None = None,
) -> int:
    return query_cost(schema, connection_fields(schema), parse(query), operation, variables)


def test_the_schema_knows_its_connections(schema: GraphQLSchema) -> None:
    assert connection_fields(schema) == {
        ("Query", "authors"): 20,
        ("Query", "books"): 20,
        ("Author", "books"): 20,
        ("Book", "reviews"): 20,
        ("User", "reviews"): 20,
    }


def test_scalars_are_free_and_objects_count_one(schema: GraphQLSchema) -> None:
    assert cost(schema, '{ book(id: "1") { title } }') == 1
    assert cost(schema, '{ book(id: "1") { title author { name } } }') == 2
    assert cost(schema, "{ __typename }") == 0


def test_a_connection_multiplies_what_it_selects(schema: GraphQLSchema) -> None:
    # the connection, then per edge: the edge and its node
    assert cost(schema, "{ books(first: 10) { edges { node { id } } } }") == 1 + 10 * 2
    assert cost(schema, "{ books(first: 10) { totalCount } }") == 1
    # no `first`: the schema's default, 20
    assert cost(schema, "{ books { edges { node { id } } } }") == 1 + 20 * 2


def test_nested_connections_multiply(schema: GraphQLSchema) -> None:
    query = """{ books(first: 100) { edges { node {
        reviews(first: 100) { edges { node { reviewer { reviews(first: 100) {
          edges { node { id } } } } } } } } } } }"""
    inner = 1 + 100 * 2  # reviewer's reviews
    middle = 1 + 100 * (2 + 1 + inner)  # a book's reviews: edge, node, reviewer, inner
    assert cost(schema, query) == 1 + 100 * (2 + middle)
    assert cost(schema, query) > 2_000_000


def test_aliases_count_every_time(schema: GraphQLSchema) -> None:
    one = "{ books(first: 5) { edges { node { id } } } }"
    three = "{ a: books(first: 5) { edges { node { id } } } b: books(first: 5) { edges { node { id } } } c: books(first: 5) { edges { node { id } } } }"  # noqa: E501
    assert cost(schema, three) == 3 * cost(schema, one)


def test_fragments_named_and_inline_count_every_use(schema: GraphQLSchema) -> None:
    plain = "{ books(first: 4) { edges { node { author { name } } } } }"
    named = """query { books(first: 4) { edges { ...E } } }
               fragment E on BookEdge { node { author { name } } }"""
    inline = "{ books(first: 4) { edges { ... on BookEdge { node { author { name } } } } } }"
    assert cost(schema, named) == cost(schema, plain) == cost(schema, inline) == 1 + 4 * 3
    twice = """query { a: books(first: 4) { edges { ...E } } b: books(first: 4) { edges { ...E } } }
               fragment E on BookEdge { node { author { name } ...A ...A } }
               fragment A on Book { author { name } }"""
    assert cost(schema, twice) == 2 * (1 + 4 * (1 + 1 + 1 + 2))


def test_first_from_variables_and_their_defaults(schema: GraphQLSchema) -> None:
    query = "query ($n: Int) { books(first: $n) { edges { node { id } } } }"
    assert cost(schema, query, {"n": 50}) == 1 + 50 * 2
    assert cost(schema, query, {}) == 1 + 20 * 2  # unset: the argument's default
    assert cost(schema, query, {"n": None}) == 1 + 20 * 2  # null: the resolver's default
    with_default = "query ($n: Int = 7) { books(first: $n) { edges { node { id } } } }"
    assert cost(schema, with_default, {}) == 1 + 7 * 2
    assert cost(schema, with_default, {"n": 3}) == 1 + 3 * 2
    # values coercion will refuse count as the default: the request fails there anyway
    for bad in ("100", 2**40, True, [1]):
        assert cost(schema, query, {"n": bad}) == 1 + 20 * 2, bad


def test_the_named_operation_is_the_one_counted(schema: GraphQLSchema) -> None:
    document = """query Small { books(first: 1) { edges { node { id } } } }
                  query Big { books(first: 90) { edges { node { id } } } }"""
    assert cost(schema, document, operation="Small") == 3
    assert cost(schema, document, operation="Big") == 181
    assert cost(schema, document) == 0  # ambiguous: execution says so, nothing to count
    assert cost(schema, document, operation="Other") == 0


def test_mutations_are_counted_too(schema: GraphQLSchema) -> None:
    query = 'mutation { createAuthor(input: { name: "x" }) { books(first: 30) { edges { node { id } } } } }'  # noqa: E501
    assert cost(schema, query) == 1 + 1 + 30 * 2


def test_first_variables_are_the_memo_key(schema: GraphQLSchema) -> None:
    document = parse(
        """query ($a: Int, $b: Int, $g: String) { books(first: $a, genre: $g) { edges {
             node { reviews(first: $b) { totalCount } } } } }"""
    )
    assert first_variables(document) == ("a", "b")


def test_the_meter_remembers_per_document_and_first_values(schema: GraphQLSchema) -> None:
    meter = CostMeter(schema, entries=2)
    query = "query ($n: Int, $g: String) { books(first: $n, genre: $g) { edges { node { id } } } }"
    document = parse(query)
    key = document_key(query, None)
    assert meter.cost(key, document, None, {"n": 10, "g": "a"}) == 21
    assert meter.cost(key, document, None, {"n": 10, "g": "b"}) == 21
    assert len(meter._costs) == 1  # the genre does not feed `first`: one entry
    assert meter.cost(key, document, None, {"n": 30}) == 61
    assert meter.cost(key, document, None, {"n": 40}) == 81
    assert len(meter._costs) == 2  # bounded


async def test_an_expensive_query_is_refused_before_it_runs(sqlite_api: Api) -> None:
    query = """query ($n: Int) { books(first: $n) { edges { node {
        reviews(first: $n) { edges { node { id } } } } } } }"""
    payload = (await sqlite_api.post(query, {"n": 100})).json()
    assert payload.get("data") is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "20301" in error["message"]
    assert "10000" in error["message"]
    # the same document with small pages runs
    data = await sqlite_api.data(query, {"n": 2})
    assert len(data["books"]["edges"]) == 2
