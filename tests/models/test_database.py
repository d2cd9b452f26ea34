"""Database.read: a read whose caller was cancelled finishes, and dispose waits for it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Database


async def test_dispose_waits_for_a_read_whose_caller_was_cancelled(database_url: str) -> None:
    db = Database(database_url)
    started = asyncio.Event()
    finished: list[int] = []

    async def slow_query(conn: AsyncConnection) -> int:
        started.set()
        await asyncio.sleep(0.3)
        value = int((await conn.execute(text("SELECT 1"))).scalar_one())
        finished.append(value)
        return value

    caller = asyncio.create_task(db.read(slow_query))
    await started.wait()
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    assert finished == []  # the read goes on without its caller

    await db.dispose()
    assert finished == [1]
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert pending == []
