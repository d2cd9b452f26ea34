"""Reads of the catalogue, always by batch of ids or by keyset page, never one row per call.

Every function takes an open connection so a caller can run several reads on one checkout
(`Database.read` runs them). Pages are keyset pages in ascending id order and fetch one
extra row to tell whether there is a next page. Reads by a batch of ids use statements
built once, the ids bound as one expanding parameter: building `IN (...)` with each id as
a literal costs more than running it (docs/benchmarks.md, "Uncached pages, cheaper").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    Table,
    bindparam,
    func,
    select,
)

from models.records import AuthorRecord, BookRecord, ReviewRecord, ReviewStats, UserRecord
from models.tables import AUTHORS, BOOKS, REVIEWS, USERS

RecordT = TypeVar("RecordT", AuthorRecord, BookRecord, ReviewRecord, UserRecord)

_TABLE_OF: dict[type[Any], Table] = {
    AuthorRecord: AUTHORS,
    BookRecord: BOOKS,
    ReviewRecord: REVIEWS,
    UserRecord: USERS,
}


def _columns(record: type[Any]) -> list[Any]:
    table = _TABLE_OF[record]
    return [table.c[f.name] for f in fields(record)]


IDS = "ids"
"""The expanding parameter of the statements below: a list of ids."""
_LIMIT = "limit"
_AFTER = "after_id"
_EQUAL = "equal_"  # + a column's name: the value `page` compares it with


_ROWS_BY_ID: dict[type[Any], Select[Any]] = {
    record: select(*_columns(record)).where(table.c.id.in_(bindparam(IDS, expanding=True)))
    for record, table in _TABLE_OF.items()
}
# The statements below that depend on their arguments are built on first use and kept:
# their arguments come from the code (a relation, the filter's column names), not from
# requests, so there are a few dozen at most; the bound is a guard.
STATEMENTS_KEPT = 64


@lru_cache(maxsize=STATEMENTS_KEPT)
def _counts_by(table: Table, parent_column: str) -> Select[Any]:
    parent = table.c[parent_column]
    wanted = parent.in_(bindparam(IDS, expanding=True))
    return select(parent, func.count()).where(wanted).group_by(parent)


_REVIEW_STATS = (
    select(REVIEWS.c.book_id, func.count(), func.avg(REVIEWS.c.rating))
    .where(REVIEWS.c.book_id.in_(bindparam(IDS, expanding=True)))
    .group_by(REVIEWS.c.book_id)
)


@dataclass(frozen=True, slots=True)
class Page:
    """One keyset page of ids (at most `first`); rows come from the entity loaders, which
    the cache tiers serve."""

    ids: Sequence[int]
    has_next: bool


@dataclass(frozen=True, slots=True)
class BookFilter:
    genre: str | None = None
    author_id: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.genre is not None:
            found.append(BOOKS.c.genre == self.genre)
        if self.author_id is not None:
            found.append(BOOKS.c.author_id == self.author_id)
        return found

    def equal(self) -> dict[str, Any]:
        """The same conditions as column name -> value (what `page` binds)."""
        found: dict[str, Any] = {}
        if self.genre is not None:
            found["genre"] = self.genre
        if self.author_id is not None:
            found["author_id"] = self.author_id
        return found


def _to_page(ids: Sequence[int], first: int) -> Page:
    return Page(ids=ids[:first], has_next=len(ids) > first)


def by_ids(conn: Connection, record: type[RecordT], ids: Iterable[int]) -> dict[int, RecordT]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    result = conn.execute(_ROWS_BY_ID[record], {IDS: wanted})
    return {row[0]: record(*row) for row in result}


def page(
    conn: Connection,
    record: type[Any],
    *,
    first: int,
    after_id: int | None,
    equal: Mapping[str, Any] | None = None,
) -> Page:
    """A keyset page of the rows whose columns have the values in `equal` (name -> value)."""
    names = tuple(sorted(equal or ()))
    stmt = _page_of(_TABLE_OF[record], names, after=after_id is not None)
    bound: dict[str, Any] = {_LIMIT: first + 1, _AFTER: after_id}
    bound.update((_EQUAL + name, value) for name, value in (equal or {}).items())
    ids = list(conn.scalars(stmt, bound).all())
    return _to_page(ids, first)


@lru_cache(maxsize=STATEMENTS_KEPT)
def _page_of(table: Table, names: tuple[str, ...], *, after: bool) -> Select[Any]:
    stmt = select(table.c.id).where(*(table.c[name] == bindparam(_EQUAL + name) for name in names))
    if after:
        stmt = stmt.where(table.c.id > bindparam(_AFTER, type_=Integer))
    return stmt.order_by(table.c.id).limit(bindparam(_LIMIT, type_=Integer))


def count(conn: Connection, record: type[Any], where: Sequence[ColumnElement[bool]] = ()) -> int:
    table = _TABLE_OF[record]
    total = conn.scalar(select(func.count()).select_from(table).where(*where))
    return int(total or 0)


def pages_by_parent(
    conn: Connection,
    record: type[Any],
    parent_column: str,
    parent_ids: Iterable[int],
    *,
    first: int,
    after_id: int | None,
) -> dict[int, Page]:
    """The first page of children for many parents in one statement (a window function)."""
    wanted = list(set(parent_ids))
    if not wanted:
        return {}
    stmt = _pages_by(_TABLE_OF[record], parent_column, after=after_id is not None)
    bound: dict[str, Any] = {IDS: wanted, _LIMIT: first + 1, _AFTER: after_id}
    grouped: dict[int, list[int]] = defaultdict(list)
    for row_id, parent_id in conn.execute(stmt, bound):
        grouped[parent_id].append(row_id)
    return {pid: _to_page(grouped.get(pid, []), first) for pid in wanted}


@lru_cache(maxsize=STATEMENTS_KEPT)
def _pages_by(table: Table, parent_column: str, *, after: bool) -> Select[Any]:
    parent = table.c[parent_column]
    position = func.row_number().over(partition_by=parent, order_by=table.c.id).label("position")
    inner = select(table.c.id, parent, position).where(parent.in_(bindparam(IDS, expanding=True)))
    if after:
        inner = inner.where(table.c.id > bindparam(_AFTER, type_=Integer))
    ranked = inner.subquery()
    return (
        select(ranked.c.id, ranked.c[parent_column])
        .where(ranked.c.position <= bindparam(_LIMIT, type_=Integer))
        .order_by(ranked.c[parent_column], ranked.c.id)
    )


def counts_by_parent(
    conn: Connection, record: type[Any], parent_column: str, parent_ids: Iterable[int]
) -> dict[int, int]:
    wanted = list(set(parent_ids))
    if not wanted:
        return {}
    rows = conn.execute(_counts_by(_TABLE_OF[record], parent_column), {IDS: wanted})
    found = {row[0]: int(row[1]) for row in rows}
    return {pid: found.get(pid, 0) for pid in wanted}


def review_stats(conn: Connection, book_ids: Iterable[int]) -> dict[int, ReviewStats]:
    wanted = list(set(book_ids))
    if not wanted:
        return {}
    found = {
        row[0]: ReviewStats(count=int(row[1]), average=float(row[2]))
        for row in conn.execute(_REVIEW_STATS, {IDS: wanted})
    }
    return {bid: found.get(bid, ReviewStats(count=0, average=None)) for bid in wanted}
