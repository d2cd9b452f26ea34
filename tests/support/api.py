"""An in-process client for the real Starlette app, over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from graph.services import Services
from graph.settings import Settings
from graph.web.app import create_app
from models import Database
from models.seed import SeedPlan, seed
from models.tables import REVIEWS, utc_now
from models.tokens import create_token

SMALL_PLAN = SeedPlan(authors=12, books_per_author=4, reviews_per_book=3, users=4, seed=7)


async def post_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> httpx.Response:
    """POST one operation to /graphql, as `token`'s user when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await client.post("/graphql", json=body, headers=headers)


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    admin_token: str
    user_token: str
    other_user_token: str

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        return await post_graphql(self.client, query, variables, token)

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a response that must have no errors."""
        response = await self.post(query, variables, token)
        payload = response.json()
        assert response.status_code == 200, payload
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    @property
    def tokens(self) -> tuple[str, str, str]:
        return self.admin_token, self.user_token, self.other_user_token

    async def error_codes(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> list[str]:
        payload = (await self.post(query, variables, token)).json()
        return [error.get("extensions", {}).get("code") for error in payload.get("errors", [])]


async def prepare_database(url: str, plan: SeedPlan = SMALL_PLAN) -> tuple[str, str, str]:
    """Seed the catalogue and return tokens for an admin and two ordinary users."""
    db = Database(url)
    try:
        await seed(db, plan)
        async with db.session() as session, session.begin():
            admin = await create_token(session, "admin", admin=True)
            user = await create_token(session, "alice")
            other = await create_token(session, "bob")
        return admin, user, other
    finally:
        await db.dispose()


@asynccontextmanager
async def running_api(
    settings: Settings, tokens: tuple[str, str, str] | None = None
) -> AsyncIterator[Api]:
    """The app on `settings`; seeds the database first unless `tokens` of an already
    seeded one are given (a second instance, or a restart)."""
    admin, user, other = tokens or await prepare_database(settings.database_url)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://strata.test") as client,
    ):
        yield Api(client, app.state.services, admin, user, other)


async def add_reviews(url: str, book_id: int, count: int) -> None:
    """Adds `count` reviews of user 1 to book `book_id`, straight into the table."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(REVIEWS),
                [
                    {"rating": 4, "body": f"r{n}", "book_id": book_id, "reviewer_id": 1}
                    | {"created_at": utc_now()}
                    for n in range(count)
                ],
            )
            total = await conn.scalar(
                select(func.count()).select_from(REVIEWS).where(REVIEWS.c.book_id == book_id)
            )
            assert total is not None
            assert total > 1000
    finally:
        await db.dispose()
