"""Root query fields: lookups by id, top-level connections, and the viewer."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import strawberry

from cache.strawberry import CachedField, Scope
from graph.api import keys, values
from graph.api.context import Info
from graph.api.errors import bad_input
from graph.api.ids import check_first, decode_cursor, parse_id
from graph.api.lists import Authors, Books
from graph.api.types import (
    LIST_TTL,
    PRIVATE_TTL,
    Author,
    Book,
    Connection,
    Review,
    User,
    cached_connection,
    field_of,
)
from models import AuthorRecord, BookRecord, catalogue
from models.catalogue import BookFilter

NO_AUTHOR = 0  # an id no row has: `authorId` values that cannot be ids filter on it


def _author_filter(author_id: str | None) -> int | None:
    if author_id is None:
        return None
    return parse_id(author_id) or NO_AUTHOR


def _books_of(_root: Any, arguments: Mapping[str, Any]) -> Books:
    return Books(genre=arguments["genre"], author=_author_filter(arguments["author_id"]))


ME = CachedField(
    ttl=PRIVATE_TTL,
    scope=Scope.PRIVATE,
    tags=lambda _root, _args: [keys.USERS],
    parent_id=keys.parent_id,
    encode=values.encode,
    decode=lambda value: values.decode(User, value),
)


@strawberry.type
class Query:
    @strawberry.field
    async def author(self, info: Info, id: strawberry.ID) -> Author | None:
        pk = parse_id(id)
        record = None if pk is None else await info.context.loaders.author.load(pk)
        return None if record is None else Author.from_record(record)

    @cached_connection(LIST_TTL, Authors.scope, lambda _root, _args: Authors())
    async def authors(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Author]:
        size = check_first(first)
        after_id = decode_cursor(keys.AUTHORS, after)
        page = await info.context.db.read(
            partial(catalogue.page, record=AuthorRecord, first=size, after_id=after_id)
        )
        return Connection.of(keys.AUTHORS, page, Authors())

    @strawberry.field
    async def book(self, info: Info, id: strawberry.ID) -> Book | None:
        pk = parse_id(id)
        record = None if pk is None else await info.context.loaders.book.load(pk)
        return None if record is None else Book.from_record(record)

    @cached_connection(LIST_TTL, Books.scope, _books_of)
    async def books(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        genre: str | None = None,
        author_id: strawberry.ID | None = None,
    ) -> Connection[Book]:
        size = check_first(first)
        after_id = decode_cursor(keys.BOOKS, after)
        if genre is not None and "\x00" in genre:
            raise bad_input("genre must not contain NUL characters")
        author_pk = _author_filter(author_id)
        equal = BookFilter(genre=genre, author_id=author_pk).equal()
        page = await info.context.db.read(
            partial(catalogue.page, record=BookRecord, first=size, after_id=after_id, equal=equal)
        )
        return Connection.of(keys.BOOKS, page, Books(genre=genre, author=author_pk))

    @strawberry.field
    async def review(self, info: Info, id: strawberry.ID) -> Review | None:
        pk = parse_id(id)
        record = None if pk is None else await info.context.loaders.review.load(pk)
        return None if record is None else Review.from_record(record)

    @field_of(User | None, cached=ME)
    def me(self, info: Info) -> User | None:
        viewer = info.context.viewer
        return None if viewer is None else User.from_record(viewer)
