"""Writes of the catalogue. Each checks its input, runs in the caller's transaction and
returns the rows before and after, so the caller can tell exactly what changed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.errors import Forbidden, InvalidInput, NotFound
from models.records import AuthorRecord, BookRecord, ReviewRecord, UserRecord
from models.tables import BOOKS, REVIEWS, Author, Book, Review

RecordT = TypeVar("RecordT", AuthorRecord, BookRecord, ReviewRecord)
RowT = TypeVar("RowT", Author, Book, Review)
T = TypeVar("T")

MAX_YEAR = 2100
GENRE_LIMIT = 50  # also bounds `books(genre:)`: a longer filter can match no stored book


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    before: T
    after: T


def _record(record: type[RecordT], row: Any) -> RecordT:
    return record(*(getattr(row, f.name) for f in fields(record)))


def _text(name: str, value: Any, *, limit: int, required: bool = True) -> str:
    text = str(value).strip()
    if required and not text:
        raise InvalidInput(f"{name} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{name} must be at most {limit} characters")
    if "\x00" in text:
        # PostgreSQL cannot store NUL in text; refuse it on every database alike.
        raise InvalidInput(f"{name} must not contain NUL characters")
    return text


def _clean_author(values: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = _text("name", values["name"], limit=200)
    if "bio" in values:
        bio = values["bio"]
        clean["bio"] = None if bio is None else _text("bio", bio, limit=5000, required=False)
    return clean


def _clean_book(values: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "title" in values:
        clean["title"] = _text("title", values["title"], limit=300)
    if "isbn" in values:
        clean["isbn"] = _text("isbn", values["isbn"], limit=20)
    if "genre" in values:
        clean["genre"] = _text("genre", values["genre"], limit=GENRE_LIMIT)
    if "published_year" in values:
        year = values["published_year"]
        if not 1 <= year <= MAX_YEAR:
            raise InvalidInput(f"publishedYear must be between 1 and {MAX_YEAR}")
        clean["published_year"] = year
    if "price" in values:
        price = float(values["price"])
        if not math.isfinite(price) or price < 0:
            raise InvalidInput("price must be a finite number of at least 0")
        clean["price"] = price
    if "author_id" in values:
        clean["author_id"] = values["author_id"]
    return clean


async def _get(session: AsyncSession, table: type[RowT], row_id: int, what: str) -> RowT:
    row = await session.get(table, row_id)
    if row is None:
        raise NotFound(f"no {what} with id {row_id}")
    return row


async def _require_author(session: AsyncSession, author_id: int) -> None:
    await _get(session, Author, author_id, "author")


async def _require_unique_isbn(session: AsyncSession, isbn: str, book_id: int | None) -> None:
    stmt = select(BOOKS.c.id).where(BOOKS.c.isbn == isbn)
    existing = await session.scalar(stmt)
    if existing is not None and existing != book_id:
        raise InvalidInput(f"a book with isbn {isbn} already exists")


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two writers raced past the checks above: the database's constraint decides.
        raise InvalidInput("the change conflicts with existing data") from exc


async def create_author(session: AsyncSession, values: Mapping[str, Any]) -> AuthorRecord:
    clean = _clean_author(values)
    if "name" not in clean:
        raise InvalidInput("name is required")
    author = Author(**clean)
    session.add(author)
    await _flush(session)
    return _record(AuthorRecord, author)


async def update_author(
    session: AsyncSession, author_id: int, values: Mapping[str, Any]
) -> Change[AuthorRecord]:
    author = await _get(session, Author, author_id, "author")
    before = _record(AuthorRecord, author)
    for name, value in _clean_author(values).items():
        setattr(author, name, value)
    await _flush(session)
    return Change(before, _record(AuthorRecord, author))


async def delete_author(session: AsyncSession, author_id: int) -> AuthorRecord:
    author = await _get(session, Author, author_id, "author")
    books = await session.scalar(select(func.count()).where(BOOKS.c.author_id == author_id))
    if books:
        raise InvalidInput(f"author {author_id} still has {books} books; delete them first")
    record = _record(AuthorRecord, author)
    await session.delete(author)
    await _flush(session)
    return record


async def create_book(session: AsyncSession, values: Mapping[str, Any]) -> BookRecord:
    clean = _clean_book(values)
    await _require_author(session, clean["author_id"])
    await _require_unique_isbn(session, clean["isbn"], None)
    book = Book(**clean)
    session.add(book)
    await _flush(session)
    return _record(BookRecord, book)


async def update_book(
    session: AsyncSession, book_id: int, values: Mapping[str, Any]
) -> Change[BookRecord]:
    book = await _get(session, Book, book_id, "book")
    before = _record(BookRecord, book)
    clean = _clean_book(values)
    if "author_id" in clean:
        await _require_author(session, clean["author_id"])
    if "isbn" in clean:
        await _require_unique_isbn(session, clean["isbn"], book_id)
    for name, value in clean.items():
        setattr(book, name, value)
    await _flush(session)
    return Change(before, _record(BookRecord, book))


async def delete_book(session: AsyncSession, book_id: int) -> tuple[BookRecord, list[ReviewRecord]]:
    """Delete a book and its reviews; returns both so every affected reviewer is known."""
    book = await _get(session, Book, book_id, "book")
    record = _record(BookRecord, book)
    columns = [REVIEWS.c[f.name] for f in fields(ReviewRecord)]
    rows = await session.execute(select(*columns).where(REVIEWS.c.book_id == book_id))
    removed = [ReviewRecord(*row) for row in rows]
    await session.execute(delete(REVIEWS).where(REVIEWS.c.book_id == book_id))
    await session.delete(book)
    await _flush(session)
    return record, removed


async def add_review(
    session: AsyncSession, reviewer: UserRecord, values: Mapping[str, Any]
) -> ReviewRecord:
    rating = values["rating"]
    if not 1 <= rating <= 5:
        raise InvalidInput("rating must be between 1 and 5")
    body = _text("body", values["body"], limit=5000)
    await _get(session, Book, values["book_id"], "book")
    review = Review(rating=rating, body=body, book_id=values["book_id"], reviewer_id=reviewer.id)
    session.add(review)
    await _flush(session)
    return _record(ReviewRecord, review)


async def delete_review(session: AsyncSession, viewer: UserRecord, review_id: int) -> ReviewRecord:
    review = await _get(session, Review, review_id, "review")
    if review.reviewer_id != viewer.id and not viewer.is_admin:
        raise Forbidden("you can only delete your own reviews")
    record = _record(ReviewRecord, review)
    await session.delete(review)
    await _flush(session)
    return record
