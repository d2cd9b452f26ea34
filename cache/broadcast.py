"""Listener of the invalidation channel: keeps this instance's L1 coherent with others.

redis-py re-subscribes by itself after a reconnect, but whatever was published during the
gap is lost without a trace. So the client here has no retries: every loss surfaces, and
this loop reconnects itself, telling the engine on each loss and on each (re)subscription
so it can flush L1 (invalidations may have been missed) and cap L1 TTLs meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

OnMessage = Callable[[Sequence[str], Sequence[int]], None]


def decode_message(data: bytes) -> tuple[list[str], list[int]]:
    tags, versions = msgpack.unpackb(data, raw=False)
    return [str(tag) for tag in tags], [int(v) for v in versions]


class InvalidationListener:
    def __init__(
        self,
        make_client: Callable[[], aioredis.Redis],
        channel: str,
        on_message: OnMessage,
        on_connected: Callable[[], None],
        on_lost: Callable[[], None],
        max_backoff: float = 1.0,
    ) -> None:
        self._make_client = make_client
        self._channel = channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._max_backoff = max_backoff
        self.connected = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.02
        while True:
            client = self._make_client()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message["type"]
                    if kind in (b"subscribe", "subscribe"):
                        backoff = 0.02
                        self.connected.set()
                        self._on_connected()
                    elif kind in (b"message", "message"):
                        self._handle(message["data"])
            except (RedisError, OSError) as error:
                logger.warning("cache invalidation broadcast lost: %r", error)
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                if was_connected:
                    self._on_lost()
                await _close_quietly(pubsub, client)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _handle(self, data: bytes) -> None:
        try:
            tags, versions = decode_message(data)
        except Exception:  # a foreign publisher on our channel must not stop the listener
            logger.warning("undecodable invalidation message ignored")
            return
        self._on_message(tags, versions)


async def _close_quietly(pubsub: aioredis.client.PubSub, client: aioredis.Redis) -> None:
    """Closes both even when cancelled meanwhile; the cancellation is then re-raised, so
    the listener's loop stops instead of reconnecting after its engine closed."""
    cancelled = False
    for close in (pubsub.aclose, client.aclose):
        try:
            await asyncio.shield(close())
        except asyncio.CancelledError:
            cancelled = True
        except (RedisError, OSError):
            pass
    if cancelled:
        raise asyncio.CancelledError
