"""Strawberry over plain dicts: the floor of what graphql-core costs for the bench pages.

The fields the list and detail pages select (graph/cli/bench/plan.py), with the same
names and types as the API, answered by plain synchronous resolvers from dicts read once
from a seeded database. No cache, no database at request time, no extensions but the
parser and validation caches. Only benchmarks/field_execution.py uses it.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from functools import partial
from typing import Any

import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

Row = dict[str, Any]
DATA: dict[str, Any] = {}


def _rows(url: str, table: str) -> list[Row]:
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY id")]


def load(url: str) -> None:
    DATA["users"] = {row["id"]: row for row in _rows(url, "users")}
    DATA["authors"] = {row["id"]: row for row in _rows(url, "authors")}
    DATA["books"] = {row["id"]: row for row in _rows(url, "books")}
    DATA["reviews"] = {row["id"]: row for row in _rows(url, "reviews")}
    reviews_of: dict[int, list[Row]] = defaultdict(list)
    for review in DATA["reviews"].values():
        reviews_of[review["book_id"]].append(review)
    books_of: dict[int, list[Row]] = defaultdict(list)
    for book in DATA["books"].values():
        books_of[book["author_id"]].append(book)
    books_in: dict[str | None, list[Row]] = defaultdict(list)
    for book in DATA["books"].values():
        books_in[book["genre"]].append(book)
        books_in[None].append(book)
    DATA["reviews_of"] = reviews_of
    DATA["books_of"] = books_of
    DATA["books_in"] = books_in


@strawberry.type
class User:
    row: strawberry.Private[Row]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row["id"]))

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])


@strawberry.type
class Review:
    row: strawberry.Private[Row]

    @strawberry.field
    def rating(self) -> int:
        return int(self.row["rating"])

    @strawberry.field
    def body(self) -> str:
        return str(self.row["body"])

    @strawberry.field
    def reviewer(self) -> User:
        return User(row=DATA["users"][self.row["reviewer_id"]])


@strawberry.type
class ReviewEdge:
    cursor: str
    node: Review


@strawberry.type
class ReviewConnection:
    edges: list[ReviewEdge]


@strawberry.type
class Author:
    row: strawberry.Private[Row]

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def book_count(self) -> int:
        return len(DATA["books_of"][self.row["id"]])


@strawberry.type
class Book:
    row: strawberry.Private[Row]

    @strawberry.field
    def title(self) -> str:
        return str(self.row["title"])

    @strawberry.field
    def author(self) -> Author:
        return Author(row=DATA["authors"][self.row["author_id"]])

    @strawberry.field
    def review_count(self) -> int:
        return len(DATA["reviews_of"][self.row["id"]])

    @strawberry.field
    def average_rating(self) -> float | None:
        ratings = [review["rating"] for review in DATA["reviews_of"][self.row["id"]]]
        return sum(ratings) / len(ratings) if ratings else None

    @strawberry.field
    def reviews(self, first: int | None = 20, after: str | None = None) -> ReviewConnection:
        rows = DATA["reviews_of"][self.row["id"]][: first or 20]
        return ReviewConnection(
            edges=[ReviewEdge(cursor=str(row["id"]), node=Review(row=row)) for row in rows]
        )


@strawberry.type
class BookEdge:
    cursor: str
    node: Book


@strawberry.type
class BookConnection:
    edges: list[BookEdge]


@strawberry.type
class Query:
    @strawberry.field
    def book(self, id: strawberry.ID) -> Book | None:
        row = DATA["books"].get(int(id))
        return None if row is None else Book(row=row)

    @strawberry.field
    def books(
        self,
        first: int | None = 20,
        after: str | None = None,
        genre: str | None = None,
        author_id: strawberry.ID | None = None,
    ) -> BookConnection:
        rows = DATA["books_in"][genre]
        return BookConnection(
            edges=[
                BookEdge(cursor=str(row["id"]), node=Book(row=row)) for row in rows[: first or 20]
            ]
        )


def create() -> GraphQL[Any, Any]:
    """The app for `uvicorn --factory`, on the database named by YARDSTICK_DATABASE_URL."""
    return dict_app(os.environ["YARDSTICK_DATABASE_URL"])


async def build_dict_app(url: str) -> GraphQL[Any, Any]:
    return dict_app(url)


def dict_app(url: str) -> GraphQL[Any, Any]:
    load(url)
    schema = strawberry.Schema(
        query=Query,
        extensions=[partial(ParserCache, maxsize=1024), partial(ValidationCache, maxsize=1024)],
    )
    return GraphQL(schema, graphql_ide=None)
