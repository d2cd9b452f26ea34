"""What every resolver can reach for one request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from strawberry.types import Info as StrawberryInfo
from strawberry.types.graphql import OperationType

from cache.strawberry import RequestCache
from graph.api.loaders import Loaders
from graph.settings import Settings
from models import Database, UserRecord


@dataclass(slots=True)
class Context:
    db: Database
    settings: Settings
    viewer: UserRecord | None
    request_cache: RequestCache
    invalidate_tags: Callable[[Iterable[str], str], Awaitable[int]]
    operation_type: OperationType | None = None  # set once execution starts
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.request_cache)


Info: TypeAlias = StrawberryInfo[Context, None]
