"""Per-request figures counted in plain integers, moved into prometheus_client on scrape.

prometheus_client takes a lock and walks the buckets on every histogram `observe`: on a
response-cache hit, its two latency histograms cost more than the rest of the metrics'
work together (docs/benchmarks.md, "The response-cache hit path"). They count here
instead, from the event loop's thread only (so no lock), and `fold` adds what they
counted to the real series whenever they are read (/metrics, /dashboard, and the app's
once-a-second sync). The series, their names, labels and buckets do not change.

With several worker processes (prometheus_client's multiprocess mode) a worker's /metrics
adds up every worker's files, which a fold in another process would not reach in time:
there `Metrics` hands out the prometheus_client children themselves.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Protocol

from prometheus_client import Counter, Histogram


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


class Incrementer(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Unobserved:
    """Where observations go while the app's metrics are off."""

    __slots__ = ()

    def observe(self, amount: float) -> None:
        pass

    def inc(self, amount: float = 1) -> None:
        pass


class PlainHistogram:
    """A histogram child's observations as bucket counts and a sum, held until `fold`."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        # The bucket prometheus_client's own `observe` picks: the first bound >= amount.
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def fold(self) -> None:
        counts, self._counts = self._counts, [0] * len(self._bounds)
        if not any(counts):
            return
        total, self._sum = self._sum, 0.0
        # prometheus_client has no public call to add many observations at once; its
        # child keeps one value per bucket (non-cumulative) and one for the sum.
        buckets = self._child._buckets
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
        self._child._sum.inc(total)


class PlainCounter:
    """A counter child's increments, held until `fold`."""

    __slots__ = ("_child", "_count")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self._count = 0.0

    def inc(self, amount: float = 1) -> None:
        self._count += amount

    def fold(self) -> None:
        count, self._count = self._count, 0.0
        if count:
            self._child.inc(count)
