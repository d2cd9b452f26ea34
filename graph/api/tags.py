"""What each write changes: the tags a mutation bumps after its transaction commits.

A created or deleted row changes every list it is in; an update only the lists it left or
joined. Tags are spelled in graph/api/keys.py; each list's own tags are in
graph/api/lists.py.
"""

from __future__ import annotations

from graph.api.keys import (
    AUTHORS,
    BOOKS,
    REVIEWS,
    USERS,
    books_of_author,
    books_of_genre,
    entity,
    reviews_of_book,
    reviews_of_user,
)
from models import AuthorRecord, BookRecord, ReviewRecord


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


def user_deleted(user_id: int, reviews: list[ReviewRecord]) -> set[str]:
    """A user deleted with its reviews: itself, `me` and what each review was in."""
    tags = {USERS, entity(USERS, user_id), reviews_of_user(user_id)}
    for review in reviews:
        tags |= review_written(review)
    return tags
