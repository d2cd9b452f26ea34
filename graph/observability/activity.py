"""What the cache has been doing lately, for the dashboard: hot keys and invalidations.

Both are bounded: a sampled frequency count trimmed to its leaders, and a short ring of
the latest invalidations. Invalidations come from this process (a mutation, the admin
mutation) and from the broadcast (`strata cache invalidate`, other instances); a process
also hears its own bumps on the broadcast, and those echoes are not counted twice.
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


BROADCAST = "broadcast"
"""The source of an invalidation heard on the broadcast that this process did not make."""
ECHO_SECONDS = 10.0
"""How long this process waits to hear its own bump back before forgetting it."""


class Activity:
    def __init__(self, recent: int = 50) -> None:
        self.hot_keys = HotKeys()
        self.hot_tags: Counter[str] = Counter()
        self.recent: deque[Invalidation] = deque(maxlen=recent)
        # This process's bumps whose broadcast has not come back yet: (monotonic, tags).
        self._unheard: deque[tuple[float, set[str]]] = deque(maxlen=256)

    def invalidated(self, tags: Iterable[str], source: str) -> None:
        """A bump this process made (`source`: mutation, admin, cli)."""
        tags = tuple(tags)
        self.recent.appendleft(Invalidation(time.time(), source, tags))
        self._unheard.append((time.monotonic(), set(tags)))
        self.hot_tags.update(tags)
        if len(self.hot_tags) > 4000:
            self.hot_tags = Counter(dict(self.hot_tags.most_common(1000)))

    def heard(self, tags: Iterable[str]) -> None:
        """A bump heard on the broadcast: recorded unless it is the echo of one of ours."""
        tags = tuple(tags)
        if not self._is_echo(set(tags)):
            self.recent.appendleft(Invalidation(time.time(), BROADCAST, tags))

    def _is_echo(self, tags: set[str]) -> bool:
        horizon = time.monotonic() - ECHO_SECONDS
        while self._unheard and self._unheard[0][0] < horizon:
            self._unheard.popleft()
        # One bump of ours may come back in several messages: match tag by tag.
        if not tags or not tags <= set().union(*(unheard for _, unheard in self._unheard)):
            return False
        for _, unheard in self._unheard:
            unheard -= tags
        while self._unheard and not self._unheard[0][1]:
            self._unheard.popleft()
        return True
