"""the cache outbox: invalidations recorded with the writes they belong to

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 13:00:00

One row per invalidation (SPEC 7a), written in the same transaction as the change;
AUTOINCREMENT on SQLite (as every table since 0002) so a row id is never handed out
twice: the relay's polling cursor relies on ids only growing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cache_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("applied_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("cache_outbox") as batch_op:
        batch_op.create_index("ix_cache_outbox_applied_at", ["applied_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cache_outbox") as batch_op:
        batch_op.drop_index("ix_cache_outbox_applied_at")
    op.drop_table("cache_outbox")
