"""Per-task counts of what the engine did, for one request's statistics.

The process counters (``cache.counters``) add up every request; an observation opened
around one request sees only that request's hits, misses, loads and Redis trouble,
including those of tasks it starts (DataLoader batches inherit the context).
"""

from __future__ import annotations

from contextvars import ContextVar, Token

FIELDS = (
    "l1_hits",
    "l1_misses",
    "l2_hits",
    "l2_misses",
    "loads",
    "loaded_keys",
    "integrity_failures",
    "redis_errors",
    "redis_timeouts",
    "redis_round_trips",
)


class Observation:
    """Counts for one task, open while used as a context manager (a class rather than a
    generator-based one: it is entered on every request and must cost next to nothing)."""

    __slots__ = ("_counts", "_token")

    def __init__(self) -> None:
        # Only the reported fields, all from the start: a report is one copy.
        self._counts: dict[str, int] = dict.fromkeys(FIELDS, 0)
        self._token: Token[Observation | None] | None = None

    def __enter__(self) -> Observation:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def add(self, name: str, n: int) -> None:
        counts = self._counts
        if name in counts:  # the events a request's statistics do not report are not kept
            counts[name] += n

    def counts(self) -> dict[str, int]:
        return self._counts.copy()


_current: ContextVar[Observation | None] = ContextVar("cache_observation", default=None)


def current() -> Observation | None:
    """The observation open in this task, if any."""
    return _current.get()
