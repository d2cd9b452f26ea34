"""A domain-free two-tier cache for async Python services (built for Strawberry GraphQL).

L1 is a bounded W-TinyLFU memory store per process; L2 is Redis, shared by every instance.
Values carry the *tags* they depend on; invalidating a tag makes every value that depends on
it a miss, in both tiers and on every instance, and no loader that read its source before
the invalidation can store its old value afterwards.

Public API::

    config = CacheConfig(redis_url="redis://localhost:6379/0", namespace="app:v1",
                         secret=b"...", l1_max_entries=10_000, default_ttl=300.0,
                         redis_timeout_ms=50, enabled=True)
    async with TieredCache(config) as cache:        # or: await cache.start() / close()
        # Batch read-through (a dataloader's batch function). ``load(missing_keys)``
        # runs once, only for keys neither tier had; a key it leaves out of its result
        # does not exist: that answer is cached too (short TTL) and comes back as None.
        users = await cache.get_many_or_load(
            ["User:1", "User:2"], load_users, ttl=60, tags=lambda key: [key])
        # Single key, with single flight: concurrent misses run ``load`` once.
        # ``load()`` returns the value, or NOT_FOUND (-> None to the caller).
        count = await cache.get_or_load("User:1:postCount", load_count, ttl=30,
                                        tags=["User:1", "Post"])
        # After the write committed, before answering: awaited, one round trip.
        await cache.invalidate(["User:1", "Post"])
        # With an outbox (TieredCache(config, outbox), see cache.outbox): the row the
        # write recorded its tags in, in its own transaction; retried by every
        # instance's relay until Redis applied it.
        await cache.invalidate(["User:1", "Post"], row=row_id)
        # Composition (e.g. a whole-response cache):
        with cache.recording() as rec:
            ...                                     # reads through the cache
        await cache.set_entry(response_key, body, rec.tag_versions, ttl=30)
        entry = await cache.get_entry(response_key)  # Entry | None; entry.value
        # The same, one tier at a time (L1 synchronously), and values with their Entry
        # (the versions they were validated against), for composites built per part:
        entry = cache.get_local_entry(key) or await cache.get_remote_entry(key)
        cache.set_local_entry(key, value, versions, ttl=30)   # L1 only
        entries = await cache.get_many_entries_or_load(keys, load, tags=lambda key: [key])
        cache.stats                                   # dict snapshot of counters
        cache.status                                  # "ok" | "degraded" | ...

Contract details:

* Not found is returned as ``None`` (and a loader's ``None`` value is also ``None``).
  ``get_entry`` returns an :class:`Entry` whose ``found`` tells them apart.
* ``tags(key)`` must be known before the load: their versions are read before the
  loader runs. Every value also depends on :data:`GLOBAL_TAG` (``"*"``): invalidating it
  drops the whole namespace.
* Values must be msgpack-serializable (dicts, lists, str, bytes, numbers, bool, None);
  tuples come back as lists. Each reader gets its own decoded copy.
* Redis errors never reach the caller: reads fall back to L1 and the loader, writes to
  L2 are skipped, invalidations are queued and replayed before L2 is trusted again.
  Loader exceptions do reach the caller, and nothing is cached for them.
* ``enabled=False`` calls loaders directly and stores nothing.

Also here: :class:`CacheAdmin` (operator listing, inspection, flush), :class:`TieredAiocache`
(the engine as an aiocache backend, for ``aiocache.cached`` / ``multi_cached``) and
:func:`compose_key` (an escaped, injective key encoder). The Strawberry glue (per-field
caching, the per-request cache) is in :mod:`cache.strawberry`: ``import cache`` does not
need Strawberry.
"""

from cache.admin import CacheAdmin
from cache.aiocache_backend import TieredAiocache
from cache.config import CacheConfig
from cache.engine import TieredCache
from cache.entry import NOT_FOUND, Entry, TagVersions
from cache.keys import GLOBAL_TAG, compose_key
from cache.observation import Observation
from cache.recording import Recorder
from cache.slots import Lease

__all__ = [
    "GLOBAL_TAG",
    "NOT_FOUND",
    "CacheAdmin",
    "CacheConfig",
    "Entry",
    "Lease",
    "Observation",
    "Recorder",
    "TagVersions",
    "TieredAiocache",
    "TieredCache",
    "compose_key",
]
