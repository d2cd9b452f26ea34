"""Ids are never reused (SPEC 2): deleting the newest row never hands its id to the next one.

SQLite alone gives a new row max(rowid) + 1; migration 0002 declares every table with
AUTOINCREMENT. PostgreSQL sequences never hand a value out twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.cli.migrations import alembic_config
from models import Database
from models.tables import API_TOKENS, AUTHORS, BOOKS, REVIEWS, USERS
from tests.support.databases import sqlite_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _insert(conn: AsyncConnection, table: Table, **values: Any) -> int:
    new_id = (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar()
    assert isinstance(new_id, int)
    return new_id


async def _rows(conn: AsyncConnection) -> dict[str, int]:
    """One row of each kind; returns their ids."""
    user = await _insert(
        conn, USERS, name=f"reader-{NOW.timestamp()}", is_admin=False, created_at=NOW
    )
    author = await _insert(conn, AUTHORS, name="A", bio=None)
    return {
        "users": user,
        "authors": author,
        "api_tokens": await _insert(
            conn, API_TOKENS, user_id=user, token_hash="t" * 64, created_at=NOW
        ),
        "books": await _insert(
            conn,
            BOOKS,
            title="T",
            isbn="isbn-1",
            genre="poetry",
            published_year=2000,
            price=1.0,
            author_id=author,
        ),
    }


async def _delete_newest_and_insert(conn: AsyncConnection, table: Table, **values: Any) -> None:
    newest = await conn.scalar(select(func.max(table.c.id)))
    assert newest is not None
    await conn.execute(delete(table).where(table.c.id == newest))
    fresh = await _insert(conn, table, **values)
    assert fresh > newest, f"{table.name}: id {newest} was given again"


async def _check_each_kind(conn: AsyncConnection) -> None:
    ids = await _rows(conn)
    user, author, book = ids["users"], ids["authors"], ids["books"]
    review = {"rating": 5, "body": "b", "created_at": NOW, "book_id": book, "reviewer_id": user}
    await _insert(conn, REVIEWS, **review)
    # Children first, so deleting a parent never cascades into the row a check inserts next.
    await _delete_newest_and_insert(conn, REVIEWS, **review)
    await _delete_newest_and_insert(
        conn, API_TOKENS, user_id=user, token_hash="u" * 64, created_at=NOW
    )
    await _delete_newest_and_insert(
        conn,
        BOOKS,
        title="T2",
        isbn="isbn-2",
        genre="poetry",
        published_year=2001,
        price=2.0,
        author_id=author,
    )
    await _delete_newest_and_insert(conn, AUTHORS, name="B", bio=None)
    await _delete_newest_and_insert(conn, USERS, name="other", is_admin=False, created_at=NOW)


async def test_newest_row_of_each_kind_deleted_its_id_is_not_reused(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await _check_each_kind(conn)
    finally:
        await db.dispose()


async def test_migration_keeps_rows_and_stops_reuse_on_an_existing_sqlite_file(
    tmp_path: Path,
) -> None:
    """A database made before 0002 keeps its rows and ids, and stops reusing them."""
    url = sqlite_url(tmp_path / "old.db")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0001")
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            before = await _rows(conn)
        await db.dispose()
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        db = Database(url)
        async with db.engine.begin() as conn:
            for table in (USERS, AUTHORS, BOOKS, API_TOKENS):
                ids = (await conn.execute(select(table.c.id))).scalars().all()
                assert ids == [before[table.name]]
            schema = (await conn.execute(text("SELECT sql FROM sqlite_master"))).scalars()
            declared = " ".join(s for s in schema if s)
            assert declared.count("AUTOINCREMENT") == 6  # five tables, and the outbox (0003)
            await _delete_newest_and_insert(conn, AUTHORS, name="C", bio=None)
    finally:
        await db.dispose()
