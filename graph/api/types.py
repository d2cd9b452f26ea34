"""The object types of SPEC section 2 and their relations.

Every computed field declares how it is cached (`CachedField`: TTL, scope, tags). A
connection is cached as plain data (its ids, whether there is a next page, and which list
it is); its nodes come from the entity loaders, themselves backed by the cache tiers.

Fields shown on every node of a page (an author, counts, averages) are fetched for the
whole page in one batch when the page's edges resolve, so each node answers them
synchronously: an async field costs far more in graphql-core than a plain value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import strawberry
from strawberry import Private

from cache.strawberry import CachedField, Scope
from graph.api import keys, values
from graph.api.context import Info
from graph.api.ids import api_id, check_first, decode_cursor, encode_cursor, parse_id
from graph.api.lists import BooksOfAuthor, CachedList, ListSource, ReviewsOfBook, ReviewsOfUser
from graph.api.loaders import Loaders, PageKey
from graph.api.selection import child_fields
from models import AuthorRecord, BookRecord, ReviewRecord, UserRecord
from models.catalogue import Page

NodeT = TypeVar("NodeT")
ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])

LIST_TTL = 120.0
AGGREGATE_TTL = 120.0
PRIVATE_TTL = 60.0


def field_of(
    graphql_type: Any, *, cached: CachedField | None = None
) -> Callable[[ResolverT], ResolverT]:
    """A field whose resolver may answer a value or an awaitable (typed for mypy)."""
    decorator: Callable[[ResolverT], ResolverT] = strawberry.field(
        graphql_type=graphql_type, extensions=[] if cached is None else [cached]
    )
    return decorator


def cached_connection(
    ttl: float, scope: Scope, source_of: Callable[[Any, Mapping[str, Any]], ListSource]
) -> Callable[[ResolverT], ResolverT]:
    """A connection field cached as plain data (see `Connection.to_value`), tagged with
    the tags of the list it shows (`source_of(parent, arguments)`); `scope` is that list's."""
    decorator: Callable[[ResolverT], ResolverT] = strawberry.field(
        extensions=[
            CachedField(
                ttl=ttl,
                scope=scope,
                tags=lambda parent, arguments: source_of(parent, arguments).tags(),
                parent_id=keys.parent_id,
                encode=Connection.to_value,
                decode=Connection.from_value,
            )
        ]
    )
    return decorator


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


TOTAL_COUNT = CachedField(
    ttl=AGGREGATE_TTL,
    scope=lambda connection: connection.source.scope,
    tags=lambda connection, _args: connection.source.tags(),
    parent_id=lambda connection: connection.source.key(),
)


@strawberry.type
class Connection(Generic[NodeT]):
    node_kind: Private[str]
    ids: Private[list[int]]
    has_next: Private[bool]
    source: Private[ListSource]

    @classmethod
    def of(cls, node_kind: str, page: Page, source: ListSource) -> Connection[Any]:
        ids = list(page.ids)
        return cls(node_kind=node_kind, ids=ids, has_next=page.has_next, source=source)

    def to_value(self) -> Any:
        return values.encode(CachedList(self.node_kind, self.ids, self.has_next, self.source))

    @classmethod
    def from_value(cls, value: Any) -> Connection[Any]:
        shown = values.decode(CachedList, value)
        return cls(
            node_kind=shown.node_kind, ids=shown.ids, has_next=shown.has_next, source=shown.source
        )

    @strawberry.field
    def page_info(self) -> PageInfo:
        end = encode_cursor(self.node_kind, self.ids[-1]) if self.ids else None
        return PageInfo(has_next_page=self.has_next, end_cursor=end)

    @strawberry.field
    async def edges(self, info: Info) -> list[Edge[NodeT]]:
        nodes = await NODE_TYPES[self.node_kind].nodes(info, self.ids)
        kind = self.node_kind
        return [Edge(cursor=encode_cursor(kind, node.pk), node=node) for node in nodes]

    @field_of(int, cached=TOTAL_COUNT)
    def total_count(self, info: Info) -> Awaitable[int]:
        return info.context.loaders.count(self.source)


def page_key(kind: str, parent_id: int, first: int | None, after: str | None) -> PageKey:
    return PageKey(parent_id, check_first(first), decode_cursor(kind, after))


def _existing(found: Sequence[Any]) -> list[Any]:
    # A row deleted after its list was read is left out rather than shown as null.
    return [record for record in found if record is not None]


