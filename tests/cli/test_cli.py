"""The `strata` console script, run for real as a subprocess against SQLite files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from graph.settings import Settings
from models.seed import GENRES
from tests.support.api import Api, running_api
from tests.support.databases import SqliteTemplate
from tests.support.servers import STRATA

TABLES = {"authors", "books", "reviews", "users", "api_tokens", "alembic_version"}
SEED_ARGS = [
    "seed",
    "--authors",
    "5",
    "--books-per-author",
    "2",
    "--reviews-per-book",
    "2",
    "--users",
    "3",
]


def strata(
    database: Path, *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    result = subprocess.run(
        [str(STRATA), *args],
        env=env,
        cwd=cwd or database.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows} - {"sqlite_sequence"}


def dump(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every catalogue table, in id order."""
    with sqlite3.connect(database) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("users", "authors", "books", "reviews", "api_tokens")
        }


def migrated(template: SqliteTemplate, directory: Path) -> Path:
    url = template.clone(directory)
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def test_db_upgrade_creates_the_tables(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    assert not database.exists()
    strata(database, "db", "upgrade")
    assert tables(database) >= TABLES
    with sqlite3.connect(database) as conn:
        [(version,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert version
        columns = {row[1] for row in conn.execute("PRAGMA table_info(books)")}
    assert {"id", "title", "isbn", "genre", "published_year", "price", "author_id"} <= columns
    # Upgrading again is a no-op, not an error.
    strata(database, "db", "upgrade")
    assert not (tmp_path / "strata.db").exists()  # it used DATABASE_URL, not the default


@pytest.mark.slow
def test_seed_is_deterministic(tmp_path: Path, sqlite_template: SqliteTemplate) -> None:
    first, second, other = (migrated(sqlite_template, tmp_path) for _ in range(3))
    strata(first, *SEED_ARGS, "--seed", "9")
    strata(second, *SEED_ARGS, "--seed", "9")
    strata(other, *SEED_ARGS, "--seed", "10")
    rows = dump(first)
    assert len(rows["users"]) == 3
    assert len(rows["authors"]) == 5
    assert len(rows["books"]) == 10
    assert len(rows["reviews"]) == 20
    assert dump(second) == rows
    different = dump(other)
    assert different != rows
    assert [row[1] for row in different["authors"]] != [row[1] for row in rows["authors"]]
    # Genres are drawn evenly from the SPEC's eight.
    with sqlite3.connect(first) as conn:
        genres = {genre for (genre,) in conn.execute("SELECT genre FROM books")}
    assert genres == set(GENRES)
    assert len(GENRES) == 8


@pytest.mark.slow
def test_seed_refuses_a_non_empty_database(tmp_path: Path, sqlite_template: SqliteTemplate) -> None:
    database = migrated(sqlite_template, tmp_path)
    strata(database, *SEED_ARGS, "--seed", "9")
    before = dump(database)
    refused = strata(database, *SEED_ARGS, "--seed", "9", check=False)
    assert refused.returncode == 1
    assert "already has data" in refused.stderr
    skipped = strata(database, *SEED_ARGS, "--seed", "11", "--if-empty", check=False)
    assert skipped.returncode == 0, skipped.stderr
    assert dump(database) == before


def test_seed_if_empty_seeds_an_empty_database(
    tmp_path: Path, sqlite_template: SqliteTemplate
) -> None:
    database = migrated(sqlite_template, tmp_path)
    strata(database, *SEED_ARGS, "--if-empty")
    assert len(dump(database)["books"]) == 10


async def test_token_create_prints_a_working_admin_token(
    tmp_path: Path, sqlite_template: SqliteTemplate
) -> None:
    database = migrated(sqlite_template, tmp_path)
    result = strata(database, "token", "create", "bob", "--admin")
    token = result.stdout.strip()
    assert token
    assert "\n" not in token

    rows = dump(database)
    [user] = rows["users"]
    assert user[1] == "bob"
    [stored] = rows["api_tokens"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest in stored
    with sqlite3.connect(database) as conn:
        everything = "\n".join(line for line in conn.iterdump())
    assert token not in everything
    assert token.removeprefix("strata_") not in everything

    async with app_on(database) as api:
        assert await api.data("{ me { name } }", token=token) == {"me": {"name": "bob"}}
        created = await api.data(
            'mutation { createAuthor(input: {name: "By Bob"}) { name } }', token=token
        )
        assert created == {"createAuthor": {"name": "By Bob"}}

    # A second token for the same user: the user is reused, both tokens are kept as digests.
    again = strata(database, "token", "create", "bob").stdout.strip()
    assert again != token
    rows = dump(database)
    assert len(rows["users"]) == 1
    assert len(rows["api_tokens"]) == 2


def app_on(database: Path) -> AbstractAsyncContextManager[Api]:
    """The app in process on a database the CLI filled (no seeding, no fixture tokens)."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{database}", expose_cache_stats=False)
    return running_api(settings, tokens=("", "", ""))


async def test_token_without_admin_cannot_write_the_catalogue(
    tmp_path: Path, sqlite_template: SqliteTemplate
) -> None:
    database = migrated(sqlite_template, tmp_path)
    token = strata(database, "token", "create", "carol").stdout.strip()
    async with app_on(database) as api:
        codes = await api.error_codes(
            'mutation { createAuthor(input: {name: "No"}) { id } }', token=token
        )
    assert codes == ["FORBIDDEN"]
