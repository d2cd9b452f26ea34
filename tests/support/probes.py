"""Queries that together show everything a write could change, and an oracle to check
what a cached instance answers against an instance with every cache tier off."""

from __future__ import annotations

from typing import Any

from models.seed import GENRES
from tests.support.api import Api

BOOK_FIELDS = "id title isbn genre publishedYear price author { id name } reviewCount averageRating"

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


async def assert_same_answers(cached: Api, truth: Api) -> None:
    """Every probe, anonymous and as each user, answers what the uncached instance does."""
    for query, variables in PUBLIC_PROBES:
        assert await cached.data(query, variables) == await truth.data(query, variables), query
    for token in (None, *cached.tokens):
        mine = await cached.data(PRIVATE_PROBE, token=token)
        assert mine == await truth.data(PRIVATE_PROBE, token=token), token


async def warm(api: Api) -> None:
    for query, variables in PUBLIC_PROBES:
        await api.data(query, variables)
    for token in (None, *api.tokens):
        await api.data(PRIVATE_PROBE, token=token)