BOOK_COUNT = CachedField(
    ttl=AGGREGATE_TTL,
    tags=lambda author, _args: BooksOfAuthor(author.pk).tags(),
    parent_id=keys.parent_id,
)


@strawberry.type
class Author:
    KIND: ClassVar[str] = keys.AUTHORS

    id: strawberry.ID
    name: str
    bio: str | None
    pk: Private[int]

    @classmethod
    def from_record(cls, record: AuthorRecord) -> Author:
        return cls(
            id=strawberry.ID(api_id(record.id)), name=record.name, bio=record.bio, pk=record.id
        )

    @classmethod
    async def nodes(cls, info: Info, ids: Sequence[int]) -> list[Author]:
        found = await info.context.loaders.author.load_many(ids)
        authors = [cls.from_record(r) for r in _existing(found)]
        if "bookCount" in child_fields(info, "node"):
            counts = info.context.loaders.book_count_of_author
            await info.context.request_cache.prefetch(
                BOOK_COUNT, authors, lambda missing: counts.load_many([a.pk for a in missing])
            )
        return authors

    @field_of(int, cached=BOOK_COUNT)
    def book_count(self, info: Info) -> Awaitable[int]:
        return info.context.loaders.book_count_of_author.load(self.pk)

    @cached_connection(
        LIST_TTL, BooksOfAuthor.scope, lambda author, _args: BooksOfAuthor(author.pk)
    )
    async def books(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Book]:
        loaders = info.context.loaders
        page = await loaders.books_of_author.load(page_key(keys.BOOKS, self.pk, first, after))
        return Connection.of(keys.BOOKS, page, BooksOfAuthor(self.pk))


REVIEW_COUNT = CachedField(
    ttl=AGGREGATE_TTL,
    tags=lambda book, _args: ReviewsOfBook(book.pk).tags(),
    parent_id=keys.parent_id,
)
AVERAGE_RATING = CachedField(
    ttl=AGGREGATE_TTL,
    tags=lambda book, _args: ReviewsOfBook(book.pk).tags(),
    parent_id=keys.parent_id,
)


@strawberry.type
class Book:
    KIND: ClassVar[str] = keys.BOOKS

    id: strawberry.ID
    title: str
    isbn: str
    genre: str
    published_year: int
    price: float
    pk: Private[int]
    author_id: Private[int]
    known_author: Private[AuthorRecord | None] = None

    @classmethod
    def from_record(cls, record: BookRecord) -> Book:
        return cls(
            id=strawberry.ID(api_id(record.id)),
            title=record.title,
            isbn=record.isbn,
            genre=record.genre,
            published_year=record.published_year,
            price=record.price,
            pk=record.id,
            author_id=record.author_id,
        )

    @classmethod
    async def nodes(cls, info: Info, ids: Sequence[int]) -> list[Book]:
        """The books, with the relations the client selected fetched for all at once."""
        found = await info.context.loaders.book.load_many(ids)
        books = [cls.from_record(r) for r in _existing(found)]
        wanted = child_fields(info, "node")
        jobs: list[Coroutine[Any, Any, None]] = []
        if "author" in wanted:
            jobs.append(_attach_authors(info.context.loaders, books))
        stats = info.context.loaders.review_stats
        request = info.context.request_cache
        if "reviewCount" in wanted:
            jobs.append(
                request.prefetch(
                    REVIEW_COUNT,
                    books,
                    lambda missing: _stats(stats.load_many([b.pk for b in missing]), "count"),
                )
            )
        if "averageRating" in wanted:
            jobs.append(
                request.prefetch(
                    AVERAGE_RATING,
                    books,
                    lambda missing: _stats(stats.load_many([b.pk for b in missing]), "average"),
                )
            )
        await asyncio.gather(*jobs)
        return books

    @field_of(Author)
    def author(self, info: Info) -> Author | Awaitable[Author]:
        # Answered synchronously when the page fetched authors up front (see `nodes`).
        if self.known_author is not None:
            return Author.from_record(self.known_author)
        return self._load_author(info.context.loaders)

    async def _load_author(self, loaders: Loaders) -> Author:
        record = await loaders.author.load(self.author_id)
        if record is None:
            raise LookupError(f"author {self.author_id} of book {self.pk} is missing")
        return Author.from_record(record)

    @field_of(int, cached=REVIEW_COUNT)
    def review_count(self, info: Info) -> Awaitable[int]:
        return _stat(info.context.loaders, self.pk, "count")

    @field_of(float | None, cached=AVERAGE_RATING)
    def average_rating(self, info: Info) -> Awaitable[float | None]:
        return _stat(info.context.loaders, self.pk, "average")

    @cached_connection(LIST_TTL, ReviewsOfBook.scope, lambda book, _args: ReviewsOfBook(book.pk))
    async def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Review]:
        loaders = info.context.loaders
        page = await loaders.reviews_of_book.load(page_key(keys.REVIEWS, self.pk, first, after))
        return Connection.of(keys.REVIEWS, page, ReviewsOfBook(self.pk))


