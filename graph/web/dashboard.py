"""The live dashboard: `GET /dashboard` (a static page) and `GET /dashboard/data` (JSON).

The numbers come from the registry /metrics renders (every worker's, added up, under
`strata serve --workers N`), so the page and a Prometheus scrape never disagree. Hot keys,
hot tags and recent invalidations are this process's own (graph.observability.activity).

Open in dev mode; in production `/dashboard/data` wants an admin's bearer token (the page
asks for one and keeps it in sessionStorage), checked by the app's one authentication
backend (graph/web/auth.py). Looking the token up is a cache read, so in production each
poll adds one L1 hit (or an L2 hit, or one SQL query) to the figures.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.authentication import AuthenticationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from graph.observability.metrics import MULTIPROCESS_DIR
from graph.services import Services
from graph.settings import Settings
from graph.web.auth import CHALLENGE, BearerTokens, is_admin

PAGE = Path(__file__).parent / "static" / "dashboard" / "index.html"
NO_STORE = {"Cache-Control": "no-store"}
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
TOP = 10
RECENT = 20

Labels = tuple[tuple[str, str], ...]


class Samples:
    """Every sample of a registry by name, `_created` timestamps left out."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        for family in registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = tuple(sorted(sample.labels.items()))
                series = self._values[sample.name]
                # Several workers' gauges may share labels apart from `pid`: add them up.
                series[labels] = series.get(labels, 0.0) + sample.value

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            (value for key, value in self._values.get(name, {}).items() if wanted <= set(key)),
            0.0,
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for key, value in self._values.get(name, {}).items():
            found = dict(key).get(label)
            if found is not None:
                out[found] += value
        return dict(sorted(out.items()))

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) of histogram `name`, all other labels added."""
        return sorted(
            (float(le), count) for le, count in self.by_label(f"{name}_bucket", "le").items()
        )


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's `histogram_quantile`: linear interpolation inside the bucket where the
    rank falls; the largest finite bound when it falls in +Inf; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def number(value: float) -> int | float:
    """Counters as integers, so the page shows what /metrics says without a `.0`."""
    value = float(value)
    return int(value) if value.is_integer() else value


def ratio(hits: float, misses: float) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def tier(hits: float, misses: float, **extra: float) -> dict[str, Any]:
    return {
        "hits": number(hits),
        "misses": number(misses),
        **{name: number(value) for name, value in extra.items()},
        "ratio": ratio(hits, misses),
    }


def counts(values: Mapping[str, float]) -> dict[str, int | float]:
    return {name: number(value) for name, value in values.items()}


def snapshot(services: Services) -> dict[str, Any]:
    """Everything the page shows, read now."""
    engine = services.cache.stats
    services.metrics.absorb_engine_stats(engine)
    samples = Samples(services.metrics.source())
    buckets = samples.buckets("strata_request_seconds")
    response = samples.by_label("strata_response_cache_total", "result")
    activity = services.activity
    return {
        "timestamp": time.time(),
        "env": services.settings.env,
        "workers": "all" if os.environ.get(MULTIPROCESS_DIR) else "this process",
        "requests": {
            "total": number(samples.total("strata_request_seconds_count")),
            "by_method": counts(samples.by_label("strata_request_seconds_count", "method")),
        },
        "latency": {
            **{name: quantile(q, buckets) for name, q in QUANTILES},
            "count": number(samples.total("strata_request_seconds_count")),
            "sum": samples.total("strata_request_seconds_sum"),
            "buckets": [["+Inf" if math.isinf(le) else le, number(n)] for le, n in buckets],
        },
        "operations": counts(samples.by_label("strata_operations_total", "type")),
        "tiers": {
            "response": tier(
                response.get("hit", 0.0), response.get("miss", 0.0), skips=response.get("skip", 0.0)
            ),
            **{
                name: tier(
                    samples.total("strata_cache_hits_total", tier=name),
                    samples.total("strata_cache_misses_total", tier=name),
                )
                for name in ("l1", "l2")
            },
        },
        "cache": {
            "status": services.cache.status,
            "breaker_state": str(engine.get("breaker_state", "unknown")),
            "breaker_open": samples.total("strata_redis_breaker_open") > 0,
            "l1_entries": number(samples.total("strata_cache_l1_entries")),
            "evictions": number(samples.total("strata_cache_evictions_total")),
            "integrity_failures": number(samples.total("strata_cache_integrity_failures_total")),
            "redis_errors": counts(samples.by_label("strata_cache_redis_errors_total", "kind")),
        },
        "sql_statements": number(samples.total("strata_sql_statements_total")),
        "invalidations_by_kind": counts(
            samples.by_label("strata_cache_invalidations_total", "kind")
        ),
        "rejected": counts(samples.by_label("strata_rejected_requests_total", "reason")),
        "errors": counts(samples.by_label("strata_graphql_errors_total", "code")),
        "hot_keys": [{"key": key, "reads": reads} for key, reads in activity.hot_keys.top(TOP)],
        "hot_tags": [
            {"tag": tag, "invalidations": n} for tag, n in activity.hot_tags.most_common(TOP)
        ],
        "recent_invalidations": [
            {"at": item.at, "source": item.source, "tags": list(item.tags)}
            for item in islice(activity.recent, RECENT)
        ],
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
    return JSONResponse(snapshot(services), headers=NO_STORE)


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
