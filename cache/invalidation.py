"""Invalidation: the local half (at once, in this process), Redis (through the health
guard, or queued), and the broadcast from other instances."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from cache.counters import Counters
from cache.health import RedisHealth
from cache.memory import TinyLFUStore
from cache.singleflight import SingleFlight
from cache.versions import TagVersionView

logger = logging.getLogger(__name__)

OnReceived = Callable[[Sequence[str]], None]


class Invalidator:
    def __init__(
        self,
        counters: Counters,
        view: TagVersionView,
        l1: TinyLFUStore | None,
        flights: SingleFlight,
        health: RedisHealth,
    ) -> None:
        self._counters = counters
        self._view = view
        self._l1 = l1
        self._flights = flights
        self._health = health
        self._observers: list[OnReceived] = []

    def observe(self, callback: OnReceived) -> None:
        self._observers.append(callback)

    async def invalidate(self, tags: Iterable[str], row: int | None = None) -> int:
        unique = list(dict.fromkeys(tags))
        if not unique:
            return 0
        self._counters.add("invalidations")
        self._counters.add("invalidated_tags", len(unique))
        self.mark(unique, row)
        await self._health.apply_pending()
        return len(unique)

    def mark(self, tags: Sequence[str], row: int | None = None) -> None:
        """The local half of an invalidation (of outbox ``row``, if any), before any await:
        from here on this process serves nothing that depended on ``tags``, no load already
        in flight may fill L1 or be joined, and with Redis configured the tags stay pending
        until their bump is applied."""
        self.drop(tags)
        if self._health.redis is not None:
            self._view.pending.mark(tags, row)

    def drop(self, tags: Sequence[str]) -> None:
        """Entries depending on ``tags`` stop matching the view, and loads in flight for
        them may neither fill L1 nor be joined."""
        self._view.drop(tags)
        self._flights.detach(tags)

    def on_broadcast(self, tags: Sequence[str], versions: Sequence[int]) -> None:
        self._counters.add("invalidations_received")
        self._view.merge_late(zip(tags, versions, strict=True))
        self._flights.detach(tags)
        for observer in self._observers:
            try:
                observer(tags)
            except Exception:  # an observer's bug must not stop the listener
                logger.exception("invalidation observer failed")

    def on_broadcast_connected(self) -> None:
        self.flush_l1()
        self._counters.add("broadcast_connects")

    def on_broadcast_lost(self) -> None:
        # Messages published while disconnected are lost: nothing in L1 can be trusted.
        self.flush_l1()
        self._counters.add("broadcast_lost")

    def flush_l1(self) -> None:
        self._view.flush()
        self._flights.detach_all()
        if self._l1 is not None:
            self._l1.clear()
        self._counters.add("l1_flushes")
