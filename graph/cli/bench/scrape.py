"""Server-side figures from /metrics: scraped before and after a run, then diffed."""

from __future__ import annotations

import urllib.request
from typing import Any

from graph.observability.exposition import Scrape

SERVER_FIGURES = (
    "requests",
    "operations_executed",
    "sql_per_request",
    "redis_round_trips_per_request",
    "l1_hit_ratio",
    "l2_hit_ratio",
    "response_hit_ratio",
    "redis_errors",
)


def scrape(base_url: str, admin_token: str, timeout: float = 10.0) -> Scrape:
    request = urllib.request.Request(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return Scrape.of(response.read().decode())


def _delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float | None:
    end = after.total(name, **labels)
    if end is None:
        return None
    return end - (before.total(name, **labels) or 0.0)


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return round(part / whole, 4)


def server_figures(before: Scrape, after: Scrape, client_requests: int) -> dict[str, Any]:
    """Per-request figures of one run. The denominator is the server's own count of
    /graphql requests (falls back to wrk's count), so requests wrk abandoned at the end
    are not a source of error."""
    served = _delta(before, after, "strata_request_seconds_count")
    requests = served if served else float(client_requests)
    sql = _delta(before, after, "strata_sql_statements_total")
    round_trips = _delta(before, after, "strata_cache_redis_round_trips_total")
    l1_hits = _delta(before, after, "strata_cache_hits_total", tier="l1")
    l1_misses = _delta(before, after, "strata_cache_misses_total", tier="l1")
    l2_hits = _delta(before, after, "strata_cache_hits_total", tier="l2")
    l2_misses = _delta(before, after, "strata_cache_misses_total", tier="l2")
    response_hits = _delta(before, after, "strata_response_cache_total", result="hit")
    response_misses = _delta(before, after, "strata_response_cache_total", result="miss")
    response_skips = _delta(before, after, "strata_response_cache_total", result="skip")
    operations = _delta(before, after, "strata_operations_total")
    redis_errors = _delta(before, after, "strata_cache_redis_errors_total")
    lookups = None
    if response_hits is not None or response_misses is not None or response_skips is not None:
        lookups = (response_hits or 0.0) + (response_misses or 0.0) + (response_skips or 0.0)
    return {
        "requests": int(requests),
        "operations_executed": None if operations is None else int(operations),
        "sql_per_request": _ratio(sql, requests),
        "redis_round_trips_per_request": _ratio(round_trips, requests),
        "l1_hit_ratio": _ratio(l1_hits, (l1_hits or 0.0) + (l1_misses or 0.0)),
        "l2_hit_ratio": _ratio(l2_hits, (l2_hits or 0.0) + (l2_misses or 0.0)),
        "response_hit_ratio": _ratio(response_hits, lookups),
        # Redis errors and timeouts (each opens the circuit breaker for a while).
        "redis_errors": None if redis_errors is None else int(redis_errors),
    }
