"""Test databases: SQLite always, PostgreSQL when reachable, each migrated by Alembic."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg

from graph.cli import migrations

POSTGRES_ADMIN_DSN = os.environ.get(
    "STRATA_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def postgres_url(database: str) -> str:
    dsn = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{database}"


def migrate(url: str) -> None:
    migrations.upgrade(url)


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class SqliteTemplate:
    """One migrated file, copied for each test: much faster than migrating each time."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        migrate(sqlite_url(self.path))

    def clone(self, directory: Path) -> str:
        target = directory / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.path, target)
        return sqlite_url(target)


class PostgresTemplate:
    """One migrated database used as the TEMPLATE of a fresh database per test."""

    def __init__(self) -> None:
        self.name = f"strata_tpl_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(f'CREATE DATABASE "{self.name}"'))
        migrate(postgres_url(self.name))

    def clone(self) -> str:
        name = f"strata_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
        return postgres_url(name)

    @staticmethod
    def drop(url: str) -> None:
        name = url.rsplit("/", 1)[1]
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(postgres_url(self.name))
