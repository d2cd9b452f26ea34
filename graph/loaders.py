"""Per-request DataLoaders: every relation and aggregate is read in batches, never N+1.

Entity loaders ask the cache tiers first (one L1 pass, one Redis round trip per batch) and
read only the misses from the database. Pages and aggregates are cached one level up, by
the fields that show them (see graph/types.py), so their loaders read the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property, partial
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from cache.strawberry import RequestCache
from graph import records
from graph.observability import batch_loaded
from graph.tags import ListSource
from models import (
    AuthorRecord,
    BookRecord,
    Database,
    ReviewRecord,
    ReviewStats,
    UserRecord,
    catalogue,
)
from models.catalogue import BookFilter, Page

K = TypeVar("K")
V = TypeVar("V")
RecordT = TypeVar("RecordT", AuthorRecord, BookRecord, ReviewRecord, UserRecord)


class PageKey(NamedTuple):
    parent_id: int
    first: int
    after_id: int | None


def _unmemoized(load: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    """A loader that batches but does not remember within the request.

    These loaders feed cached fields. A cached value must be read from the database after
    the versions of its tags were read (the stale-set guard); a value remembered from an
    earlier read in the same request could predate a write whose invalidation those
    versions already include, and would be stored as current. Batching within one tick
    keeps that order: every load in a batch read its versions before the batch ran.
    """
    return DataLoader(load, cache=False)


class Loaders:
    """Created for each request, so batches and their memo never cross requests."""

    def __init__(self, db: Database, request_cache: RequestCache) -> None:
        self._db = db
        self._cache = request_cache

    async def _read(self, query: Callable[[AsyncConnection], Awaitable[V]]) -> V:
        result: V = await self._db.read(query)
        return result

    def _entities(self, record: type[RecordT], kind: str) -> DataLoader[int, RecordT | None]:
        async def from_database(keys: list[str]) -> dict[str, Any]:
            ids = [int(key.rpartition(":")[2]) for key in keys]
            found = await self._read(lambda conn: catalogue.by_ids(conn, record, ids))
            return {f"{kind}:{row_id}": records.to_value(row) for row_id, row in found.items()}

        async def load(ids: Sequence[int]) -> list[RecordT | None]:
            batch_loaded(kind, len(ids))
            # An entity's key is also its tag: `Book:42` depends on `Book:42` alone.
            keys = [f"{kind}:{row_id}" for row_id in ids]
            values = await self._cache.get_many_or_load(
                keys, from_database, tags=lambda key: (key,)
            )
            return [
                None if values[key] is None else records.from_value(record, values[key])
                for key in keys
            ]

        return DataLoader(load)

    def _pages(self, record: type[Any], parent_column: str) -> DataLoader[PageKey, Page]:
        async def load(keys: Sequence[PageKey]) -> list[Page]:
            batch_loaded(f"{record.__name__}.{parent_column}:page", len(keys))
            # One statement per distinct (first, after) pair; a page of parents shares one.
            groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
            for key in keys:
                groups[(key.first, key.after_id)].append(key.parent_id)
            pages: dict[PageKey, Page] = {}
            for (first, after_id), parents in groups.items():
                found = await self._read(
                    partial(
                        catalogue.pages_by_parent,
                        record=record,
                        parent_column=parent_column,
                        parent_ids=parents,
                        first=first,
                        after_id=after_id,
                    )
                )
                for parent_id, page in found.items():
                    pages[PageKey(parent_id, first, after_id)] = page
            return [pages[key] for key in keys]

        return _unmemoized(load)

    def _counts(self, record: type[Any], parent_column: str) -> DataLoader[int, int]:
        async def load(parent_ids: Sequence[int]) -> list[int]:
            batch_loaded(f"{record.__name__}.{parent_column}:count", len(parent_ids))
            found = await self._read(
                lambda conn: catalogue.counts_by_parent(conn, record, parent_column, parent_ids)
            )
            return [found[parent_id] for parent_id in parent_ids]

        return _unmemoized(load)

    @cached_property
    def author(self) -> DataLoader[int, AuthorRecord | None]:
        return self._entities(AuthorRecord, "Author")

    @cached_property
    def book(self) -> DataLoader[int, BookRecord | None]:
        return self._entities(BookRecord, "Book")

    @cached_property
    def review(self) -> DataLoader[int, ReviewRecord | None]:
        return self._entities(ReviewRecord, "Review")

    @cached_property
    def user(self) -> DataLoader[int, UserRecord | None]:
        return self._entities(UserRecord, "User")

    @cached_property
    def review_stats(self) -> DataLoader[int, ReviewStats]:
        async def load(book_ids: Sequence[int]) -> list[ReviewStats]:
            batch_loaded("ReviewStats", len(book_ids))
            found = await self._read(lambda conn: catalogue.review_stats(conn, book_ids))
            return [found[book_id] for book_id in book_ids]

        return _unmemoized(load)

    @cached_property
    def books_of_author(self) -> DataLoader[PageKey, Page]:
        return self._pages(BookRecord, "author_id")

    @cached_property
    def reviews_of_book(self) -> DataLoader[PageKey, Page]:
        return self._pages(ReviewRecord, "book_id")

    @cached_property
    def reviews_of_user(self) -> DataLoader[PageKey, Page]:
        return self._pages(ReviewRecord, "reviewer_id")

    @cached_property
    def book_count_of_author(self) -> DataLoader[int, int]:
        return self._counts(BookRecord, "author_id")

    @cached_property
    def review_count_of_user(self) -> DataLoader[int, int]:
        return self._counts(ReviewRecord, "reviewer_id")

    async def count(self, source: ListSource) -> int:
        """The size of the list a connection shows."""
        if source.parent is not None and source.kind == "author_books":
            return await self.book_count_of_author.load(source.parent)
        if source.parent is not None and source.kind == "book_reviews":
            return (await self.review_stats.load(source.parent)).count
        if source.parent is not None and source.kind == "user_reviews":
            return await self.review_count_of_user.load(source.parent)
        if source.kind == "authors":
            return await self._read(lambda conn: catalogue.count(conn, AuthorRecord))
        where = BookFilter(genre=source.genre, author_id=source.parent).conditions()
        return await self._read(lambda conn: catalogue.count(conn, BookRecord, where))
