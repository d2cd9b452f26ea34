"""Queries that together show everything a write could change, the writes they must show,
and an oracle to check what a cached instance answers against an instance with every
cache tier off. Shared by the in-process tests (`tests.support.api.Api`) and the
end-to-end ones (`tests.support.servers.Server`): both are a `Reader`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import graphql

from graph.api.schema import build_schema
from graph.settings import Settings
from models.seed import GENRES
from tests.support.api import Api

BOOK_FIELDS = "id title isbn genre publishedYear price author { id name } reviewCount averageRating"

LIST_QUERY = """query List($first: Int!) { books(first: $first) {
  edges { node { id title author { name } reviewCount averageRating } } } }"""
"""The list page: a connection and, per book, a nested object and two aggregates. No
`totalCount`, so that its statement count stays page ids, books, authors, aggregates."""

PUBLIC_PROBES: list[tuple[str, dict[str, Any]]] = [
    (f"{{ books(first: 100) {{ totalCount edges {{ node {{ {BOOK_FIELDS} }} }} }} }}", {}),
    ("{ books(first: 3) { pageInfo { hasNextPage endCursor } edges { node { id } } } }", {}),
    *[
        (
            "query ($g: String) { books(genre: $g, first: 100) { totalCount "
            "edges { node { id genre } } } }",
            {"g": genre},
        )
        for genre in GENRES[:3]
    ],
    *[
        (
            "query ($a: ID) { books(authorId: $a, first: 100) { totalCount edges { node { id } } }"
            ' byGenre: books(authorId: $a, genre: "fantasy") { totalCount } }',
            {"a": str(author)},
        )
        for author in (1, 2, 3, 13)
    ],
    (
        "{ authors(first: 100) { totalCount edges { node { id name bio bookCount "
        "books(first: 20) { totalCount edges { node { id title } } } } } } }",
        {},
    ),
    *[
        (
            f"query ($id: ID!) {{ book(id: $id) {{ {BOOK_FIELDS} reviews(first: 100) {{ "
            "totalCount edges { node { id rating body reviewer { id name } } } } } }",
            {"id": str(book)},
        )
        for book in (1, 2, 3, 5, 49, 50)
    ],
    *[
        (
            "query ($id: ID!) { author(id: $id) { id name bio bookCount } }",
            {"id": str(author)},
        )
        for author in (1, 2, 13)
    ],
    *[
        (
            "query ($id: ID!) { review(id: $id) { id rating body book { id title } "
            "reviewer { id reviews(first: 100) { totalCount edges { node { id } } } } } }",
            {"id": str(review)},
        )
        for review in (1, 4, 145, 146)
    ],
]

PRIVATE_PROBE = (
    "{ me { id name reviews(first: 100) { totalCount edges { node { id rating book { id } } } } } }"
)

Tokens = tuple[str, str, str]
"""An admin's token and two ordinary users' (alice, bob), as `prepare_database` makes them."""

Answers = dict[str, Any]
"""What a reader answered, by a label of the probe (and of the viewer, for private ones)."""


# --- the writes: each must change what some probe answers ------------------------------

Write = tuple[str, dict[str, Any], int]
"""A mutation, its variables and which of the `Tokens` runs it (0 admin, 1 alice, 2 bob)."""

WRITES: dict[str, list[Write]] = {
    "update book title": [
        ('mutation { updateBook(id: "1", input: {title: "Renamed"}) { id } }', {}, 0)
    ],
    "change genre": [('mutation { updateBook(id: "1", input: {genre: "mystery"}) { id } }', {}, 0)],
    "move book to another author": [
        ('mutation { updateBook(id: "5", input: {authorId: "1"}) { id } }', {}, 0)
    ],
    "create book": [
        (
            """mutation { createBook(input: {title: "New", isbn: "probe-1", genre: "fantasy",
               publishedYear: 2001, price: 3.5, authorId: "2"}) { id } }""",
            {},
            0,
        )
    ],
    "delete book": [('mutation { deleteBook(id: "2") }', {}, 0)],
    "add review": [
        ('mutation { addReview(input: {bookId: "1", rating: 1, body: "meh"}) { id } }', {}, 1)
    ],
    "delete review": [('mutation { deleteReview(id: "1") }', {}, 0)],
    "create author": [('mutation { createAuthor(input: {name: "Newcomer"}) { id } }', {}, 0)],
    "update author": [
        ('mutation { updateAuthor(id: "2", input: {name: "Renamed", bio: null}) { id } }', {}, 0)
    ],
    "delete author (after their books)": [
        *[(f'mutation {{ deleteBook(id: "{book}") }}', {}, 0) for book in (9, 10, 11, 12)],
        ('mutation { deleteAuthor(id: "3") }', {}, 0),
    ],
}
"""Every kind of write of SPEC 2, as one step or (deleting an author) a sequence."""


# --- the oracle --------------------------------------------------------------------------


class Reader(Protocol):
    """An instance answering GraphQL: in process (`Api`) or a real process (`Server`)."""

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]: ...


def viewers(tokens: Tokens) -> list[tuple[str, str | None]]:
    return [("anonymous", None), ("admin", tokens[0]), ("alice", tokens[1]), ("bob", tokens[2])]


async def gather_limited(
    calls: Sequence[Callable[[], Awaitable[Any]]], limit: int = 8
) -> list[Any]:
    """Runs `calls` at most `limit` at a time, answers in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def public_answers(reader: Reader, limit: int = 8) -> Answers:
    labels = [f"{query} {variables}" for query, variables in PUBLIC_PROBES]
    calls = [(lambda q=query, v=variables: reader.data(q, v)) for query, variables in PUBLIC_PROBES]
    return dict(zip(labels, await gather_limited(calls, limit), strict=True))


