"""In-process counters of the engine: plain integers, cheap to bump, copied on demand."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class CacheStats:
    """Monotonic counters (and two gauges) an operator asks about.

    Mutated only from the event loop thread, so no locking; :meth:`snapshot` copies.
    """

    l1_hits: int = 0
    l1_misses: int = 0
    l2_hits: int = 0
    l2_misses: int = 0
    not_found_hits: int = 0
    loads: int = 0
    """Calls of a loader."""
    loaded_keys: int = 0
    """Keys asked of loaders, summed: ``loaded_keys / loads`` is the mean batch size."""
    load_batch_max: int = 0
    single_flight_joins: int = 0
    """Reads that waited for another caller's in-flight load instead of loading."""
    l1_sets: int = 0
    l1_stale_rejected: int = 0
    """Loaded values kept out of L1 because a tag was invalidated during the load."""
    l2_sets: int = 0
    l2_stale_rejected: int = 0
    """Fills Redis refused because a tag version moved between the read and the fill."""
    l2_invalid_versions: int = 0
    """Entries found in Redis whose recorded tag versions are no longer current."""
    integrity_failures: int = 0
    """Entries in Redis that failed their HMAC check or did not decode."""
    redis_errors: int = 0
    redis_timeouts: int = 0
    redis_round_trips: int = 0
    """Commands or scripts sent to Redis (attempted, whether or not they succeeded), by
    the engine's reads, fills, invalidations and probes; not the pub/sub listener."""
    redis_skipped: int = 0
    """Redis calls not attempted because the circuit breaker was open."""
    breaker_opened: int = 0
    breaker_closed: int = 0
    breaker_state: str = "closed"
    invalidations: int = 0
    """Calls of ``invalidate``."""
    invalidated_tags: int = 0
    invalidations_received: int = 0
    """Broadcast messages from other instances (or ourselves) applied to L1."""
    pending_invalidations: int = 0
    """Tags invalidated while Redis was unreachable, waiting to be replayed (gauge)."""
    l1_flushes: int = 0
    broadcast_connected: bool = False
    broadcast_connects: int = 0
    broadcast_lost: int = 0
    l1_evictions: int = 0
    """Entries the L1 policy evicted to stay within its bound (filled in by snapshots)."""
    l1_size: int = 0
    """Entries in L1 right now (gauge, filled in by snapshots)."""

    def snapshot(self) -> dict[str, Any]:
        """A detached copy, safe to serialize or diff."""
        return asdict(self)
