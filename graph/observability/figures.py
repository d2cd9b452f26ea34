"""The figures of one process or one server, as the dashboard shows them and as every
instance publishes them to Redis: requests, latency, hit and miss per tier, engine health,
hot keys and recent invalidations.

Counters come from a Prometheus registry read in process (`Scrape.of_registry`), so the
figures and a scrape of /metrics never disagree: a server's page reads the registry that
adds up its workers; a published record reads the process's own registry, so records can
be added up across the deployment without counting a worker twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from graph.observability.activity import Activity
from graph.observability.exposition import Scrape

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
TOP = 10
RECENT = 20
TIERS = ("response", "l1", "l2")


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


def latency(buckets: Sequence[tuple[float, float]], total_seconds: float) -> dict[str, Any]:
    """Percentiles of a cumulative histogram, with the buckets (JSON-friendly) they came
    from, so a reader can subtract two readings or add several instances up."""
    return {
        **{name: quantile(q, buckets) for name, q in QUANTILES},
        "count": number(buckets[-1][1]) if buckets else 0,
        "sum": total_seconds,
        "buckets": [["+Inf" if math.isinf(le) else le, number(n)] for le, n in buckets],
    }


def explain(name: str, found: Mapping[str, Any], status: str, instances: int) -> str | None:
    """Why a tier reads 0% or nothing at all, in words; None when its ratio speaks for
    itself. `status` is the cache's; `instances` how many processes the figures cover."""
    if status == "disabled":
        return "caching is off (STRATA_CACHE=off)"
    if name == "l2" and status == "memory-only":
        return "no Redis (REDIS_URL is not set): there is no L2"
    lookups = found["hits"] + found["misses"]
    if not lookups:
        if name == "response" and found.get("skips"):
            return "no storable query yet: every answer so far was skipped (mutation, errors)"
        if name == "l2":
            return "no L2 lookups yet: everything asked so far was answered by L1 or above it"
        return "no lookups yet"
    if name == "l2" and not found["hits"]:
        alone = "one process" if instances <= 1 else f"{instances} processes"
        return (
            f"every L2 lookup so far was a first read. L1 answers the repeats inside a "
            f"process, so L2 hits come from values another process stored (or after L1 "
            f"evicted or restarted); with {alone} and this little traffic, 0% is expected"
        )
    return None


def with_notes(tiers: Mapping[str, dict[str, Any]], status: str, instances: int) -> None:
    for name, found in tiers.items():
        found["note"] = explain(name, found, status, instances)


def figures(scrape: Scrape, engine: Mapping[str, Any], status: str) -> dict[str, Any]:
    """Counters and gauges of `scrape`, with the engine's live state (`engine` is
    `TieredCache.stats`, `status` its `status`)."""
    response = scrape.by_label("strata_response_cache_total", "result")
    return {
        "requests": {
            "total": number(scrape.sum("strata_request_seconds_count")),
            "by_method": counts(scrape.by_label("strata_request_seconds_count", "method")),
        },
        "latency": latency(
            scrape.buckets("strata_request_seconds"), scrape.sum("strata_request_seconds_sum")
        ),
        "operations": counts(scrape.by_label("strata_operations_total", "type")),
        "tiers": {
            "response": tier(
                response.get("hit", 0.0), response.get("miss", 0.0), skips=response.get("skip", 0.0)
            ),
            **{
                name: tier(
                    scrape.sum("strata_cache_hits_total", tier=name),
                    scrape.sum("strata_cache_misses_total", tier=name),
                )
                for name in ("l1", "l2")
            },
        },
        "cache": {
            "status": status,
            "breaker_state": str(engine.get("breaker_state", "unknown")),
            "breaker_open": scrape.sum("strata_redis_breaker_open") > 0,
            "l1_entries": number(scrape.sum("strata_cache_l1_entries")),
            "evictions": number(scrape.sum("strata_cache_evictions_total")),
            "integrity_failures": number(scrape.sum("strata_cache_integrity_failures_total")),
            "redis_errors": counts(scrape.by_label("strata_cache_redis_errors_total", "kind")),
        },
        "sql_statements": number(scrape.sum("strata_sql_statements_total")),
        "invalidations_by_kind": counts(
            scrape.by_label("strata_cache_invalidations_total", "kind")
        ),
        "rejected": counts(scrape.by_label("strata_rejected_requests_total", "reason")),
        "errors": counts(scrape.by_label("strata_graphql_errors_total", "code")),
    }


def activity_figures(activity: Activity) -> dict[str, Any]:
    """This process's hottest keys and tags and its latest invalidations."""
    return {
        "hot_keys": [{"key": key, "reads": reads} for key, reads in activity.hot_keys.top(TOP)],
        "hot_tags": [
            {"tag": tag, "invalidations": n} for tag, n in activity.hot_tags.most_common(TOP)
        ],
        "recent_invalidations": [
            {"at": item.at, "source": item.source, "tags": list(item.tags)}
            for item in islice(activity.recent, RECENT)
        ],
    }
