"""ids are never reused on SQLite: AUTOINCREMENT on every table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00

SQLite without AUTOINCREMENT gives a new row max(rowid) + 1, so deleting the newest row
hands its id to the next insert (a client's normalized cache then mixes two objects).
AUTOINCREMENT keeps the largest id ever used in sqlite_sequence. SQLite cannot add it
to a table in place: batch mode copies each table into a new one declared with it (the
copy inserts every existing id, which seeds sqlite_sequence). PostgreSQL sequences never
hand out a value twice, so there is nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before children, so each copy's foreign keys name tables that exist.
TABLES = ("users", "api_tokens", "authors", "books", "reviews")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