async def private_answers(reader: Reader, tokens: Tokens, limit: int = 8) -> Answers:
    seen = viewers(tokens)
    calls = [(lambda t=token: reader.data(PRIVATE_PROBE, token=t)) for _, token in seen]
    return {
        f"me as {name}": data
        for (name, _), data in zip(seen, await gather_limited(calls, limit), strict=True)
    }


async def answers(reader: Reader, tokens: Tokens, limit: int = 8) -> Answers:
    """Every probe, anonymous and as each viewer."""
    return {**await public_answers(reader, limit), **await private_answers(reader, tokens, limit)}


def differences(got: Answers, truth: Answers) -> list[str]:
    return [label for label in truth if got.get(label) != truth[label]]


def first_difference(got: Any, truth: Any, path: str = "") -> str:
    """Where two answers first differ, as `path: got != truth`."""
    if isinstance(got, dict) and isinstance(truth, dict) and got.keys() == truth.keys():
        for key in truth:
            if got[key] != truth[key]:
                return first_difference(got[key], truth[key], f"{path}.{key}")
    if isinstance(got, list) and isinstance(truth, list) and len(got) == len(truth):
        for index, (mine, theirs) in enumerate(zip(got, truth, strict=True)):
            if mine != theirs:
                return first_difference(mine, theirs, f"{path}[{index}]")
    return f"{path}: {json.dumps(got)[:300]} != {json.dumps(truth)[:300]}"


def explain(got: Answers, truth: Answers) -> str:
    return "\n".join(
        f"  {label[:80]}\n    {first_difference(got.get(label), truth[label])}"
        for label in differences(got, truth)
    )


async def assert_same_answers(cached: Api, truth: Api) -> None:
    """Every probe, anonymous and as each user, answers what the uncached instance does.
    One request at a time, so that an in-process failure points at one request."""
    got = await answers(cached, cached.tokens, limit=1)
    expected = await answers(truth, cached.tokens, limit=1)
    assert not differences(got, expected), explain(got, expected)


async def warm(api: Api) -> None:
    await answers(api, api.tokens, limit=1)


# --- coverage of the schema -------------------------------------------------------------


def schema_query_fields() -> set[str]:
    """The fields of the schema's Query type, as clients spell them."""
    # The schema the app serves (no database is opened to build it).
    served = build_schema(Settings(database_url="sqlite+aiosqlite://"))
    schema = graphql.build_schema(str(served))
    assert schema.query_type is not None
    return set(schema.query_type.fields)


def query_fields_probed(documents: Iterable[str]) -> set[str]:
    """The Query fields that `documents` select at their root (aliases resolved)."""
    found: set[str] = set()
    for document in documents:
        for definition in graphql.parse(document).definitions:
            if isinstance(definition, graphql.OperationDefinitionNode):
                assert definition.operation is graphql.OperationType.QUERY, document
                found.update(
                    selection.name.value
                    for selection in definition.selection_set.selections
                    if isinstance(selection, graphql.FieldNode)
                )
    return found
