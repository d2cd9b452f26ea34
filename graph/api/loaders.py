"""Per-request DataLoaders: every relation and aggregate is read in batches, never N+1.

Entity loaders ask the cache tiers first (one L1 pass, one Redis round trip per batch) and
read only the misses from the database. Pages and aggregates are cached one level up, by
the fields that show them (see graph/types.py), so their loaders read the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property, partial
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Connection
from strawberry.dataloader import DataLoader

from cache.strawberry import RequestCache
from graph.api import keys, values
from graph.api.lists import ListCounts, ListSource
from graph.observability.operations import batch_loaded
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


class Entities(Generic[RecordT]):
    """An entity loader whose callers are counted as consuming what they get: the cached
    subtrees open around a resolver depend on the entities it loaded (see
    cache/strawberry/consumption.py), found or not."""

    def __init__(
        self, kind: str, loader: DataLoader[int, RecordT | None], cache: RequestCache
    ) -> None:
        self._kind = kind
        self._loader: DataLoader[int, RecordT | None] = loader
        self._cache = cache

    async def load(self, pk: int) -> RecordT | None:
        record: RecordT | None = await self._loader.load(pk)
        if self._cache.consuming:
            self._cache.consumed_entities([keys.entity(self._kind, pk)])
        return record

    async def load_many(self, pks: Sequence[int]) -> list[RecordT | None]:
        records: list[RecordT | None] = await self._loader.load_many(pks)
        if self._cache.consuming:
            self._cache.consumed_entities(keys.entity(self._kind, pk) for pk in pks)
        return records


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

    async def _read(self, query: Callable[[Connection], V]) -> V:
        result: V = await self._db.read(query)
        return result

    async def _uncached(self, record: type[RecordT], ids: Sequence[int]) -> list[RecordT | None]:
        """The cache off: the rows as read, no keys, no round trip through the codec."""
        found = await self._read(lambda conn: catalogue.by_ids(conn, record, ids))
        self._cache.served_uncached(all_found=all(pk in found for pk in ids))
        return [found.get(pk) for pk in ids]

    def _entities(self, record: type[RecordT], kind: str) -> Entities[RecordT]:
        async def load(ids: Sequence[int]) -> list[RecordT | None]:
            batch_loaded(kind, len(ids))
            if not self._cache.storing:
                return await self._uncached(record, ids)
            # An entity's key is also its tag: `Book:42` depends on `Book:42` alone.
            id_of = {keys.entity(kind, row_id): row_id for row_id in ids}

            async def from_database(missing: list[str]) -> dict[str, Any]:
                wanted = [id_of[key] for key in missing]
                found = await self._read(lambda conn: catalogue.by_ids(conn, record, wanted))
                return {keys.entity(kind, pk): values.encode(row) for pk, row in found.items()}

            cached = await self._cache.get_many_or_load(
                list(id_of), from_database, tags=lambda key: (key,)
            )
            return [
                None if cached[key] is None else values.decode(record, cached[key]) for key in id_of
            ]

        return Entities(kind, DataLoader(load), self._cache)

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
    def author(self) -> Entities[AuthorRecord]:
        return self._entities(AuthorRecord, "Author")

    @cached_property
    def book(self) -> Entities[BookRecord]:
        return self._entities(BookRecord, "Book")

    @cached_property
    def review(self) -> Entities[ReviewRecord]:
        return self._entities(ReviewRecord, "Review")

    @cached_property
    def user(self) -> Entities[UserRecord]:
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

    @cached_property
    def counts(self) -> ListCounts:
        return _Counts(self)

    def count(self, source: ListSource) -> Awaitable[int]:
        """The size of the list a connection shows."""
        return source.count(self.counts)


class _Counts:
    """How each list is counted: batched where a page of parents asks at once."""

    def __init__(self, loaders: Loaders) -> None:
        self._loaders = loaders

    def books(self, genre: str | None, author: int | None) -> Awaitable[int]:
        where = BookFilter(genre=genre, author_id=author).conditions()
        return self._loaders._read(lambda conn: catalogue.count(conn, BookRecord, where))

    def authors(self) -> Awaitable[int]:
        return self._loaders._read(lambda conn: catalogue.count(conn, AuthorRecord))

    def books_of_author(self, author: int) -> Awaitable[int]:
        return self._loaders.book_count_of_author.load(author)

    async def reviews_of_book(self, book: int) -> int:
        return (await self._loaders.review_stats.load(book)).count

    def reviews_of_user(self, user: int) -> Awaitable[int]:
        return self._loaders.review_count_of_user.load(user)
