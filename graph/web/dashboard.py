"""The live dashboard: `GET /dashboard` (a static page) and `GET /dashboard/data` (JSON).

The top-level figures are this server's, from the registry /metrics renders (every
worker's, added up, under `strata serve --workers N`), so the page and a Prometheus scrape
never disagree. `deployment` is the whole deployment: the records every live instance
(every worker of every server) publishes to Redis, added up, one row per instance, this
process's own record read live. The hottest keys and recent invalidations are the
deployment's, merged (this process's alone while Redis cannot be read).

Open in dev mode; in production `/dashboard/data` wants an admin's bearer token (the page
asks for one and keeps it in sessionStorage), checked by the app's one authentication
backend (graph/web/auth.py). Looking the token up is a cache read, so in production each
poll adds one L1 hit (or an L2 hit, or one SQL query) to the figures.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from starlette.authentication import AuthenticationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from graph.observability import deployment
from graph.observability.exposition import Scrape
from graph.observability.figures import figures, with_notes
from graph.observability.metrics import MULTIPROCESS_DIR
from graph.observability.presence import own_record
from graph.services import Services
from graph.settings import Settings
from graph.web.auth import CHALLENGE, BearerTokens, is_admin

__all__ = ["routes", "snapshot"]

log = logging.getLogger("strata")

PAGE = Path(__file__).parent / "static" / "dashboard" / "index.html"
NO_STORE = {"Cache-Control": "no-store"}
# Reading the records is an operator's read, not the request path: a deadline above the
# engine's, still short enough for a page polled every second.
RECORDS_TIMEOUT_S = 0.5


async def deployment_records(services: Services) -> tuple[list[dict[str, Any]], str | None]:
    """Every live instance's record, this process's read now; and why the others are
    missing, if they are."""
    presence = services.presence
    own = own_record(presence.identity, services.metrics, services.cache, services.activity)
    if services.cache.redis_tier is None:
        return [own], "no Redis: this process only"
    try:
        published = await presence.records(RECORDS_TIMEOUT_S)
    except Exception as error:  # Redis away or slow: show what this process knows
        log.warning("dashboard: instance records unreadable: %r", error)
        return [own], "Redis could not be read: this process only"
    others = [r for r in published if r["instance"]["id"] != presence.identity.id]
    return [own, *others], None


async def snapshot(services: Services) -> dict[str, Any]:
    """Everything the page shows, read now."""
    engine = services.cache.stats
    services.metrics.absorb_engine_stats(engine)
    status = services.cache.status
    records, missing = await deployment_records(services)
    whole = deployment.view(records, status)
    server = figures(Scrape.of_registry(services.metrics.source()), engine, status)
    with_notes(server["tiers"], status, len(records))
    return {
        "timestamp": time.time(),
        "env": services.settings.env,
        "workers": "all" if os.environ.get(MULTIPROCESS_DIR) else "this process",
        **server,
        "hot_keys": whole.pop("hot_keys"),
        "hot_tags": whole.pop("hot_tags"),
        "recent_invalidations": whole.pop("recent_invalidations"),
        "deployment": {
            **whole,
            "complete": missing is None,
            "missing": missing,
            "report_seconds": services.presence.interval_s,
            "ttl_seconds": services.presence.ttl_s,
        },
    }


async def refusal(request: Request, backend: BearerTokens) -> Response | None:
    """None when an admin asks."""
    try:
        await backend.identify(request)
    except AuthenticationError as error:  # a malformed header or an unknown token
        return JSONResponse(
            {"error": str(error)}, status_code=401, headers={**CHALLENGE, **NO_STORE}
        )
    if not request.user.is_authenticated:
        return JSONResponse(
            {"error": "an admin's bearer token is required"},
            status_code=401,
            headers={**CHALLENGE, **NO_STORE},
        )
    if not is_admin(request):
        return JSONResponse(
            {"error": "the dashboard is for admins"}, status_code=403, headers=NO_STORE
        )
    return None


async def page(_request: Request) -> Response:
    return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def open_data(request: Request) -> Response:
    services: Services = request.app.state.services
    return JSONResponse(await snapshot(services), headers=NO_STORE)


def routes(settings: Settings, backend: BearerTokens) -> list[Route]:
    """The page for anyone; the data for anyone in dev, for admins in production."""

    async def admin_data(request: Request) -> Response:
        refused = await refusal(request, backend)
        if refused is not None:
            return refused
        return await open_data(request)

    data = open_data if settings.dev else admin_data
    return [
        Route("/dashboard", page, methods=["GET"], name="dashboard"),
        Route("/dashboard/data", data, methods=["GET"], name="dashboard-data"),
    ]
