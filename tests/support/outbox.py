"""The cache outbox table as a test reads it."""

from __future__ import annotations

from sqlalchemy import select

from models import Database
from models.tables import OUTBOX


async def outbox_rows(database_url: str) -> list[tuple[list[str], bool]]:
    """Every row, oldest first: its tags and whether it was applied."""
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            found = await conn.execute(
                select(OUTBOX.c.tags, OUTBOX.c.applied_at).order_by(OUTBOX.c.id)
            )
            return [(list(tags), applied is not None) for tags, applied in found]
    finally:
        await db.dispose()
