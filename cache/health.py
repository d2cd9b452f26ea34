"""Redis health: every engine call to Redis goes through :meth:`RedisHealth.call`.

A call runs under the engine's deadline; failures count toward the circuit breaker, and
while it is open Redis is skipped. A half-open probe (triggered by traffic, by the idle
watch or by a readiness check) replays the invalidations that could not reach Redis, and
only then is Redis trusted again, with L1 flushed, since broadcasts may have been missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from redis.exceptions import RedisError

from cache.background import BackgroundTasks
from cache.breaker import CircuitBreaker
from cache.broadcast import InvalidationListener
from cache.cluster_broadcast import ClusterListener
from cache.config import CacheConfig
from cache.counters import Counters
from cache.deadline import Deadline
from cache.keys import GLOBAL_TAG
from cache.redis_tier import L2Tier
from cache.versions import TagVersionView

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_FAILURES: Final = (RedisError, OSError, TimeoutError)
MAX_TAGS_PER_BUMP: Final = 1000
"""Tags per invalidation script: a larger invalidation is sent as several, never cut."""

Listener = InvalidationListener | ClusterListener


class RedisUnavailable(Exception):
    """This Redis call was skipped or failed; the caller falls back."""


class RedisHealth:
    def __init__(
        self,
        config: CacheConfig,
        counters: Counters,
        view: TagVersionView,
        tasks: BackgroundTasks,
    ) -> None:
        self._counters = counters
        self._view = view
        self._tasks = tasks
        self.redis: L2Tier | None = None
        self.listener: Listener | None = None
        self._on_recovered: Callable[[], None] = lambda: None
        self._on_applied: Callable[[list[int]], None] = lambda rows: None
        self.breaker = CircuitBreaker(
            config.breaker_failure_threshold, config.breaker_reset_seconds
        )
        self.pending = view.pending
        self._timeout_s = config.redis_timeout_ms / 1000
        self._probe_timeout_s = max(self._timeout_s * 4, 0.2)
        self._reset_s = config.breaker_reset_seconds
        self.tag_ttl_ms = int(config.tag_ttl * 1000)
        self._probing: asyncio.Task[None] | None = None
        self._replaying = False

    def attach(
        self,
        redis: L2Tier,
        listener: Listener,
        on_recovered: Callable[[], None],
        on_applied: Callable[[list[int]], None],
    ) -> None:
        """``on_recovered`` runs when a probe finds Redis back, before it is used again;
        ``on_applied`` gets the outbox rows whose bumps Redis has just applied."""
        self.redis = redis
        self.listener = listener
        self._on_recovered = on_recovered
        self._on_applied = on_applied

    @property
    def degraded(self) -> bool:
        """Redis skipped or the broadcast away: other instances' invalidations may be
        missed, so L1 TTLs are capped."""
        if self.redis is None:
            return False
        listener = self.listener
        return (
            not self.breaker.closed
            or not self.redis.whole
            or listener is None
            or not listener.connected.is_set()
        )

    async def call(self, op: Callable[[L2Tier], Awaitable[T]]) -> T:
        redis = self.redis
        if redis is None:
            raise RedisUnavailable
        if not self.breaker.closed:
            self._counters.add("redis_skipped")
            self._begin_probe()
            raise RedisUnavailable
        self._counters.add("redis_round_trips")
        try:
            async with Deadline(redis.deadline_s):
                result = await op(redis)
        except REDIS_FAILURES as error:
            self._record_failure(error)
            raise RedisUnavailable from error
        self.breaker.record_success()
        if self.pending:
            self._schedule_replay()
        return result

    async def apply_pending(self) -> bool:
        """Sends the bumps of every pending mark to Redis (in calls of at most
        :data:`MAX_TAGS_PER_BUMP` tags); True once Redis applied them all. A refused or
        failed bump leaves them pending and opens the breaker; a partial one (a cluster
        node down) leaves the marks it did not fully cover pending, breaker closed."""
        if self.redis is None:
            return False
        try:
            return await self.call(self._send_invalidations)
        except RedisUnavailable:
            # A refused bump is a failure whatever reads do (Redis full, read-only, MISCONF
            # still answer reads, whose successes would reset the failure count): open the
            # breaker, so only a probe that replays the pending bumps closes it again.
            if self.breaker.closed:
                self.breaker.trip()
                self._counters.add("breaker_opened")
                logger.warning("an invalidation did not reach Redis: circuit breaker open")
            return False

    async def _send_invalidations(self, redis: L2Tier) -> bool:
        """The bumps of everything pending, or a ping when nothing is: the one place
        pending invalidations are sent (by a write, a scheduled replay, the relay or a
        probe). Every tag is bumped, however many: a large invalidation is split. On a
        cluster, a tag whose node did not take its bump keeps every mark covering it
        pending (and its outbox row unapplied); False then."""
        batch = self.pending.batch()
        if not batch.ids:
            await redis.ping()
            return True
        tags = [GLOBAL_TAG] if batch.everything else list(batch.tags)
        versions: list[int | None] = []
        for start in range(0, len(tags), MAX_TAGS_PER_BUMP):
            versions += await redis.invalidate(
                tags[start : start + MAX_TAGS_PER_BUMP], self.tag_ttl_ms
            )
        bumped = [(tag, v) for tag, v in zip(tags, versions, strict=True) if v is not None]
        rows = self.pending.replayed(batch, frozenset(tag for tag, _ in bumped))
        self._view.merge_late(bumped)
        if rows:
            self._on_applied(rows)
        return len(bumped) == len(tags)

    def _schedule_replay(self) -> None:
        if self._replaying:
            return
        self._replaying = True

        async def replay() -> None:
            try:
                await self.apply_pending()
            finally:
                self._replaying = False

        self._tasks.spawn(replay())

    def _record_failure(self, error: BaseException) -> None:
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            self._counters.add("redis_timeouts")
        else:
            self._counters.add("redis_errors")
        if self.breaker.record_failure():
            self._counters.add("breaker_opened")
            logger.warning("Redis unavailable (%r): circuit breaker open", error)

    # -- probing ------------------------------------------------------------------------

    def _begin_probe(self, force: bool = False) -> None:
        """Starts the one probe, if the breaker allows one now (``force``: do not wait for
        the reset delay)."""
        if self.redis is None or not self.breaker.begin_probe(force=force):
            return
        task = self._tasks.spawn(self._probe())
        self._probing = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._probing is done:
                self._probing = None

        task.add_done_callback(forget)

    async def _probe(self) -> None:
        redis = self.redis
        assert redis is not None
        self._counters.add("redis_round_trips")
        try:
            async with Deadline(self._probe_timeout_s):
                await self._send_invalidations(redis)
        except REDIS_FAILURES:
            self.breaker.trip()
            return
        self._on_recovered()
        self.breaker.close()
        self._counters.add("breaker_closed")
        logger.warning("Redis is back: L1 flushed, circuit breaker closed")
        if self.pending:
            # Queued while this probe was in flight (its batch was taken before): replay
            # now, not at this instance's next Redis call, which an idle one may never make.
            self._schedule_replay()

    async def check(self) -> None:
        """When the breaker is open, probes *now* and waits for that probe (or the one
        already in flight), within the probe deadline."""
        if self.redis is None or self.breaker.closed:
            return
        self._begin_probe(force=True)
        probe = self._probing
        if probe is not None:
            # shield: a readiness check timing out must not cancel the probe itself.
            await asyncio.wait([asyncio.shield(probe)], timeout=self._probe_timeout_s)

    async def watch(self) -> None:
        """An idle instance (no traffic to trigger a probe) still probes an open breaker
        every ``breaker_reset_seconds``."""
        while True:
            await asyncio.sleep(self._reset_s)
            self._begin_probe()
