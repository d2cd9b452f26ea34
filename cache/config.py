"""Configuration of one cache engine instance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Everything a :class:`~cache.TieredCache` needs; immutable once built.

    Durations are seconds (floats) unless the name says otherwise.
    """

    redis_url: str | None
    """``redis://``, ``rediss://`` or ``unix://`` URL (ACL user and password allowed).
    ``None`` runs the memory tier only."""
    namespace: str
    """Prefix of every Redis key and of the broadcast channel, e.g. ``"strata:v1"``.
    Bump it when the shape of cached values changes."""
    secret: bytes
    """HMAC-SHA256 key that signs every entry written to Redis."""
    l1_max_entries: int = 10_000
    """Bound of the in-process tier; 0 disables it (every read goes to Redis)."""
    l1_max_bytes: int = 64 * 1024 * 1024
    """Byte bound of the in-process tier (encoded values and their tag stamps): values
    can carry client text, so a bound on entries alone does not bound memory."""
    default_ttl: float = 300.0
    """TTL of values stored without one of their own."""
    redis_timeout_ms: int = 50
    """Deadline of each Redis call; past it the tier is skipped for that call."""
    enabled: bool = True
    """False bypasses every tier: loaders are called directly."""
    not_found_ttl: float = 30.0
    """TTL of the "does not exist" sentinel: short, so a late creation shows up soon
    even if its invalidation were lost."""
    ttl_jitter: float = 0.1
    """Redis TTLs are stretched by a random factor in [0, jitter) so keys written
    together do not expire together."""
    tag_ttl: float = 86_400.0
    """TTL of tag version keys in Redis. An entry that outlives its tag's version key is
    simply a miss (the version is recreated at a new value), so this only needs to exceed
    typical entry TTLs."""
    degraded_l1_ttl: float = 1.0
    """Cap of L1 TTLs while the invalidation broadcast (or Redis) is unavailable: the
    longest another instance's write can stay invisible here."""
    breaker_failure_threshold: int = 3
    """Consecutive Redis failures that open the circuit breaker."""
    breaker_reset_seconds: float = 1.0
    """How long an open breaker waits before probing Redis again."""
    redis_max_connections: int = 64
    """Connection cap of the Redis pool; callers wait for a free connection (bounded by
    the Redis timeout) rather than fail."""
    redis_cluster: str = "auto"
    """``auto`` asks the server at start (``INFO cluster``) whether it is a Redis Cluster;
    ``on`` / ``off`` force it. On a cluster, keys spread over every slot and each batch
    costs one round trip per node involved (``cluster_tier.py``)."""
    max_pending_invalidations: int = 10_000
    """Invalidations made while Redis was unreachable are replayed when it returns; past
    this many distinct tags the whole namespace is invalidated instead."""
    outbox_relay_seconds: float = 1.0
    """Period of the outbox relay (with an outbox): how often unapplied rows are retried
    and, while the broadcast is lost, how often new rows are read."""
    outbox_grace_seconds: float = 2.0
    """Age of an unapplied outbox row before a relay applies it: its writer normally does
    within milliseconds (a relay racing it only bumps the tags twice)."""
    outbox_retention_seconds: float = 600.0
    """Applied outbox rows older than this are deleted."""

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("namespace must not be empty")
        if self.l1_max_bytes <= 0:
            raise ValueError("l1_max_bytes must be positive")
        if self.l1_max_entries < 0:
            raise ValueError("l1_max_entries must be >= 0")
        if self.default_ttl <= 0 or self.not_found_ttl <= 0 or self.tag_ttl <= 0:
            raise ValueError("TTLs must be positive")
        if self.degraded_l1_ttl <= 0:
            raise ValueError("degraded_l1_ttl must be positive")
        if self.redis_timeout_ms <= 0:
            raise ValueError("redis_timeout_ms must be positive")
        if not 0 <= self.ttl_jitter < 1:
            raise ValueError("ttl_jitter must be in [0, 1)")
        if self.breaker_failure_threshold < 1 or self.breaker_reset_seconds <= 0:
            raise ValueError("breaker thresholds must be positive")
        if min(self.outbox_relay_seconds, self.outbox_retention_seconds) <= 0:
            raise ValueError("outbox periods must be positive")
        if self.outbox_grace_seconds < 0:
            raise ValueError("outbox_grace_seconds must be >= 0")
        if self.redis_cluster not in ("auto", "on", "off"):
            raise ValueError("redis_cluster must be auto, on or off")
        if self.enabled and not self.secret:
            raise ValueError("secret must not be empty")
