"""Plain, immutable rows as the rest of the service sees them: cheap to build and to cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class AuthorRecord:
    id: int
    name: str
    bio: str | None


@dataclass(frozen=True, slots=True)
class BookRecord:
    id: int
    title: str
    isbn: str
    genre: str
    published_year: int
    price: float
    author_id: int


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    id: int
    rating: int
    body: str
    created_at: datetime
    book_id: int
    reviewer_id: int

    def __post_init__(self) -> None:
        # SQLite hands back naive datetimes even for timezone-aware columns; they are UTC.
        if self.created_at.tzinfo is None:
            object.__setattr__(self, "created_at", self.created_at.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class ReviewStats:
    count: int
    average: float | None


NO_REVIEWS = ReviewStats(count=0, average=None)
