"""What the cache has been doing lately, for the dashboard: hot keys and invalidations.

Both are bounded: a sampled frequency count trimmed to its leaders, and a short ring of
the latest invalidations.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass


class HotKeys:
    """Approximate read counts of cache keys: one read in `sample` is counted, and when
    more than `limit` keys are tracked only the `keep` most read survive."""

    def __init__(self, sample: int = 4, limit: int = 4000, keep: int = 1000) -> None:
        self._counts: Counter[str] = Counter()
        self._tick = itertools.cycle(range(sample))
        self._sample = sample
        self._limit = limit
        self._keep = keep

    def seen(self, keys: Iterable[str]) -> None:
        if next(self._tick):
            return
        self._counts.update(keys)
        if len(self._counts) > self._limit:
            self._counts = Counter(dict(self._counts.most_common(self._keep)))

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        return [(key, count * self._sample) for key, count in self._counts.most_common(n)]


@dataclass(frozen=True, slots=True)
class Invalidation:
    at: float
    source: str
    tags: tuple[str, ...]


class Activity:
    def __init__(self, recent: int = 50) -> None:
        self.hot_keys = HotKeys()
        self.hot_tags: Counter[str] = Counter()
        self.recent: deque[Invalidation] = deque(maxlen=recent)

    def invalidated(self, tags: Iterable[str], source: str) -> None:
        tags = tuple(tags)
        self.recent.appendleft(Invalidation(time.time(), source, tags))
        self.hot_tags.update(tags)
        if len(self.hot_tags) > 4000:
            self.hot_tags = Counter(dict(self.hot_tags.most_common(1000)))
