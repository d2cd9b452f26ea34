"""The invalidation listener on a Redis Cluster: one subscription per master.

A ``PUBLISH`` on a cluster reaches the subscribers of every node (the cluster bus carries
it), so one subscription would receive every message. One per master is held anyway: its
loss is how this instance learns, at once, that a master is gone, even when it has no
traffic of its own for that node. Another instance's invalidations of tags on that node
are then stuck in its pending set, unpublished, so this instance does what it does when
the single Redis's broadcast is lost: flush L1 and cap L1 TTLs (``connected`` is clear
until every master's subscription is back). Messages are taken from one subscription
only (the first live master by name) so each is applied once; when that one is lost,
L1 is flushed anyway and the next takes over.

The set of masters is read again every ``refresh_s`` from the cluster client's slot map,
so the listener follows a failover or a new master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from cache.broadcast import InvalidationListener, OnMessage
from cache.redis_tier import build_listener_client

logger = logging.getLogger(__name__)

Masters = Callable[[], Awaitable[dict[str, str]]]
"""``{node name: URL}`` of the cluster's masters now."""


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
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: set[str] = set()
        self.connected = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                await self._follow()
                await asyncio.sleep(self._refresh_s)
        finally:
            for task in self._tasks.values():
                task.cancel()
            for task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _follow(self) -> None:
        """Subscribes to new masters and drops the ones no longer in the slot map."""
        try:
            masters = await self._masters()
        except Exception as error:  # unreachable cluster: keep what we have, try again
            logger.debug("cluster masters unknown for now: %r", error)
            return
        for name in set(self._tasks) - set(masters):
            self._tasks.pop(name).cancel()  # its listener reports the loss as it stops
        for name, url in masters.items():
            if name not in self._tasks:
                self._tasks[name] = asyncio.create_task(self._subscription(name, url).run())
        self._update()

    def _subscription(self, name: str, url: str) -> InvalidationListener:
        timeout_s = self._connect_timeout_s

        def on_message(tags: Sequence[str], versions: Sequence[int]) -> None:
            if name == self._reader():
                self._on_message(tags, versions)

        return InvalidationListener(
            lambda: build_listener_client(url, timeout_s),
            self._channel,
            on_message,
            lambda: self._up(name),
            lambda: self._down(name),
        )

    def _reader(self) -> str | None:
        return min(self._live) if self._live else None

    def _up(self, name: str) -> None:
        self._live.add(name)
        self._on_connected()
        self._update()

    def _down(self, name: str) -> None:
        self._live.discard(name)
        self._on_lost()
        self._update()

    def _update(self) -> None:
        if self._tasks and self._live >= set(self._tasks):
            self.connected.set()
        else:
            self.connected.clear()
