"""How every cache key and tag of the API is spelled: here, and through one encoder.

Every key and tag is built by `cache.compose_key`, which escapes its parts, so no two
different inputs share one (SPEC 6.2a). Ids appear as the API shows them, so an operator
can copy one from a response into a tag (`Book:42`). What each write bumps is decided in
graph/api/tags.py; which tags each list carries in graph/api/lists.py; field keys
(`<Type>.<field>:<parent>:<arguments>[:<viewer>]`) are composed by the cache's field
extension from the parent ids given here.
"""

from __future__ import annotations

from typing import Any

from cache.keys import KeyPart, compose_key
from graph.api.ids import api_id

AUTHORS = "Author"
BOOKS = "Book"
REVIEWS = "Review"
USERS = "User"


def entity(kind: str, pk: int) -> str:
    """`Book:42`: an entity's key, and also its tag (it depends on itself alone)."""
    return compose_key(kind, api_id(pk))


def books_of_author(author: int) -> str:
    return compose_key(AUTHORS, api_id(author), "books")


def books_of_genre(genre: str) -> str:
    return compose_key(BOOKS, "genre", genre)


def reviews_of_book(book: int) -> str:
    return compose_key(BOOKS, api_id(book), "reviews")


def reviews_of_user(user: int) -> str:
    return compose_key(USERS, api_id(user), "reviews")


def parent_id(source: Any) -> KeyPart:
    """A cached field's parent in its key: the entity's id, none for a root field."""
    return None if source is None else api_id(source.pk)


def list_part(name: str, *parts: str | int | None) -> KeyPart:
    """Which list a value counts or shows, as one key part: `(books,@none,7)`."""
    return (name, *(api_id(part) if isinstance(part, int) else part for part in parts))
