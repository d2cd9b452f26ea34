"""The cache tag scheme: what each value depends on, and what each write changes.

Entities carry `<Type>:<id>`. A list, count or aggregate carries the narrowest tags whose
membership it shows, so a write bumps only the lists it could change:

| value                                   | tags                                   |
|-----------------------------------------|----------------------------------------|
| `books` (no filter), its totalCount     | `Book`                                 |
| `books(genre: g)`                       | `Book:genre:g`                         |
| `books(authorId: a)`, `Author.books`, `bookCount` | `Author:a:books`             |
| `books(genre: g, authorId: a)`          | both of the above                      |
| `authors`, its totalCount               | `Author`                               |
| `Book.reviews`, `reviewCount`, `averageRating` | `Book:b:reviews`                |
| `User.reviews`, `me { reviews }`        | `User:u:reviews`                       |
"""

from __future__ import annotations

from dataclasses import dataclass

from models import AuthorRecord, BookRecord, ReviewRecord

AUTHORS = "Author"
BOOKS = "Book"
REVIEWS = "Review"
USERS = "User"


def entity(kind: str, row_id: int) -> str:
    return f"{kind}:{row_id}"


def books_of_author(author_id: int) -> str:
    return f"Author:{author_id}:books"


def books_of_genre(genre: str) -> str:
    return f"Book:genre:{genre}"


def reviews_of_book(book_id: int) -> str:
    return f"Book:{book_id}:reviews"


def reviews_of_user(user_id: int) -> str:
    return f"User:{user_id}:reviews"


@dataclass(frozen=True, slots=True)
class ListSource:
    """Which list a connection shows: enough to count it and to know its tags."""

    kind: str  # books | authors | author_books | book_reviews | user_reviews
    parent: int | None = None
    genre: str | None = None

    def key(self) -> str:
        return f"{self.kind}|{self.parent}|{self.genre}"

    def tags(self) -> list[str]:
        if self.kind == "books":
            return book_list_tags(self.genre, self.parent)
        if self.kind == "authors":
            return [AUTHORS]
        assert self.parent is not None
        if self.kind == "author_books":
            return [books_of_author(self.parent)]
        if self.kind == "book_reviews":
            return [reviews_of_book(self.parent)]
        return [reviews_of_user(self.parent)]

    def to_value(self) -> list[object]:
        return [self.kind, self.parent, self.genre]

    @classmethod
    def from_value(cls, value: list[object]) -> ListSource:
        kind, parent, genre = value
        return cls(
            kind=str(kind),
            parent=parent if isinstance(parent, int) else None,
            genre=None if genre is None else str(genre),
        )


def book_list_tags(genre: str | None, author_id: int | None) -> list[str]:
    if genre is None and author_id is None:
        return [BOOKS]
    tags = []
    if genre is not None:
        tags.append(books_of_genre(genre))
    if author_id is not None:
        tags.append(books_of_author(author_id))
    return tags


def author_written(before: AuthorRecord | None, after: AuthorRecord | None) -> set[str]:
    record = after or before
    assert record is not None
    tags = {entity(AUTHORS, record.id)}
    if before is None or after is None:
        tags |= {AUTHORS, books_of_author(record.id)}
    return tags


def _book_lists(record: BookRecord) -> set[str]:
    return {books_of_genre(record.genre), books_of_author(record.author_id)}


def book_written(before: BookRecord | None, after: BookRecord | None) -> set[str]:
    """A created or deleted book changes every list it is in; an update only the lists it
    left or joined (a new genre or author), plus itself."""
    record = after or before
    assert record is not None
    tags = {entity(BOOKS, record.id)}
    if before is None or after is None:
        return tags | {BOOKS} | _book_lists(record)
    if before.genre != after.genre:
        tags |= {books_of_genre(before.genre), books_of_genre(after.genre)}
    if before.author_id != after.author_id:
        tags |= {books_of_author(before.author_id), books_of_author(after.author_id)}
    return tags


def review_written(review: ReviewRecord) -> set[str]:
    """A review added or deleted: itself, its book's reviews and aggregates, its reviewer's."""
    return {
        REVIEWS,
        entity(REVIEWS, review.id),
        reviews_of_book(review.book_id),
        reviews_of_user(review.reviewer_id),
    }


def book_deleted(book: BookRecord, reviews: list[ReviewRecord]) -> set[str]:
    tags = book_written(book, None) | {reviews_of_book(book.id)}
    for review in reviews:
        tags |= review_written(review)
    return tags
