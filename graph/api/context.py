"""What every resolver can reach for one request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info as StrawberryInfo
from strawberry.types.graphql import OperationType

from cache.strawberry import RequestCache
from graph.api.loaders import Loaders
from graph.settings import Settings
from models import Database, UserRecord


class InvalidateTags(Protocol):
    async def __call__(self, tags: Iterable[str], source: str, row: int | None = None) -> int:
        """Bumps ``tags`` everywhere (``row``: the outbox row the write recorded)."""
        ...


class RecordInvalidation(Protocol):
    async def __call__(self, session: AsyncSession, tags: Sequence[str]) -> int | None:
        """Records ``tags`` in the outbox inside the write's transaction: the row id."""
        ...


@dataclass(slots=True)
class Context:
    db: Database
    settings: Settings
    viewer: UserRecord | None
    request_cache: RequestCache
    invalidate_tags: InvalidateTags
    record_invalidation: RecordInvalidation
    operation_type: OperationType | None = None  # set once execution starts
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.request_cache)


Info: TypeAlias = StrawberryInfo[Context, None]
