"""The engine's events, each counted once: :meth:`Counters.add` is the only hook.

One call bumps the process total (what ``TieredCache.stats``, the CLI and Prometheus read)
and the observation open in the current task (one request's statistics). Counts are plain
integers mutated from the event loop thread only, so no locking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from cache import observation

COUNTERS: Final[Mapping[str, str]] = {
    "l1_hits": "L1 entries served",
    "l1_misses": "L1 lookups that found nothing current",
    "l2_hits": "Redis entries served",
    "l2_misses": "Redis lookups that found nothing current",
    "not_found_hits": "Hits on the cached 'does not exist' sentinel, from Redis",
    "loads": "Calls of a loader",
    "loaded_keys": "Keys asked of loaders, summed: loaded_keys / loads is the mean batch",
    "single_flight_joins": "Reads that waited for another caller's load instead of loading",
    "l1_sets": "Entries written to L1",
    "l1_stale_rejected": "Loaded values kept out of L1: a tag was invalidated during the load",
    "l2_sets": "Entries written to Redis",
    "l2_stale_rejected": "Fills Redis refused: a tag version moved between read and fill",
    "l2_invalid_versions": "Redis entries whose recorded tag versions are no longer current",
    "integrity_failures": "Redis entries that failed their HMAC check or did not decode",
    "redis_errors": "Redis calls that failed (not timeouts)",
    "redis_timeouts": "Redis calls that ran out of their deadline",
    "redis_round_trips": (
        "Commands or scripts sent to Redis by reads, fills, invalidations and probes "
        "(attempted, whether or not they succeeded); not the pub/sub listener"
    ),
    "redis_skipped": "Redis calls not attempted because the circuit breaker was open",
    "redis_redirects": "Cluster commands redirected (MOVED, ASK, TRYAGAIN) or reloaded",
    "breaker_opened": "Times the circuit breaker opened",
    "breaker_closed": "Times a probe closed the circuit breaker",
    "node_breaker_opened": "Times a Redis Cluster node's breaker opened (that node skipped)",
    "node_breaker_closed": "Times a Redis Cluster node's breaker closed again",
    "invalidations": "Calls of invalidate",
    "invalidated_tags": "Distinct tags invalidated, summed over calls",
    "invalidations_received": "Broadcast messages (from any instance) applied to L1",
    "l1_flushes": "Times L1 was emptied (broadcast lost or regained, Redis back)",
    "broadcast_connects": "Times the invalidation listener (re)subscribed",
    "broadcast_lost": "Times the invalidation listener lost its connection",
}


class Counters:
    __slots__ = ("_counts", "load_batch_max")

    def __init__(self) -> None:
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.load_batch_max = 0
        """The largest batch a loader was asked for (a peak, not a count)."""

    def add(self, name: str, n: int = 1) -> None:
        """Counts ``n`` events of ``name`` (one of :data:`COUNTERS`: an unknown name raises
        ``KeyError``, so a misspelt event cannot go silently uncounted)."""
        self._counts[name] += n
        open_observation = observation.current()
        if open_observation is not None and n:
            open_observation.add(name, n)

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """A detached copy, safe to serialize or diff."""
        return {**self._counts, "load_batch_max": self.load_batch_max}
