"""`child_fields` sees what a client selected under `node`, through fragments and aliases."""

from __future__ import annotations

import strawberry

from graph.api.context import Info
from graph.api.selection import child_fields

SEEN: list[frozenset[str]] = []


@strawberry.type
class Node:
    title: str = "t"
    count: int = 1


@strawberry.type
class Edge:
    node: Node


@strawberry.type
class Query:
    @strawberry.field
    def edges(self, info: Info) -> list[Edge]:
        SEEN.append(child_fields(info, "node"))
        return [Edge(node=Node())]


SCHEMA = strawberry.Schema(Query)


def _seen(query: str) -> frozenset[str]:
    SEEN.clear()
    result = SCHEMA.execute_sync(query)
    assert result.errors is None, result.errors
    assert len(SEEN) == 1
    return SEEN[0]


def test_plain_selection() -> None:
    assert _seen("{ edges { node { title } } }") == {"title"}


def test_aliases_are_seen_by_field_name() -> None:
    assert _seen("{ edges { n: node { t: title c: count } } }") == {"title", "count"}


def test_named_and_inline_fragments_at_both_levels() -> None:
    query = """{ edges { ...E } }
      fragment E on Edge { node { ...N ... on Node { count } } }
      fragment N on Node { title }"""
    assert _seen(query) == {"title", "count"}


def test_two_selections_of_the_same_field_are_merged() -> None:
    assert _seen("{ edges { node { title } node { count } } }") == {"title", "count"}
    assert _seen("{ edges { node { __typename } } }") == {"__typename"}
    assert _seen("{ edges { __typename } }") == frozenset()
