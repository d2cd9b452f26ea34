"""The async engine: SQLite (WAL) by default, PostgreSQL through asyncpg from the URL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")

READS_AT_DISPOSE_S = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside a writer; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


class Database:
    """The engine and a session factory, opened once per process in the app's lifespan."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reads: set[asyncio.Task[Any]] = set()

    def session(self) -> AsyncSession:
        return self.sessions()

    async def read(self, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `query` on a connection of its own and give the connection back.

        Shielded: a caller cancelled mid-read (graphql-core cancels the sibling fields of
        one that failed) would otherwise abandon the connection mid-query, and SQLAlchemy
        would invalidate it and close it in a stray task. The read finishes and the
        connection returns to the pool; the cancelled caller just does not wait for it.
        :meth:`dispose` does wait for it.
        """
        read = asyncio.ensure_future(self._read(query))
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)
        return await asyncio.shield(read)

    async def _read(self, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.engine.connect() as conn:
            return await query(conn)

    async def dispose(self) -> None:
        """Close the pool once the reads whose callers were cancelled have finished: one
        left running would be destroyed with its event loop, its connection unclosed."""
        if self._reads:
            await asyncio.wait(set(self._reads), timeout=READS_AT_DISPOSE_S)
        await self.engine.dispose()
