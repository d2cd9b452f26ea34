"""The database schema. It changes only through Alembic migrations (alembic/versions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Index, Integer, Table, Text
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


def _fk(target: str, *, index: bool = True) -> Column[int]:
    # ON DELETE CASCADE keeps the database consistent even for writes made outside the API.
    return Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=False, index=index)


def _created_at() -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False)


# SQLite: AUTOINCREMENT, so a deleted row's id is never handed out again (SPEC 2); a
# PostgreSQL sequence never reuses a value anyway. Migration 0002 applies it.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utc_now, sa_column=_created_at())


class ApiToken(SQLModel, table=True):
    """A bearer token, kept only as its SHA-256 digest."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_fk("users.id"))
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_created_at())


class Author(SQLModel, table=True):
    __tablename__ = "authors"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    bio: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Book(SQLModel, table=True):
    __tablename__ = "books"
    # Keyset pages of an author's books and of a genre walk these in id order.
    __table_args__ = (
        Index("ix_books_author_id_id", "author_id", "id"),
        Index("ix_books_genre_id", "genre", "id"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    isbn: str = Field(max_length=20, unique=True)
    genre: str = Field(max_length=50)
    published_year: int
    price: float
    author_id: int = Field(sa_column=_fk("authors.id", index=False))


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_book_id_id", "book_id", "id"),
        Index("ix_reviews_reviewer_id_id", "reviewer_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    rating: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utc_now, sa_column=_created_at())
    book_id: int = Field(sa_column=_fk("books.id", index=False))
    reviewer_id: int = Field(sa_column=_fk("users.id", index=False))


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for typed Core queries (SQLModel hides it from mypy)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


USERS = table_of(User)
API_TOKENS = table_of(ApiToken)
AUTHORS = table_of(Author)
BOOKS = table_of(Book)
REVIEWS = table_of(Review)


class OutboxEntry(SQLModel, table=True):
    """One recorded invalidation (SPEC 7a): written in the transaction of the change it
    belongs to, applied to the cache after the commit, deleted a while after that."""

    __tablename__ = "cache_outbox"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    tags: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: float = Field(sa_column=Column(Float, nullable=False))
    """Unix time, by the writer's clock."""
    applied_at: float | None = Field(default=None, sa_column=Column(Float, index=True))
    """Unix time its bump was applied; NULL while it is not."""


OUTBOX = table_of(OutboxEntry)
