"""The one Alembic configuration: `strata db upgrade`, the bench and the tests migrate
through it, so a change to how migrations are found is made once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """alembic.ini of the checkout, with paths absolute (the caller's cwd may be anywhere)
    and the URL handed to alembic/env.py directly rather than through the environment."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
