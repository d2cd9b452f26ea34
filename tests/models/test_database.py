"""Database.read: a read whose caller was cancelled finishes, and dispose waits for it;
where reads run (a SQLite file's off the event loop, in one hand-off each)."""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import Connection, text

from models import Database
from models.database import AsyncReads, ThreadReads


def _slow_one(conn: Connection, started: threading.Event) -> int:
    started.set()
    if conn.dialect.name == "sqlite":
        time.sleep(0.3)  # a SQLite file's reads run in a thread of their own
    else:
        conn.execute(text("SELECT pg_sleep(0.3)"))  # yields to the event loop meanwhile
    return int(conn.execute(text("SELECT 1")).scalar_one())


async def test_dispose_waits_for_a_read_whose_caller_was_cancelled(database_url: str) -> None:
    db = Database(database_url)
    started = threading.Event()
    finished: list[int] = []

    def slow_query(conn: Connection) -> int:
        value = _slow_one(conn, started)
        finished.append(value)
        return value

    caller = asyncio.create_task(db.read(slow_query))
    await asyncio.to_thread(started.wait)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    assert finished == []  # the read goes on without its caller

    await db.dispose()
    assert finished == [1]
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert pending == []


async def test_a_sqlite_file_is_read_off_the_event_loop(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        assert isinstance(db.reads, ThreadReads)
        reader = await db.read(lambda _conn: threading.current_thread())
        assert reader is not threading.current_thread()
        assert await db.read(lambda conn: conn.execute(text("PRAGMA journal_mode")).scalar())
    finally:
        await db.dispose()


async def test_the_reads_see_what_a_session_committed(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session, session.begin():
            await session.execute(text("INSERT INTO authors (name) VALUES ('Ada')"))
        names = await db.read(lambda conn: list(conn.scalars(text("SELECT name FROM authors"))))
        assert names == ["Ada"]
    finally:
        await db.dispose()


async def test_an_in_memory_database_is_read_on_its_own_engine() -> None:
    db = Database("sqlite+aiosqlite://")
    try:
        assert isinstance(db.reads, AsyncReads)
        assert db.reads.engine is db.engine.sync_engine
        assert await db.read(lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
    finally:
        await db.dispose()
