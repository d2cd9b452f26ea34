"""Deterministic fake catalogue data: the same `seed` always gives the same rows."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.database import Database
from models.tables import AUTHORS, BOOKS, REVIEWS, USERS

GENRES = (
    "fantasy",
    "science-fiction",
    "mystery",
    "romance",
    "history",
    "biography",
    "poetry",
    "horror",
)
CHUNK = 2000
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeedPlan:
    authors: int = 1000
    books_per_author: int = 10
    reviews_per_book: int = 5
    users: int = 100
    seed: int = 42

    @property
    def total_rows(self) -> int:
        books = self.authors * self.books_per_author
        return self.users + self.authors + books + books * self.reviews_per_book


Progress = Callable[[int], None]


def isbn13(number: int) -> str:
    """A valid, unique ISBN-13 for each number."""
    digits = f"978{number:09d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def _users(plan: SeedPlan) -> Iterator[dict[str, Any]]:
    for n in range(1, plan.users + 1):
        yield {"id": n, "name": f"reader{n}", "is_admin": False, "created_at": EPOCH}


def _authors(plan: SeedPlan, fake: Faker) -> Iterator[dict[str, Any]]:
    for n in range(1, plan.authors + 1):
        yield {"id": n, "name": fake.name(), "bio": fake.paragraph(nb_sentences=2)}


def _books(plan: SeedPlan, fake: Faker, rng: random.Random) -> Iterator[dict[str, Any]]:
    for n in range(plan.authors * plan.books_per_author):
        yield {
            "id": n + 1,
            "title": fake.sentence(nb_words=4).rstrip("."),
            "isbn": isbn13(n + 1),
            "genre": GENRES[n % len(GENRES)],
            "published_year": rng.randint(1900, 2025),
            "price": round(rng.uniform(4.99, 59.99), 2),
            "author_id": n // plan.books_per_author + 1,
        }


def _reviews(plan: SeedPlan, fake: Faker, rng: random.Random) -> Iterator[dict[str, Any]]:
    books = plan.authors * plan.books_per_author
    for n in range(books * plan.reviews_per_book):
        yield {
            "id": n + 1,
            "rating": rng.randint(1, 5),
            "body": fake.sentence(nb_words=12),
            "created_at": EPOCH + timedelta(minutes=n),
            "book_id": n // plan.reviews_per_book + 1,
            "reviewer_id": rng.randint(1, plan.users),
        }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _fill(
    conn: AsyncConnection, table: Table, rows: Iterator[dict[str, Any]], progress: Progress
) -> None:
    for chunk in _chunks(rows):
        await conn.execute(insert(table), chunk)
        progress(len(chunk))


async def _advance_sequences(conn: AsyncConnection) -> None:
    # Rows were inserted with explicit ids; PostgreSQL's sequences must move past them.
    for table in (USERS, AUTHORS, BOOKS, REVIEWS):
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 1))"
            )
        )


async def is_empty(db: Database) -> bool:
    async with db.engine.connect() as conn:
        authors = await conn.scalar(select(func.count()).select_from(AUTHORS))
        users = await conn.scalar(select(func.count()).select_from(USERS))
    return not authors and not users


async def seed(db: Database, plan: SeedPlan, progress: Progress = lambda _n: None) -> None:
    """Fill an empty database. The caller checks emptiness first (see `is_empty`)."""
    fake = Faker()
    fake.seed_instance(plan.seed)
    rng = random.Random(plan.seed)
    async with db.engine.begin() as conn:
        await _fill(conn, USERS, _users(plan), progress)
        await _fill(conn, AUTHORS, _authors(plan, fake), progress)
        await _fill(conn, BOOKS, _books(plan, fake, rng), progress)
        await _fill(conn, REVIEWS, _reviews(plan, fake, rng), progress)
        if conn.dialect.name == "postgresql":
            await _advance_sequences(conn)
