"""The async engine: SQLite (WAL) by default, PostgreSQL through asyncpg from the URL.

Writes go through the async engine's sessions. Reads (:meth:`Database.read`) are plain
functions of a synchronous :class:`Connection`: on a SQLite file they run on a small pool
of threads with the synchronous driver, one hand-off per read (aiosqlite hands off every
cursor call: five a statement); elsewhere on the async engine (`run_sync`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")
Query = Callable[[Connection], T]

READS_AT_DISPOSE_S = 10.0
READ_THREADS = 4
"""Threads (and pooled connections) for SQLite reads: SQLite runs readers side by side
(WAL); Python code holds the GIL either way, so a few suffice."""


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


def _sqlite_file(url: URL) -> bool:
    # An in-memory database exists once per connection: its reads stay on the async engine.
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


class Reads(Protocol):
    """Where :meth:`Database.read` runs a query."""

    @property
    def engine(self) -> Engine:
        """The synchronous engine the queries run on (its events see every read)."""
        ...

    async def run(self, query: Query[T]) -> T: ...

    async def close(self) -> None: ...


class AsyncReads:
    """On the async engine's own connections, in a greenlet (asyncpg, in-memory SQLite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine.sync_engine

    async def run(self, query: Query[T]) -> T:
        async with self._engine.connect() as conn:
            return await conn.run_sync(query)

    async def close(self) -> None:
        """The async engine is the database's own: it disposes of it."""


class ThreadReads:
    """On the synchronous SQLite driver, one thread hand-off per read."""

    def __init__(self, url: URL) -> None:
        self._engine = create_sync_engine(
            url.set(drivername="sqlite"), pool_size=READ_THREADS, max_overflow=0
        )
        event.listen(self._engine, "connect", _sqlite_pragmas)
        self._threads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="strata-read")

    @property
    def engine(self) -> Engine:
        return self._engine

    async def run(self, query: Query[T]) -> T:
        # In a copy of the caller's context, as the query would run on the event loop: the
        # operation's statistics count its statements (graph/observability/operations.py).
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, context.run, self._run, query)

    def _run(self, query: Query[T]) -> T:
        with self._engine.connect() as conn:
            return query(conn)

    async def close(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)
        self._engine.dispose()


class Database:
    """The engine and a session factory, opened once per process in the app's lifespan."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        parsed = make_url(url)
        self.reads: Reads = ThreadReads(parsed) if _sqlite_file(parsed) else AsyncReads(self.engine)
        self._reads: set[asyncio.Future[Any]] = set()

    def session(self) -> AsyncSession:
        return self.sessions()

    @property
    def engines(self) -> tuple[Engine, ...]:
        """The synchronous engines statements run on, for their events: the async
        engine's, and the reads' when they have one of their own."""
        own = self.engine.sync_engine
        return (own,) if self.reads.engine is own else (own, self.reads.engine)

    async def read(self, query: Query[T]) -> T:
        """Run `query` on a connection of its own and give the connection back.

        Shielded: a caller cancelled mid-read (graphql-core cancels the sibling fields of
        one that failed) would otherwise abandon the connection mid-query, and SQLAlchemy
        would invalidate it and close it in a stray task. The read finishes and the
        connection returns to the pool; the cancelled caller just does not wait for it.
        :meth:`dispose` does wait for it.
        """
        read = asyncio.ensure_future(self.reads.run(query))
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)
        return await asyncio.shield(read)

    async def dispose(self) -> None:
        """Close the pools once the reads whose callers were cancelled have finished: one
        left running would be destroyed with its event loop, its connection unclosed."""
        if self._reads:
            await asyncio.wait(set(self._reads), timeout=READS_AT_DISPOSE_S)
        await self.reads.close()
        await self.engine.dispose()
