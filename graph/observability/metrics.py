"""Prometheus metrics of one app, on a registry of its own (no module-level state).

With several worker processes (`strata serve --workers N`) each process writes its values
to files under PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, chosen
when the variable is set before the client is imported) and /metrics adds them up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from graph.api.keys import AUTHORS, BOOKS, REVIEWS, USERS
from graph.observability.counting import (
    Incrementer,
    Observer,
    PlainCounter,
    PlainHistogram,
    Unobserved,
)
from models.tokens import TOKEN_TAG_KIND

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROCESS_DIR", "Metrics", "every_worker", "tag_kind"]

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Label values of `strata_cache_invalidations`: the app's tag kinds, and `other` for any
# other text. A label value taken from client text would make one series per value.
TAG_KINDS = frozenset({AUTHORS, BOOKS, REVIEWS, USERS, TOKEN_TAG_KIND})
OTHER = "other"
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
UNOBSERVED = Unobserved()

# Engine counters (cache.TieredCache.stats) and the Prometheus series they feed.
CACHE_COUNTERS: Mapping[str, tuple[str, dict[str, str]]] = {
    "l1_hits": ("hits", {"tier": "l1"}),
    "l1_misses": ("misses", {"tier": "l1"}),
    "l2_hits": ("hits", {"tier": "l2"}),
    "l2_misses": ("misses", {"tier": "l2"}),
    "l1_evictions": ("evictions", {"tier": "l1"}),
    "integrity_failures": ("integrity_failures", {}),
    "redis_errors": ("redis_errors", {"kind": "error"}),
    "redis_timeouts": ("redis_errors", {"kind": "timeout"}),
    "redis_round_trips": ("redis_round_trips", {}),
}


def every_worker() -> CollectorRegistry:
    """A registry that adds up the files of every worker process (multiprocess mode)."""
    combined = CollectorRegistry()
    MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


def tag_kind(tag: str) -> str:
    """The label of a tag: its part before the first ':' when that is a kind of ours."""
    kind = tag.partition(":")[0]
    return kind if kind in TAG_KINDS else OTHER


class Metrics:
    """`enabled=False` (STRATA_METRICS=false): the per-operation series (latencies,
    response-cache results, SQL statements and batch sizes per operation) stay at zero."""

    def __init__(self, *, enabled: bool = True, plain_counting: bool = True) -> None:
        """`plain_counting=False`: observe the hot-path histograms directly, for a process
        whose registry is read where `fold` is not called first (another thread's
        exposition server)."""
        self.enabled = enabled
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.rejected_requests = Counter(
            "strata_rejected_requests",
            "Requests refused before execution, by reason",
            ["reason"],
            registry=registry,
        )
        self.graphql_errors = Counter(
            "strata_graphql_errors",
            "GraphQL errors in responses, by extensions.code",
            ["code"],
            registry=registry,
        )
        self.operations = Counter(
            "strata_operations",
            "GraphQL operations executed by Strawberry (response-cache hits are not)",
            ["type"],
            registry=registry,
        )
        self.sql_statements = Counter(
            "strata_sql_statements", "SQL statements sent to the database", registry=registry
        )
        self.request_seconds = Histogram(
            "strata_request_seconds",
            "Time to answer a /graphql request",
            ["method"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.operation_seconds = Histogram(
            "strata_operation_seconds",
            "Time to answer one GraphQL operation, by type and response-cache result",
            ["type", "response"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.sql_per_operation = Histogram(
            "strata_sql_statements_per_operation",
            "SQL statements run by one operation",
            registry=registry,
            buckets=(0, 1, 2, 3, 5, 10, 20, 50),
        )
        self.batch_size = Histogram(
            "strata_dataloader_batch_size",
            "Keys per DataLoader batch",
            ["loader"],
            registry=registry,
            buckets=SIZE_BUCKETS,
        )
        self.response_cache = Counter(
            "strata_response_cache",
            "Whole-response cache lookups and stores: hit, miss (stored), skip (not storable)",
            ["result"],
            registry=registry,
        )
        self.invalidations = Counter(
            "strata_cache_invalidations",
            "Tags invalidated, by kind (the part of the tag before its first ':', or other)",
            ["kind"],
            registry=registry,
        )
        self.cache_counters = {
            name: Counter(
                f"strata_cache_{name}",
                f"Cache engine: {name.replace('_', ' ')}",
                sorted(labels),
                registry=registry,
            )
            for name, labels in {
                series: labels for series, labels in CACHE_COUNTERS.values()
            }.items()
        }
        # Every engine series exists from the start: no Redis errors reads as 0 on /metrics
        # (and in `strata bench`), not as a missing series.
        for series, labels in CACHE_COUNTERS.values():
            if labels:
                self.cache_counters[series].labels(**labels)
        self.breaker_open = Gauge(
            "strata_redis_breaker_open",
            "1 while the Redis circuit breaker is open (Redis skipped), else 0",
            registry=registry,
            multiprocess_mode="max",
        )
        self.l1_entries = Gauge(
            "strata_cache_l1_entries",
            "Entries in the in-process tier",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pending_invalidations = Gauge(
            "strata_cache_pending_invalidations",
            "Invalidations this process knows of that Redis has not applied yet (outbox rows "
            "or local ones): what they cover is served from neither tier meanwhile",
            registry=registry,
            multiprocess_mode="max",
        )
        self._last_engine: dict[str, int] = {}
        self._operation_timers: dict[tuple[str, str], Observer] = {}
        self._plain: list[PlainHistogram | PlainCounter] = []
        self._plain_counting = plain_counting and not os.environ.get(MULTIPROCESS_DIR)

    def operation_timer(self, kind: str, response: str) -> Observer:
        """The latency histogram child of one (type, response) pair, bound once."""
        key = (kind, response)
        timer = self._operation_timers.get(key)
        if timer is None:
            timer = self._operation_timers[key] = self.histogram_child(
                self.operation_seconds.labels(type=kind, response=response)
            )
        return timer

    def histogram_child(self, child: Histogram) -> Observer:
        """What to observe a series with on a hot path (see graph/observability/counting.py)."""
        if not self.enabled:
            return UNOBSERVED
        if not self._plain_counting:
            return child
        plain = PlainHistogram(child)
        self._plain.append(plain)
        return plain

    def counter_child(self, child: Counter) -> Incrementer:
        """What to count a series with on a hot path, as `histogram_child` observes."""
        if not self.enabled:
            return UNOBSERVED
        if not self._plain_counting:
            return child
        plain = PlainCounter(child)
        self._plain.append(plain)
        return plain

    def fold(self) -> None:
        """Move what the hot paths counted into the series."""
        for plain in self._plain:
            plain.fold()

    def absorb_engine_stats(self, stats: Mapping[str, object]) -> None:
        """Move the engine's in-process counters into Prometheus (by their increase), and
        what the hot paths counted (`fold`): what every reader of the series calls first."""
        self.fold()
        for name, (series, labels) in CACHE_COUNTERS.items():
            value = stats.get(name)
            if not isinstance(value, int):
                continue
            increase = value - self._last_engine.get(name, 0)
            if increase > 0:
                counter = self.cache_counters[series]
                (counter.labels(**labels) if labels else counter).inc(increase)
            self._last_engine[name] = value
        self.breaker_open.set(1 if stats.get("breaker_state") == "open" else 0)
        entries = stats.get("l1_size")
        if isinstance(entries, int):
            self.l1_entries.set(entries)
        pending = stats.get("pending_invalidations")
        if isinstance(pending, int):
            self.pending_invalidations.set(pending)

    def source(self) -> CollectorRegistry:
        """What /metrics (and /dashboard/data) read: this process's registry, or with
        several workers one that adds up every worker's files."""
        if os.environ.get(MULTIPROCESS_DIR):
            return every_worker()
        return self.registry

    def render(self) -> bytes:
        return generate_latest(self.source())
