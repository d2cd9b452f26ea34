"""The yardstick of field-cached execution (issue 15): Strawberry executing Strata's read
queries over plain dicts, with no database and no cache.

The types are those of schema.graphql (tests/cli/test_yardstick.py holds them equal, type
by type; the mutations are left out), every resolver a dict or list lookup over data
loaded once from the seeded database at start, with Strawberry's parser and validation
caches on. Served by uvicorn as `strata serve` is (one worker, no access log), it is an
honest floor for what GraphQL execution costs in Python: `strata bench` runs it beside its
phases, and field-cached execution should be at least as fast.

    python -m benchmarks.yardstick --port 8001   # DATABASE_URL: the seeded database
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
import uvicorn
from sqlalchemy import text
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

from models import Database

CACHE_SIZE = 1024


@dataclass
class Catalogue:
    """Every row the read queries can reach, by id, and the orderings they page through."""

    authors: dict[int, dict[str, Any]] = field(default_factory=dict)
    books: dict[int, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    books_by_author: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    books_by_genre: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    reviews_by_book: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    reviews_by_user: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))


async def load(database_url: str) -> Catalogue:
    """The whole catalogue, read once (ids in ascending order, as Strata pages them)."""
    data = Catalogue()
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:

            async def rows(sql: str) -> list[Any]:
                return list((await conn.execute(text(sql))).all())

            for pk, name, bio in await rows("SELECT id, name, bio FROM authors ORDER BY id"):
                data.authors[pk] = {"id": pk, "name": name, "bio": bio}
            for pk, name in await rows("SELECT id, name FROM users ORDER BY id"):
                data.users[pk] = {"id": pk, "name": name}
            for pk, title, isbn, genre, year, price, author in await rows(
                "SELECT id, title, isbn, genre, published_year, price, author_id "
                "FROM books ORDER BY id"
            ):
                data.books[pk] = {
                    "id": pk,
                    "title": title,
                    "isbn": isbn,
                    "genre": genre,
                    "published_year": year,
                    "price": price,
                    "author_id": author,
                }
                data.books_by_author[author].append(pk)
                data.books_by_genre[genre].append(pk)
            for pk, rating, body, created, book, reviewer in await rows(
                "SELECT id, rating, body, created_at, book_id, reviewer_id FROM reviews ORDER BY id"
            ):
                data.reviews[pk] = {
                    "id": pk,
                    "rating": rating,
                    "body": body,
                    "created_at": created,
                    "book_id": book,
                    "reviewer_id": reviewer,
                }
                data.reviews_by_book[book].append(pk)
                data.reviews_by_user[reviewer].append(pk)
    finally:
        await db.dispose()
    for pk, book in data.books.items():
        ratings = [data.reviews[review]["rating"] for review in data.reviews_by_book[pk]]
        book["review_count"] = len(ratings)
        book["average_rating"] = sum(ratings) / len(ratings) if ratings else None
    return data


def cursor(kind: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode().rstrip("=")


def after_position(ids: list[int], kind: str, after: str | None) -> int:
    if after is None:
        return 0
    padded = after + "=" * (-len(after) % 4)
    pk = int(base64.urlsafe_b64decode(padded).decode().partition(":")[2])
    return next((n + 1 for n, value in enumerate(ids) if value == pk), len(ids))


def data_of(info: Info) -> Catalogue:
    catalogue: Catalogue = info.context["catalogue"]
    return catalogue


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Author:
    row: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row["id"]))

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def bio(self) -> str | None:
        bio: str | None = self.row["bio"]
        return bio

    @strawberry.field
    def book_count(self, info: Info) -> int:
        return len(data_of(info).books_by_author[self.row["id"]])

    @strawberry.field
    def books(self, info: Info, first: int | None = 20, after: str | None = None) -> BookConnection:
        return book_page(info, data_of(info).books_by_author[self.row["id"]], first, after)


@strawberry.type
class Book:
    row: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row["id"]))

    @strawberry.field
    def title(self) -> str:
        return str(self.row["title"])

    @strawberry.field
    def isbn(self) -> str:
        return str(self.row["isbn"])

    @strawberry.field
    def genre(self) -> str:
        return str(self.row["genre"])

    @strawberry.field
    def published_year(self) -> int:
        return int(self.row["published_year"])

    @strawberry.field
    def price(self) -> float:
        return float(self.row["price"])

    @strawberry.field
    def author(self, info: Info) -> Author:
        return Author(row=data_of(info).authors[self.row["author_id"]])

    @strawberry.field
    def review_count(self) -> int:
        return int(self.row["review_count"])

    @strawberry.field
    def average_rating(self) -> float | None:
        average: float | None = self.row["average_rating"]
        return average

    @strawberry.field
    def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ReviewConnection:
        return review_page(info, data_of(info).reviews_by_book[self.row["id"]], first, after)


@strawberry.type
class Review:
    row: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row["id"]))

    @strawberry.field
    def rating(self) -> int:
        return int(self.row["rating"])

    @strawberry.field
    def body(self) -> str:
        return str(self.row["body"])

    @strawberry.field
    def created_at(self) -> datetime:
        created: datetime = self.row["created_at"]
        return created

    @strawberry.field
    def book(self, info: Info) -> Book:
        return Book(row=data_of(info).books[self.row["book_id"]])

    @strawberry.field
    def reviewer(self, info: Info) -> User:
        return User(row=data_of(info).users[self.row["reviewer_id"]])


@strawberry.type
class User:
    row: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row["id"]))

    @strawberry.field
    def name(self) -> str:
        return str(self.row["name"])

    @strawberry.field
    def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ReviewConnection:
        return review_page(info, data_of(info).reviews_by_user[self.row["id"]], first, after)


@strawberry.type
class AuthorEdge:
    cursor: str
    node: Author


@strawberry.type
class BookEdge:
    cursor: str
    node: Book


@strawberry.type
class ReviewEdge:
    cursor: str
    node: Review


@strawberry.type
class AuthorConnection:
    page_info: PageInfo
    edges: list[AuthorEdge]
    total_count: int


@strawberry.type
class BookConnection:
    page_info: PageInfo
    edges: list[BookEdge]
    total_count: int


@strawberry.type
class ReviewConnection:
    page_info: PageInfo
    edges: list[ReviewEdge]
    total_count: int


def _window(ids: list[int], kind: str, first: int | None, after: str | None) -> list[int]:
    start = after_position(ids, kind, after)
    return ids[start : start + (20 if first is None else first)]


def _page_info(ids: list[int], window: list[int], kind: str) -> PageInfo:
    has_next = bool(window) and window[-1] != ids[-1]
    return PageInfo(has_next_page=has_next, end_cursor=cursor(kind, window[-1]) if window else None)


def book_page(info: Info, ids: list[int], first: int | None, after: str | None) -> BookConnection:
    window = _window(ids, "Book", first, after)
    books = data_of(info).books
    edges = [BookEdge(cursor=cursor("Book", pk), node=Book(row=books[pk])) for pk in window]
    return BookConnection(
        page_info=_page_info(ids, window, "Book"), edges=edges, total_count=len(ids)
    )


def review_page(
    info: Info, ids: list[int], first: int | None, after: str | None
) -> ReviewConnection:
    window = _window(ids, "Review", first, after)
    reviews = data_of(info).reviews
    edges = [ReviewEdge(cursor=cursor("Review", pk), node=Review(row=reviews[pk])) for pk in window]
    return ReviewConnection(
        page_info=_page_info(ids, window, "Review"), edges=edges, total_count=len(ids)
    )


def _row(table: dict[int, dict[str, Any]], id: strawberry.ID) -> dict[str, Any] | None:
    return table.get(int(id)) if str(id).isdigit() else None


@strawberry.type
class Query:
    @strawberry.field
    def author(self, info: Info, id: strawberry.ID) -> Author | None:
        row = _row(data_of(info).authors, id)
        return None if row is None else Author(row=row)

    @strawberry.field
    def authors(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> AuthorConnection:
        ids = list(data_of(info).authors)
        window = _window(ids, "Author", first, after)
        authors = data_of(info).authors
        edges = [
            AuthorEdge(cursor=cursor("Author", pk), node=Author(row=authors[pk])) for pk in window
        ]
        return AuthorConnection(
            page_info=_page_info(ids, window, "Author"), edges=edges, total_count=len(ids)
        )

    @strawberry.field
    def book(self, info: Info, id: strawberry.ID) -> Book | None:
        row = _row(data_of(info).books, id)
        return None if row is None else Book(row=row)

    @strawberry.field
    def books(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        genre: str | None = None,
        author_id: strawberry.ID | None = None,
    ) -> BookConnection:
        data = data_of(info)
        ids = list(data.books) if genre is None else data.books_by_genre.get(genre, [])
        if author_id is not None:
            wanted = set(data.books_by_author.get(int(author_id), []))
            ids = [pk for pk in ids if pk in wanted]
        return book_page(info, ids, first, after)

    @strawberry.field
    def review(self, info: Info, id: strawberry.ID) -> Review | None:
        row = _row(data_of(info).reviews, id)
        return None if row is None else Review(row=row)

    @strawberry.field
    def me(self) -> User | None:
        return None  # the yardstick knows no viewers


def schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        extensions=[
            partial(ParserCache, maxsize=CACHE_SIZE),
            partial(ValidationCache, maxsize=CACHE_SIZE),
        ],
    )


class YardstickApp(GraphQL[dict[str, Any], None]):
    def __init__(self, catalogue: Catalogue) -> None:
        super().__init__(schema(), graphql_ide=None)
        self.catalogue = catalogue

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return {"catalogue": self.catalogue}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    catalogue = asyncio.run(load(os.environ["DATABASE_URL"]))
    # As `strata serve` runs uvicorn (graph/cli/serving.py): one worker, no access log.
    uvicorn.run(
        YardstickApp(catalogue),
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
