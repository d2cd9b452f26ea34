"""The Strawberry glue: per-field caching, the per-request view of the cache, the
whole-response cache and persisted queries.

Kept out of ``cache`` itself so that the engine imports without Strawberry installed.
"""

from cache.strawberry.consumption import CachePolicy, Scope
from cache.strawberry.fields import CacheAware, CachedField, RequestCache

__all__ = ["CacheAware", "CachePolicy", "CachedField", "RequestCache", "Scope"]
