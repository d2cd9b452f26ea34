"""In-process single flight: concurrent misses on one key share one load."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping

from cache.entry import Entry


class FlightAborted(Exception):
    """The leading caller was cancelled; followers load for themselves."""


class Flight:
    """One in-flight load of a batch of keys, resolved with every key's entry.

    One flight per batch rather than per key: a batch of 20 misses costs one object, and
    its future is created only when a follower joins (most loads have none).
    """

    __slots__ = ("_done", "_error", "_future", "_result", "tags")

    def __init__(self, tags: Collection[str]) -> None:
        self.tags = tags
        """Every tag the batch's entries depend on."""
        self._future: asyncio.Future[Mapping[str, Entry]] | None = None
        self._done = False
        self._result: Mapping[str, Entry] | None = None
        self._error: BaseException | None = None

    @property
    def future(self) -> asyncio.Future[Mapping[str, Entry]]:
        """The outcome; created on first use, already settled if the load has landed (a
        follower may look only after the leader finished)."""
        if self._future is None:
            future: asyncio.Future[Mapping[str, Entry]] = asyncio.get_running_loop().create_future()
            if self._done:
                if self._error is not None:
                    future.set_exception(self._error)
                else:
                    assert self._result is not None
                    future.set_result(self._result)
            self._future = future
        return self._future

    def resolve(self, entries: Mapping[str, Entry]) -> None:
        self._done, self._result = True, entries
        if self._future is not None:
            self._future.set_result(entries)

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

    def lead(self, keys: Iterable[str], tags: Collection[str]) -> Flight:
        """A flight for ``keys``, which later readers of any of them join."""
        flight = Flight(tags)
        self._flights.update(dict.fromkeys(keys, flight))
        return flight

    def land(self, keys: Iterable[str], flight: Flight) -> None:
        flights = self._flights
        for key in keys:
            if flights.get(key) is flight:
                del flights[key]

    def detach(self, tags: Iterable[str]) -> None:
        """After an invalidation, a read must not join a load that started before it (that
        load may return pre-invalidation data): forget those flights, so new readers start
        their own. The detached flights still complete for the callers already waiting."""
        if not self._flights:
            return
        tagset = set(tags)
        distinct = {id(flight): flight for flight in self._flights.values()}
        stale = {ident for ident, flight in distinct.items() if not tagset.isdisjoint(flight.tags)}
        if stale:
            self._flights = {
                key: flight for key, flight in self._flights.items() if id(flight) not in stale
            }

    def detach_all(self) -> None:
        self._flights.clear()

    def __len__(self) -> int:
        return len(self._flights)
