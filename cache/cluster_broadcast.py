"""The invalidation listener on a Redis Cluster: a subscription on every master.

A ``PUBLISH`` on a cluster reaches the subscribers of every node (the cluster bus carries
it), so one subscription, on the *reader* master, receives every message. The other
masters each hold a subscription too, to a channel nobody publishes on: its loss is how
this instance learns, at once, that a master is gone, even with no traffic of its own for
that node. Another instance's bumps of tags on that node then stay pending there,
unpublished, so this instance does what it does when the single Redis's broadcast is lost:
flush L1 and cap L1 TTLs (``connected`` is clear until every master's subscription is
back, and each (re)subscription flushes L1 again).

Every ``refresh_s`` the listener reads the masters again from the cluster client's slot
map (it follows a failover or a new master) and, when the reader's subscription is down
while another is up, moves the reader there; L1 was flushed when the reader was lost, so
messages published during the move cannot be missed silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from cache.broadcast import InvalidationListener, OnMessage
from cache.redis_tier import build_listener_client

logger = logging.getLogger(__name__)

Masters = Callable[[], Awaitable[dict[str, str]]]
"""``{node name: URL}`` of the cluster's masters now."""

LIVENESS_SUFFIX: Final = ":liveness"


class ClusterListener:
    def __init__(
        self,
        masters: Masters,
        connect_timeout_s: float,
        channel: str,
        on_message: OnMessage,
        on_connected: Callable[[], None],
        on_lost: Callable[[], None],
        refresh_s: float = 1.0,
    ) -> None:
        self._masters = masters
        self._connect_timeout_s = connect_timeout_s
        self._channel = channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._refresh_s = refresh_s
        self._urls: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: set[str] = set()
        self._generation = 0
        self._current: dict[str, int] = {}
        self._reader: str | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                await self._follow()
                await asyncio.sleep(self._refresh_s)
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _follow(self) -> None:
        """Subscribes on new masters, drops the ones no longer in the slot map, and keeps
        the reader on a live master."""
        try:
            self._urls = await self._masters()
        except Exception as error:  # unreachable cluster: keep what we have, try again
            logger.debug("cluster masters unknown for now: %r", error)
            return
        for name in set(self._tasks) - set(self._urls):
            self._stop(name)
            self._on_lost()
        reader = self._reader
        if reader not in self._urls or (reader not in self._live and self._live):
            self._reader = min(self._live or self._urls)
            for moved in (reader, self._reader):  # both change channels
                if moved in self._tasks:
                    self._stop(moved)
        for name in self._urls:
            if name not in self._tasks:
                self._tasks[name] = asyncio.create_task(self._subscription(name).run())
        self._update()

    def _stop(self, name: str | None) -> None:
        """Ends a subscription; the callbacks of an ended one are ignored from now on."""
        if name is not None:
            self._tasks.pop(name).cancel()
            self._current.pop(name, None)
            self._live.discard(name)

    def _subscription(self, name: str) -> InvalidationListener:
        url, timeout_s = self._urls[name], self._connect_timeout_s
        reads = name == self._reader
        self._generation += 1
        generation = self._current[name] = self._generation

        def on_message(tags: Sequence[str], versions: Sequence[int]) -> None:
            self._on_message(tags, versions)

        return InvalidationListener(
            lambda: build_listener_client(url, timeout_s),
            self._channel if reads else self._channel + LIVENESS_SUFFIX,
            on_message,
            lambda: self._up(name, generation),
            lambda: self._down(name, generation),
        )

    def _up(self, name: str, generation: int) -> None:
        if self._current.get(name) != generation:
            return
        self._live.add(name)
        self._on_connected()
        self._update()

    def _down(self, name: str, generation: int) -> None:
        if self._current.get(name) != generation:
            return
        self._live.discard(name)
        self._on_lost()
        self._update()

    def _update(self) -> None:
        if self._tasks and self._live >= set(self._tasks):
            self.connected.set()
        else:
            self.connected.clear()
