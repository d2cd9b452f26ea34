"""Reads of the catalogue, always by batch of ids or by keyset page, never one row per call.

Every function takes an open connection so a caller can run several reads on one checkout.
Pages are keyset pages in ascending id order and fetch one extra row to tell whether there
is a next page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

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


def _to_page(ids: Sequence[int], first: int) -> Page:
    return Page(ids=ids[:first], has_next=len(ids) > first)


async def by_ids(
    conn: AsyncConnection, record: type[RecordT], ids: Iterable[int]
) -> dict[int, RecordT]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    table = _TABLE_OF[record]
    result = await conn.execute(select(*_columns(record)).where(table.c.id.in_(wanted)))
    return {row[0]: record(*row) for row in result}


async def page(
    conn: AsyncConnection,
    record: type[Any],
    *,
    first: int,
    after_id: int | None,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page:
    table = _TABLE_OF[record]
    stmt = select(table.c.id).where(*where).order_by(table.c.id).limit(first + 1)
    if after_id is not None:
        stmt = stmt.where(table.c.id > after_id)
    ids = list((await conn.scalars(stmt)).all())
    return _to_page(ids, first)


async def count(
    conn: AsyncConnection, record: type[Any], where: Sequence[ColumnElement[bool]] = ()
) -> int:
    table = _TABLE_OF[record]
    total = await conn.scalar(select(func.count()).select_from(table).where(*where))
    return int(total or 0)


async def pages_by_parent(
    conn: AsyncConnection,
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
    table = _TABLE_OF[record]
    parent = table.c[parent_column]
    position = func.row_number().over(partition_by=parent, order_by=table.c.id).label("position")
    inner = select(table.c.id, parent, position).where(parent.in_(wanted))
    if after_id is not None:
        inner = inner.where(table.c.id > after_id)
    ranked = inner.subquery()
    stmt = (
        select(ranked.c.id, ranked.c[parent_column])
        .where(ranked.c.position <= first + 1)
        .order_by(ranked.c[parent_column], ranked.c.id)
    )
    grouped: dict[int, list[int]] = defaultdict(list)
    for row_id, parent_id in await conn.execute(stmt):
        grouped[parent_id].append(row_id)
    return {pid: _to_page(grouped.get(pid, []), first) for pid in wanted}


async def counts_by_parent(
    conn: AsyncConnection, record: type[Any], parent_column: str, parent_ids: Iterable[int]
) -> dict[int, int]:
    wanted = list(set(parent_ids))
    if not wanted:
        return {}
    parent = _TABLE_OF[record].c[parent_column]
    stmt = select(parent, func.count()).where(parent.in_(wanted)).group_by(parent)
    found = {row[0]: int(row[1]) for row in await conn.execute(stmt)}
    return {pid: found.get(pid, 0) for pid in wanted}


async def review_stats(conn: AsyncConnection, book_ids: Iterable[int]) -> dict[int, ReviewStats]:
    wanted = list(set(book_ids))
    if not wanted:
        return {}
    stmt = (
        select(REVIEWS.c.book_id, func.count(), func.avg(REVIEWS.c.rating))
        .where(REVIEWS.c.book_id.in_(wanted))
        .group_by(REVIEWS.c.book_id)
    )
    found = {
        row[0]: ReviewStats(count=int(row[1]), average=float(row[2]))
        for row in await conn.execute(stmt)
    }
    return {bid: found.get(bid, ReviewStats(count=0, average=None)) for bid in wanted}
