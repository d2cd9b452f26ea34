"""Writes: each runs in one transaction and answers with GraphQL error codes on refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types.unset import UNSET

from graph.api import tags
from graph.api.context import Info
from graph.api.errors import ErrorCode, api_error, bad_input, from_catalogue_error, not_found
from graph.api.ids import parse_id
from graph.api.tag_grammar import check_manual_tags
from graph.api.types import Author, Book, Review
from models import CatalogueError, UserRecord, writes

T = TypeVar("T")


@strawberry.input
class AuthorInput:
    name: str
    bio: str | None = None


@strawberry.input
class AuthorPatch:
    name: str | None = UNSET
    bio: str | None = UNSET


@strawberry.input
class BookInput:
    title: str
    isbn: str
    genre: str
    published_year: int
    price: float
    author_id: strawberry.ID


@strawberry.input
class BookPatch:
    title: str | None = UNSET
    isbn: str | None = UNSET
    genre: str | None = UNSET
    published_year: int | None = UNSET
    price: float | None = UNSET
    author_id: strawberry.ID | None = UNSET


@strawberry.input
class ReviewInput:
    book_id: strawberry.ID
    rating: int
    body: str


NULLABLE_FIELDS = frozenset({"bio"})


def _provided(patch: Any) -> dict[str, Any]:
    """The fields a client set, with ids turned into keys; null only where the SPEC allows."""
    values: dict[str, Any] = {}
    for name, value in vars(patch).items():
        if value is UNSET:
            continue
        if value is None and name not in NULLABLE_FIELDS:
            raise bad_input(f"{name} cannot be null")
        values[name] = value
    if "author_id" in values:
        values["author_id"] = _key(values["author_id"], "author")
    return values


def _key(value: str, what: str) -> int:
    pk = parse_id(value)
    if pk is None:
        raise not_found(f"no {what} with id {value}")
    return pk


def _viewer(info: Info) -> UserRecord:
    viewer = info.context.viewer
    if viewer is None:
        raise api_error(ErrorCode.UNAUTHENTICATED, "sign in with a bearer token to do this")
    return viewer


def _admin(info: Info) -> UserRecord:
    viewer = _viewer(info)
    if not viewer.is_admin:
        raise api_error(ErrorCode.FORBIDDEN, "only admins can do this")
    return viewer


async def _write(
    info: Info,
    change: Callable[[AsyncSession], Awaitable[T]],
    touched: Callable[[T], Iterable[str]],
) -> T:
    """Run one change in its own transaction, with the tags it touched recorded in the
    outbox in that same transaction (SPEC 7a); once it committed, and before the mutation
    answers, invalidate them (awaited: read-your-writes depends on it). If Redis does not
    take the bump, the outbox row keeps it until a relay applies it."""
    context = info.context
    try:
        async with context.db.session() as session, session.begin():
            result = await change(session)
            tags = list(touched(result))
            row = await context.record_invalidation(session, tags)
    except CatalogueError as error:
        raise from_catalogue_error(error) from None
    await context.invalidate_tags(tags, "mutation", row)
    return result


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_author(self, info: Info, input: AuthorInput) -> Author:
        _admin(info)
        record = await _write(
            info,
            lambda s: writes.create_author(s, _provided(input)),
            lambda created: tags.author_written(None, created),
        )
        return Author.from_record(record)

    @strawberry.mutation
    async def update_author(self, info: Info, id: strawberry.ID, input: AuthorPatch) -> Author:
        _admin(info)
        pk = _key(id, "author")
        change = await _write(
            info,
            lambda s: writes.update_author(s, pk, _provided(input)),
            lambda done: tags.author_written(done.before, done.after),
        )
        return Author.from_record(change.after)

    @strawberry.mutation
    async def delete_author(self, info: Info, id: strawberry.ID) -> bool:
        _admin(info)
        pk = _key(id, "author")
        await _write(
            info,
            lambda s: writes.delete_author(s, pk),
            lambda deleted: tags.author_written(deleted, None),
        )
        return True

    @strawberry.mutation
    async def create_book(self, info: Info, input: BookInput) -> Book:
        _admin(info)
        record = await _write(
            info,
            lambda s: writes.create_book(s, _provided(input)),
            lambda created: tags.book_written(None, created),
        )
        return Book.from_record(record)

    @strawberry.mutation
    async def update_book(self, info: Info, id: strawberry.ID, input: BookPatch) -> Book:
        _admin(info)
        pk = _key(id, "book")
        change = await _write(
            info,
            lambda s: writes.update_book(s, pk, _provided(input)),
            lambda done: tags.book_written(done.before, done.after),
        )
        return Book.from_record(change.after)

    @strawberry.mutation
    async def delete_book(self, info: Info, id: strawberry.ID) -> bool:
        _admin(info)
        pk = _key(id, "book")
        await _write(
            info,
            lambda s: writes.delete_book(s, pk),
            lambda deleted: tags.book_deleted(*deleted),
        )
        return True

    @strawberry.mutation
    async def add_review(self, info: Info, input: ReviewInput) -> Review:
        viewer = _viewer(info)
        values = {"book_id": _key(input.book_id, "book"), "rating": input.rating}
        values["body"] = input.body  # type: ignore[assignment]
        record = await _write(
            info, lambda s: writes.add_review(s, viewer, values), tags.review_written
        )
        return Review.from_record(record)

    @strawberry.mutation
    async def delete_review(self, info: Info, id: strawberry.ID) -> bool:
        viewer = _viewer(info)
        pk = _key(id, "review")
        await _write(info, lambda s: writes.delete_review(s, viewer, pk), tags.review_written)
        return True

    @strawberry.mutation
    async def invalidate_cache(self, info: Info, tags: list[str]) -> int:
        _admin(info)
        check_manual_tags(tags)
        return await info.context.invalidate_tags(tags, "admin")
