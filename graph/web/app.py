"""The Starlette application: /graphql, health, readiness and metrics.

/graphql is answered in front of Starlette's routing (`StrataApp`): it is the hot path,
a response-cache hit is a few microseconds of work, and routing, Starlette's exception
layers and their request objects would cost more than that (docs/decisions.md, "The
response-cache hit path"). It still passes through the app's own middleware (CORS).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from graph.observability.logs import configure_logging
from graph.observability.metrics import CONTENT_TYPE_LATEST
from graph.services import Services
from graph.settings import Settings
from graph.web import dashboard
from graph.web.auth import BearerTokens
from graph.web.cors import cors_middleware
from graph.web.endpoint import METHODS as GRAPHQL_METHODS
from graph.web.endpoint import GraphQLEndpoint
from graph.web.metrics_port import serving_metrics

STATIC_DIR = Path(__file__).parent / "static"
GRAPHQL_PATH = "/graphql"
HEALTHY = b'{"status":"ok"}'


async def healthz(_request: Request) -> Response:
    # Fixed bytes: also the bench's yardstick of a bare Starlette route (graph/cli/bench).
    return Response(HEALTHY, media_type="application/json")


class StrataApp(Starlette):
    """A Starlette app that hands GET, HEAD and POST /graphql to `graphql` (wrapped in the
    app's middleware) without routing them; everything else is routed as usual."""

    def __init__(self, graphql: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        front = graphql
        for middleware in reversed(self.user_middleware):
            factory, args, options = middleware
            front = factory(front, *args, **options)
        self._graphql = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == GRAPHQL_PATH
            and scope["method"] in GRAPHQL_METHODS
        ):
            scope["app"] = self
            await self._graphql(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def readyz(request: Request) -> Response:
    """503 without the database; 200 but "degraded" while Redis is away (SPEC 6.10)."""
    services: Services = request.app.state.services
    database = await services.database_ready()
    cache = await services.cache.check()  # probes Redis now if the breaker is open
    if not database:
        status = "unavailable"
    elif cache == "degraded":
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, "database": database, "cache": cache}
    return JSONResponse(body, status_code=200 if database else 503)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    services.metrics.absorb_engine_stats(services.cache.stats)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def metrics_route(settings: Settings, backend: BearerTokens) -> Route:
    """/metrics for anyone in dev; in production for admins only (SPEC 3): its labels
    name operations, tags and rejection reasons an outsider has no business reading."""
    if settings.dev:
        return Route("/metrics", metrics, methods=["GET"])

    async def admin_metrics(request: Request) -> Response:
        refused = await dashboard.refusal(request, backend)
        return refused if refused is not None else await metrics(request)

    return Route("/metrics", admin_metrics, methods=["GET"])


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(settings)
    services = Services.create(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        services.publish_presence()
        try:
            port = settings.metrics_port
            with serving_metrics(settings.metrics_host, port, services.metrics.source()):
                yield
        finally:
            await services.close()

    backend = BearerTokens(services)
    graphql = GraphQLEndpoint(services, backend)
    app = StrataApp(
        graphql,
        routes=[
            # Reached only by the methods StrataApp does not take: answers them 405.
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            metrics_route(settings, backend),
            *dashboard.routes(settings, backend),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=cors_middleware(settings.cors_allowed_origins),
        lifespan=lifespan,
    )
    app.state.services = services
    return app
