"""Every serving process publishes its figures to Redis every few seconds, under a key of
its own with a short TTL (cache.instances), so `strata cache stats` and `/dashboard` can
show the whole deployment. Publishing runs in the background, under the cache's Redis
deadline, and is skipped while Redis is away: it never fails or slows a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cache import TieredCache
from cache.background import BackgroundTasks
from cache.instances import InstanceBoard
from graph.observability.activity import Activity
from graph.observability.exposition import Scrape
from graph.observability.figures import TIERS, activity_figures, figures
from graph.observability.metrics import Metrics

log = logging.getLogger("strata")

TTL_FACTOR = 3
"""A record outlives its publishing interval this many times: one or two late publishes
do not drop a live instance, and a dead one is gone a few seconds later."""


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    host: str
    pid: int
    started_at: float = field(default_factory=time.time)

    @classmethod
    def of_this_process(cls) -> Identity:
        # Random, not host:pid: pids are reused, and containers all run as pid 1.
        return cls(secrets.token_hex(4), socket.gethostname(), os.getpid())

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "uptime": now - self.started_at,
            "published_at": now,
        }


def own_record(
    identity: Identity, metrics: Metrics, cache: TieredCache, activity: Activity
) -> dict[str, Any]:
    """This process's figures (its own registry, not its siblings' under --workers N)."""
    engine = cache.stats
    metrics.absorb_engine_stats(engine)
    return {
        "instance": identity.describe(time.time()),
        **figures(Scrape.of_registry(metrics.registry), engine, cache.status),
        **activity_figures(activity),
    }


def decode(raw: bytes) -> dict[str, Any] | None:
    """A published record, or None for anything that does not look like one (a record
    written by an incompatible version is skipped, not fatal)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return record if _well_formed(record) else None


def _numbers(found: Any, *names: str) -> bool:
    return isinstance(found, dict) and all(isinstance(found.get(n), int | float) for n in names)


def _items(record: dict[str, Any], name: str) -> list[Any]:
    found = record.get(name, [])
    return found if isinstance(found, list) else [None]  # [None] fails every item check


def _well_formed(record: dict[str, Any]) -> bool:
    """What the deployment view reads without checking again."""
    instance = record.get("instance")
    tiers = record.get("tiers")
    if not isinstance(instance, dict) or not isinstance(tiers, dict):
        return False
    return (
        _numbers(instance, "pid", "started_at", "uptime", "published_at")
        and isinstance(instance.get("id"), str)
        and isinstance(instance.get("host"), str)
        and _numbers(record.get("requests"), "total")
        and all(_numbers(tiers.get(name), "hits", "misses") for name in TIERS)
        and all(
            _numbers(item, "reads") and isinstance(item.get("key"), str)
            for item in _items(record, "hot_keys")
        )
        and all(
            _numbers(item, "invalidations") and isinstance(item.get("tag"), str)
            for item in _items(record, "hot_tags")
        )
        and all(
            _numbers(item, "at")
            and isinstance(item.get("source"), str)
            and isinstance(item.get("tags"), list)
            for item in _items(record, "recent_invalidations")
        )
    )


class Presence:
    """Publishes this process's record every `interval_s` seconds and reads everyone's."""

    def __init__(
        self,
        identity: Identity,
        cache: TieredCache,
        build: Callable[[], dict[str, Any]],
        interval_s: float,
    ) -> None:
        self.identity = identity
        self.interval_s = interval_s
        self.ttl_s = interval_s * TTL_FACTOR
        self._cache = cache
        self._board = InstanceBoard(cache, self.ttl_s)
        self._build = build
        # The engine's own task set: a cancel that lands inside a Redis call can come out
        # as a timeout, which the loop would take for a failed publish; it re-cancels.
        self._tasks: BackgroundTasks | None = None

    def start(self) -> None:
        config = self._cache.config
        if not config.enabled or config.redis_url is None:
            return  # no Redis to publish to: the dashboard shows this process alone
        if self._tasks is None:
            self._tasks = BackgroundTasks()
            self._tasks.spawn(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self._board.publish(self.identity.id, orjson.dumps(self._build()))
            except Exception:  # a figure that fails to build must not end the loop
                log.exception("could not publish this instance's figures")
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._tasks is None:
            return
        await self._tasks.cancel_all()
        self._tasks = None
        await self._board.withdraw(self.identity.id)

    async def records(self, timeout_s: float) -> list[dict[str, Any]]:
        return await live_records(self._board, timeout_s)


async def live_records(board: InstanceBoard, timeout_s: float) -> list[dict[str, Any]]:
    """Every live instance's latest record. Raises when Redis cannot be read."""
    raw = await board.records(timeout_s)
    return [record for record in map(decode, raw.values()) if record is not None]