async def _attach_authors(loaders: Loaders, books: list[Book]) -> None:
    records = await loaders.author.load_many([book.author_id for book in books])
    for book, record in zip(books, records, strict=True):
        book.known_author = record


async def _stats(pending: Awaitable[Sequence[Any]], name: str) -> list[Any]:
    return [getattr(stats, name) for stats in await pending]


async def _stat(loaders: Loaders, book_id: int, name: str) -> Any:
    return getattr(await loaders.review_stats.load(book_id), name)


@strawberry.type
class Review:
    KIND: ClassVar[str] = keys.REVIEWS

    id: strawberry.ID
    rating: int
    body: str
    created_at: datetime
    pk: Private[int]
    book_id: Private[int]
    reviewer_id: Private[int]

    @classmethod
    def from_record(cls, record: ReviewRecord) -> Review:
        return cls(
            id=strawberry.ID(api_id(record.id)),
            rating=record.rating,
            body=record.body,
            created_at=record.created_at,
            pk=record.id,
            book_id=record.book_id,
            reviewer_id=record.reviewer_id,
        )

    @classmethod
    async def nodes(cls, info: Info, ids: Sequence[int]) -> list[Review]:
        found = await info.context.loaders.review.load_many(ids)
        return [cls.from_record(r) for r in _existing(found)]

    @strawberry.field
    async def book(self, info: Info) -> Book:
        record = await info.context.loaders.book.load(self.book_id)
        if record is None:
            raise LookupError(f"book {self.book_id} of review {self.pk} is missing")
        return Book.from_record(record)

    @strawberry.field
    async def reviewer(self, info: Info) -> User:
        record = await info.context.loaders.user.load(self.reviewer_id)
        if record is None:
            raise LookupError(f"reviewer {self.reviewer_id} of review {self.pk} is missing")
        return User.from_record(record)


@strawberry.type
class User:
    KIND: ClassVar[str] = keys.USERS

    id: strawberry.ID
    name: str
    pk: Private[int]

    @classmethod
    def from_record(cls, record: UserRecord) -> User:
        return cls(id=strawberry.ID(api_id(record.id)), name=record.name, pk=record.id)

    @cached_connection(PRIVATE_TTL, ReviewsOfUser.scope, lambda user, _args: ReviewsOfUser(user.pk))
    async def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Review]:
        loaders = info.context.loaders
        page = await loaders.reviews_of_user.load(page_key(keys.REVIEWS, self.pk, first, after))
        return Connection.of(keys.REVIEWS, page, ReviewsOfUser(self.pk))


NODE_TYPES: dict[str, Any] = {keys.AUTHORS: Author, keys.BOOKS: Book, keys.REVIEWS: Review}
ENTITIES = (Author, Book, Review, User)
LOOKUPS = {"author": keys.AUTHORS, "book": keys.BOOKS, "review": keys.REVIEWS}


def entity_of(parent_type: str, field: str, value: Any) -> str | None:
    """The entity key an object's completed subtree is cached under (see
    cache/strawberry/subtrees.py): every object of these types is built from its
    entity's cached record by a loader, except the viewer `me` returns, built from the
    signed-in user (and cached as `me`'s own value)."""
    if type(value) not in ENTITIES or (parent_type == "Query" and field == "me"):
        return None
    return keys.entity(value.KIND, value.pk)


def entity_at(parent_type: str, field: str, arguments: Mapping[str, Any]) -> str | None:
    """The entity a root lookup by id returns when it exists (`book(id:)`, ...)."""
    kind = LOOKUPS.get(field) if parent_type == "Query" else None
    given = arguments.get("id")
    pk = parse_id(given) if kind is not None and isinstance(given, str) else None
    return None if kind is None or pk is None else keys.entity(kind, pk)
