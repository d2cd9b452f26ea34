"""Count the SQL statements a database runs (SQLAlchemy's cursor event), on the engine of
its writes and on the one of its reads (the same engine except on a SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from models import Database


@contextmanager
def counting_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engines = list(
        {id(engine): engine for engine in (db.engine.sync_engine, db.reads.engine)}.values()
    )
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
