"""A circuit breaker: stop calling a Redis that keeps failing, probe it now and then."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    """Redis is called."""
    OPEN = "open"
    """Redis is not called until the reset delay has passed."""
    PROBING = "probing"
    """One probe is in flight; everything else still skips Redis."""


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0

    @property
    def closed(self) -> bool:
        return self.state is BreakerState.CLOSED

    def record_success(self) -> None:
        self._failures = 0

    def record_failure(self) -> bool:
        """Returns True when this failure opened the breaker."""
        self._failures += 1
        if self.state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self.trip()
            return True
        return False

    def trip(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()

    def begin_probe(self, force: bool = False) -> bool:
        """True (and state PROBING) when the breaker is open and its delay has passed (or
        ``force``: a readiness check asks now): the caller must then run one probe and
        report it with ``close`` or ``trip``."""
        if self.state is BreakerState.OPEN and (
            force or self._clock() - self._opened_at >= self.reset_seconds
        ):
            self.state = BreakerState.PROBING
            return True
        return False

    def close(self) -> None:
        self.state = BreakerState.CLOSED
        self._failures = 0
