"""Counting the response cache's lookups of an app in process (the fast lane makes none)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from cache.strawberry.response_cache import StoredResponse
from tests.support.api import Api


class Lookups:
    """Counts the response cache's lookups: a replayed request makes none."""

    def __init__(self, api: Api) -> None:
        self.count = 0
        lookup = api.services.responses.lookup

        async def counting(key: str, viewer: str | None) -> StoredResponse | None:
            self.count += 1
            return await lookup(key, viewer)

        api.services.responses.lookup = counting  # type: ignore[method-assign]

    async def made_by(self, request: Callable[[], Awaitable[httpx.Response]]) -> int:
        before = self.count
        await request()
        return self.count - before
