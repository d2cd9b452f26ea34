"""The cache outbox on the database (SPEC 7a): ``record`` writes a row inside the caller's
transaction; :class:`DatabaseOutbox` is the engine's :class:`cache.outbox.Outbox`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cache.outbox import OutboxRow
from models.database import Database
from models.tables import OUTBOX

_COLUMNS = (OUTBOX.c.id, OUTBOX.c.tags, OUTBOX.c.created_at, OUTBOX.c.applied_at)


async def record(session: AsyncSession, tags: Sequence[str]) -> int:
    """Adds an invalidation of ``tags`` to the caller's transaction; its row id."""
    statement = (
        insert(OUTBOX)
        .values(tags=list(tags), created_at=time.time(), applied_at=None)
        .returning(OUTBOX.c.id)
    )
    row_id: int = (await session.execute(statement)).scalar_one()
    return row_id


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row.id,
        tags=tuple(str(tag) for tag in row.tags),
        created_at=float(row.created_at),
        applied=row.applied_at is not None,
    )


class DatabaseOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, tags: Sequence[str]) -> int:
        """An invalidation not tied to a change (an operator's), in its own transaction."""
        async with self._db.session() as session, session.begin():
            return await record(session, tags)

    async def unapplied(self, limit: int, after_id: int = 0) -> list[OutboxRow]:
        statement = (
            select(*_COLUMNS)
            .where(OUTBOX.c.applied_at.is_(None), OUTBOX.c.id > after_id)
            .order_by(OUTBOX.c.id)
            .limit(limit)
        )
        return await self._rows(statement)

    async def since(self, after_id: int, created_after: float, limit: int) -> list[OutboxRow]:
        statement = (
            select(*_COLUMNS)
            .where(or_(OUTBOX.c.id > after_id, OUTBOX.c.created_at > created_after))
            .order_by(OUTBOX.c.id)
            .limit(limit)
        )
        return await self._rows(statement)

    async def last_id(self) -> int:
        def query(conn: Connection) -> int:
            found = conn.scalar(select(func.max(OUTBOX.c.id)))
            return int(found or 0)

        return await self._db.read(query)

    async def mark_applied(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        statement = (
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.applied_at.is_(None))
            .values(applied_at=time.time())
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def prune(self, applied_before: float) -> int:
        statement = delete(OUTBOX).where(OUTBOX.c.applied_at < applied_before)
        async with self._db.engine.begin() as conn:
            deleted: int = (await conn.execute(statement)).rowcount
        return deleted

    async def dispose(self) -> None:
        await self._db.dispose()

    async def _rows(self, statement: Any) -> list[OutboxRow]:
        def query(conn: Connection) -> list[OutboxRow]:
            return [_row(row) for row in conn.execute(statement)]

        return await self._db.read(query)
