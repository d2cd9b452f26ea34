"""Opening L2: one Redis or a Redis Cluster, with the broadcast listener that goes with it.

Which one is decided at start (``CacheConfig.redis_cluster``: ``auto`` asks the server);
the engine then talks to either through the same :class:`~cache.redis_tier.L2Tier` methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cache.broadcast import InvalidationListener
from cache.cluster_broadcast import ClusterListener
from cache.cluster_tier import ClusterTier, serves_a_cluster
from cache.config import CacheConfig
from cache.counters import Counters
from cache.health import Listener
from cache.keys import KeySpace
from cache.redis_tier import L2Tier, RedisTier, build_listener_client

OnBroadcast = Callable[[Sequence[str], Sequence[int]], None]


async def on_a_cluster(config: CacheConfig, url: str) -> bool:
    mode = config.redis_cluster
    if mode != "auto":
        return mode == "on"
    return await serves_a_cluster(url, max(config.redis_timeout_ms / 1000, 1.0))


async def open_l2(
    config: CacheConfig,
    url: str,
    keys: KeySpace,
    counters: Counters,
    handlers: tuple[OnBroadcast, Callable[[], None], Callable[[], None]],
    on_node_back: Callable[[], None],
) -> tuple[L2Tier, Listener]:
    """The tier and its listener (not started). ``handlers``: a broadcast received, the
    subscription (re)connected, the subscription lost."""
    timeout_s = config.redis_timeout_ms / 1000
    listener_timeout_s = max(timeout_s, 1.0)
    if await on_a_cluster(config, url):
        keys.spread_over_slots()
        cluster = ClusterTier(url, keys, config, counters, on_node_back=on_node_back)
        listener: Listener = ClusterListener(
            cluster.masters, listener_timeout_s, keys.channel, *handlers
        )
        return cluster, listener
    redis = RedisTier(url, keys, timeout_s, config.redis_max_connections)
    listener = InvalidationListener(
        lambda: build_listener_client(url, listener_timeout_s), keys.channel, *handlers
    )
    return redis, listener
