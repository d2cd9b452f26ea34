"""A migrated, seeded SQLite database in a temporary folder, for in-process benchmarks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from graph.cli import migrations
from models import Database
from models.seed import SeedPlan, seed


async def seeded_database(plan: SeedPlan, prefix: str = "strata-bench-") -> str:
    """The URL of a fresh database holding `plan`'s data."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    db = Database(url)
    await seed(db, plan)
    await db.dispose()
    return url
