"""In-process single flight: concurrent misses on one key share one load."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from cache.entry import Entry


class FlightAborted(Exception):
    """The leading caller was cancelled; followers load for themselves."""


class Flight:
    """One in-flight load. Its future is created only when a follower joins: most loads
    have none, and a batch of 20 misses then costs no futures at all."""

    __slots__ = ("_done", "_error", "_future", "_result", "tags")

    def __init__(self, tags: Iterable[str]) -> None:
        self.tags = tags
        self._future: asyncio.Future[Entry] | None = None
        self._done = False
        self._result: Entry | None = None
        self._error: BaseException | None = None

    @property
    def future(self) -> asyncio.Future[Entry]:
        """The outcome; created on first use, already settled if the load has landed (a
        follower may look only after the leader finished)."""
        if self._future is None:
            future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
            if self._done:
                if self._error is not None:
                    future.set_exception(self._error)
                else:
                    assert self._result is not None
                    future.set_result(self._result)
            self._future = future
        return self._future

    def resolve(self, entry: Entry) -> None:
        self._done, self._result = True, entry
        if self._future is not None:
            self._future.set_result(entry)

    def fail(self, error: BaseException) -> None:
        self._done, self._error = True, error
        if self._future is not None:
            self._future.set_exception(error)
            self._future.exception()  # followers may be gone: mark it retrieved


class SingleFlight:
    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def joinable(self, key: str) -> Flight | None:
        return self._flights.get(key)

    def lead(self, key: str, tags: Iterable[str]) -> Flight:
        flight = Flight(tags)
        self._flights[key] = flight
        return flight

    def land(self, key: str, flight: Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def detach(self, tags: Iterable[str]) -> None:
        """After an invalidation, a read must not join a load that started before it (that
        load may return pre-invalidation data): forget those flights, so new readers start
        their own. The detached flights still complete for the callers already waiting."""
        if not self._flights:
            return
        tagset = set(tags)
        stale = [key for key, flight in self._flights.items() if not tagset.isdisjoint(flight.tags)]
        for key in stale:
            del self._flights[key]

    def detach_all(self) -> None:
        self._flights.clear()

    def __len__(self) -> int:
        return len(self._flights)
