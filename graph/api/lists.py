"""The lists a connection can show, one small class each.

A list says everything the cache and the loaders need to know about it: its tags (the
narrowest whose membership it shows, so a write bumps only the lists it could change), its
scope, its identity in a key, and how to count it. Nothing else dispatches on which list
it is.

| list                                    | tags                                   |
|-----------------------------------------|----------------------------------------|
| `books` (no filter), its totalCount     | `Book`                                 |
| `books(genre: g)`                       | `Book:genre:g`                         |
| `books(authorId: a)`, `Author.books`, `bookCount` | `Author:a:books`             |
| `books(genre: g, authorId: a)`          | both of the above                      |
| `authors`, its totalCount               | `Author`                               |
| `Book.reviews`, `reviewCount`, `averageRating` | `Book:b:reviews`                |
| `User.reviews`, `me { reviews }`        | `User:u:reviews` (private)             |
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cache.keys import KeyPart
from cache.strawberry import Scope
from graph.api import keys


class ListCounts(Protocol):
    """The loaders that count each list (implemented by graph/api/loaders.py)."""

    def books(self, genre: str | None, author: int | None) -> Awaitable[int]: ...
    def authors(self) -> Awaitable[int]: ...
    def books_of_author(self, author: int) -> Awaitable[int]: ...
    def reviews_of_book(self, book: int) -> Awaitable[int]: ...
    def reviews_of_user(self, user: int) -> Awaitable[int]: ...


@dataclass(frozen=True, slots=True)
class Books:
    """`Query.books`, filtered by genre, author, both or neither."""

    genre: str | None = None
    author: int | None = None
    scope: ClassVar[Scope] = Scope.PUBLIC

    def tags(self) -> list[str]:
        if self.genre is None and self.author is None:
            return [keys.BOOKS]
        tags = []
        if self.genre is not None:
            tags.append(keys.books_of_genre(self.genre))
        if self.author is not None:
            tags.append(keys.books_of_author(self.author))
        return tags

    def key(self) -> KeyPart:
        return keys.list_part("books", self.genre, self.author)

    def count(self, counts: ListCounts) -> Awaitable[int]:
        return counts.books(self.genre, self.author)


@dataclass(frozen=True, slots=True)
class Authors:
    """`Query.authors`."""

    scope: ClassVar[Scope] = Scope.PUBLIC

    def tags(self) -> list[str]:
        return [keys.AUTHORS]

    def key(self) -> KeyPart:
        return keys.list_part("authors")

    def count(self, counts: ListCounts) -> Awaitable[int]:
        return counts.authors()


@dataclass(frozen=True, slots=True)
class BooksOfAuthor:
    """`Author.books`."""

    author: int
    scope: ClassVar[Scope] = Scope.PUBLIC

    def tags(self) -> list[str]:
        return [keys.books_of_author(self.author)]

    def key(self) -> KeyPart:
        return keys.list_part("author_books", self.author)

    def count(self, counts: ListCounts) -> Awaitable[int]:
        return counts.books_of_author(self.author)


@dataclass(frozen=True, slots=True)
class ReviewsOfBook:
    """`Book.reviews`."""

    book: int
    scope: ClassVar[Scope] = Scope.PUBLIC

    def tags(self) -> list[str]:
        return [keys.reviews_of_book(self.book)]

    def key(self) -> KeyPart:
        return keys.list_part("book_reviews", self.book)

    def count(self, counts: ListCounts) -> Awaitable[int]:
        return counts.reviews_of_book(self.book)


@dataclass(frozen=True, slots=True)
class ReviewsOfUser:
    """`User.reviews`: who reviewed what is shown to that user only."""

    user: int
    scope: ClassVar[Scope] = Scope.PRIVATE

    def tags(self) -> list[str]:
        return [keys.reviews_of_user(self.user)]

    def key(self) -> KeyPart:
        return keys.list_part("user_reviews", self.user)

    def count(self, counts: ListCounts) -> Awaitable[int]:
        return counts.reviews_of_user(self.user)


ListSource = Books | Authors | BooksOfAuthor | ReviewsOfBook | ReviewsOfUser


@dataclass(frozen=True, slots=True)
class CachedList:
    """A connection as cached: its node kind, the ids of one page, and which list it is."""

    node_kind: str
    ids: list[int]
    has_next: bool
    source: ListSource
