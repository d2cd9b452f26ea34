"""``TieredCache``: the lifecycle of the engine and the one object an app holds.

It composes the parts, each in its own module: the read path (``reads``), composites
(``composites``: entries that name their own tags), Redis health
(``health``: guard, breaker, probe, replay), invalidation and the broadcast
(``invalidation``), and the process counters (``counters``). See the package docstring
for the contract of each method.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

from cache import recording
from cache.background import BackgroundTasks
from cache.composites import Composites
from cache.config import CacheConfig
from cache.counters import Counters
from cache.entry import NOT_FOUND, Entry, TagVersions
from cache.health import REDIS_FAILURES, RedisHealth, RedisUnavailable
from cache.invalidation import Invalidator
from cache.keys import GLOBAL_TAG, KeySpace, canonical_tags
from cache.l2 import open_l2
from cache.memory import TinyLFUStore
from cache.observation import Observation
from cache.outbox import Outbox
from cache.reads import BatchLoader, ReadPath, TagsOf
from cache.redis_tier import L2Tier
from cache.relay import Relay
from cache.singleflight import SingleFlight
from cache.slots import Lease, slot_bytes
from cache.versions import TagVersionView

logger = logging.getLogger(__name__)

V = TypeVar("V")

__all__ = ["TieredCache"]


_SETTLE_AT_CLOSE_S = 1.0


class TieredCache:
    def __init__(self, config: CacheConfig, outbox: Outbox | None = None) -> None:
        """``outbox``: where writes record their invalidations (SPEC 7a); with it and
        Redis, every instance runs a relay that applies what is left unapplied."""
        self.config = config
        self.counters = Counters()
        self._keys = KeySpace(config.namespace)
        self._view = TagVersionView(
            max_tags=max(4096, 8 * config.l1_max_entries),
            max_pending=config.max_pending_invalidations,
        )
        self.holds = self._view.holds  # bound once: a caller checks a lease per request
        self._l1: TinyLFUStore | None = None
        if config.enabled and config.l1_max_entries > 0:
            self._l1 = TinyLFUStore(config.l1_max_entries, config.l1_max_bytes, slot_bytes)
        flights = SingleFlight()
        self._tasks = BackgroundTasks()
        self._health = RedisHealth(config, self.counters, self._view, self._tasks)
        self._reads = ReadPath(
            config, self.counters, self._view, self._l1, flights, self._keys, self._health
        )
        self._composites = Composites(
            config, self.counters, self._view, self._keys, self._health, self._reads
        )
        self._invalidator = Invalidator(self.counters, self._view, self._l1, flights, self._health)
        self._relay: Relay | None = None
        if outbox is not None:
            self._relay = Relay(
                outbox, config, self._view.pending, self._health, self._invalidator, self._tasks
            )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Builds the Redis pool and starts the invalidation listener. Never fails because
        Redis is down: the engine then starts degraded and recovers by itself."""
        config = self.config
        if not config.enabled or config.redis_url is None or self._health.redis is not None:
            return
        invalidator = self._invalidator
        relay = self._relay
        handlers = (invalidator.on_broadcast, self._on_broadcast_connected, self._on_broadcast_lost)
        redis, listener = await open_l2(
            config, config.redis_url, self._keys, self.counters, handlers, invalidator.flush_l1
        )
        self._health.attach(
            redis,
            listener,
            on_recovered=invalidator.flush_l1,
            on_applied=relay.applied if relay is not None else lambda rows: None,
        )
        if relay is not None:
            await self._start_relay(relay)
        self._tasks.spawn(listener.run())
        self._tasks.spawn(self._health.watch())
        try:
            await asyncio.wait_for(redis.warm_up(), timeout=1.0)
        except REDIS_FAILURES as error:
            logger.warning("Redis not reachable at start (%r): serving degraded", error)
        try:
            await asyncio.wait_for(listener.connected.wait(), timeout=1.0)
        except TimeoutError:
            logger.warning("cache broadcast not connected at start; L1 TTLs capped until it is")

    def _on_broadcast_connected(self) -> None:
        self._invalidator.on_broadcast_connected()
        if self._relay is not None:
            self._relay.on_broadcast_connected()

    def _on_broadcast_lost(self) -> None:
        self._invalidator.on_broadcast_lost()
        if self._relay is not None:
            self._relay.on_broadcast_lost()

    async def _start_relay(self, relay: Relay) -> None:
        """Every unapplied outbox row is pending here before this instance serves."""
        try:
            await relay.start()
        except Exception as error:  # the database away: the relay's first pass marks them
            logger.warning("outbox not readable at start (%r)", error)
        self._tasks.spawn(relay.run())

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.settle(_SETTLE_AT_CLOSE_S)
        await self._tasks.cancel_all()
        redis = self._health.redis
        if redis is not None:
            self._health.redis = None
            await redis.close()
        if self._l1 is not None:
            self._view.writes += 1
            self._l1.clear()

    async def __aenter__(self) -> TieredCache:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reads ---------------------------------------------------------------------------

    async def get_many_or_load(
        self,
        keys: Iterable[str],
        load: BatchLoader[V],
        *,
        ttl: float | None = None,
        tags: TagsOf | None = None,
    ) -> dict[str, V | None]:
        wanted = list(dict.fromkeys(keys))
        if not self.config.enabled:
            loaded = await load(wanted)
            return {key: _value_or_none(loaded.get(key)) for key in wanted}
        entries = await self.get_many_entries_or_load(wanted, load, ttl=ttl, tags=tags)
        return {key: entries[key].value for key in wanted}

    async def get_many_entries_or_load(
        self,
        keys: Iterable[str],
        load: BatchLoader[V],
        *,
        ttl: float | None = None,
        tags: TagsOf | None = None,
    ) -> dict[str, Entry]:
        """Like :meth:`get_many_or_load`, with each value's :class:`Entry`: the tag
        versions it was validated against come with it, for callers that compose values
        (see ``cache.strawberry.subtrees``). The cache must be enabled."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        entries = await self._reads.entries(wanted, load, ttl, tags)
        for recorder in recording.active():
            for entry in entries.values():
                recorder.add(entry.versions)
        return entries

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[V]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> V | None:
        # The common case first, without building the batch machinery.
        slot = self._reads.l1_hit(key, canonical_tags(tags))
        if slot is not None:
            recording.record(slot.entry.versions)
            value: V | None = slot.entry.value
            return value

        async def load_one(_: list[str]) -> Mapping[str, V]:
            value = await load()
            return {} if value is NOT_FOUND else {key: value}

        got = await self.get_many_or_load([key], load_one, ttl=ttl, tags=lambda _: tags)
        return got[key]

    async def get_entry(self, key: str) -> Entry | None:
        """A stored entry (typically a composite from ``set_entry``), validated against its
        own recorded tags, or ``None``. L1, then L2 (one round trip: the read script also
        returns the current versions of the tags the entry names)."""
        found = await self.get_entry_with_tier(key)
        return None if found is None else found[0]

    async def get_entry_with_tier(self, key: str) -> tuple[Entry, str, Lease | None] | None:
        """Like :meth:`get_entry`, with the tier that had it (``"L1"`` or ``"L2"``) and,
        for an L1 hit, its lease: a caller may serve what it made of the entry again for
        as long as :meth:`holds` says L1 would still serve that entry."""
        if not self.config.enabled:
            return None
        found = await self._composites.get_with_tier(key)
        if found is not None:
            recording.record(found[0].versions)
        return found

    def touch(self, key: str) -> None:
        """Tell L1 ``key`` was used (uncounted), as a caller replaying an L1 hit does."""
        if self._l1 is not None:
            self._l1.get(key)

    def get_local_entry(self, key: str) -> Entry | None:
        """The L1 half of :meth:`get_entry`, synchronous: a composite this process holds,
        validated against this process's view of its tags (a miss is counted)."""
        if not self.config.enabled:
            return None
        entry = self._composites.local(key)
        if entry is not None:
            recording.record(entry.versions)
        return entry

    async def get_remote_entry(self, key: str) -> Entry | None:
        """The L2 half of :meth:`get_entry` (after :meth:`get_local_entry` missed)."""
        if not self.config.enabled:
            return None
        entry = await self._composites.remote(key)
        if entry is not None:
            recording.record(entry.versions)
        return entry

    async def set_entry(
        self,
        key: str,
        value: Any,
        tag_versions: TagVersions,
        ttl: float | None = None,
        *,
        max_bytes: int | None = None,
    ) -> None:
        """Stores ``value`` valid while every tag in ``tag_versions`` keeps its version
        (pass ``Recorder.tag_versions``). Refused by each tier where a tag already moved,
        and not stored when its encoding and tags take more than ``max_bytes``."""
        entry = self._composite(value, tag_versions, max_bytes)
        if entry is not None:
            await self._composites.store(key, entry, ttl or self.config.default_ttl)

    def set_local_entry(
        self,
        key: str,
        value: Any,
        tag_versions: TagVersions,
        ttl: float | None = None,
        *,
        max_bytes: int | None = None,
    ) -> None:
        """:meth:`set_entry` in L1 only, synchronous: for composites nested in others
        that are stored in both tiers (an L2 write each would cost a round trip)."""
        entry = self._composite(value, tag_versions, max_bytes)
        if entry is not None:
            self._composites.store_locally(key, entry, ttl or self.config.default_ttl)

    def _composite(
        self, value: Any, tag_versions: TagVersions, max_bytes: int | None
    ) -> Entry | None:
        if not self.config.enabled:
            return None
        versions = dict(tag_versions)
        if GLOBAL_TAG not in versions:
            versions[GLOBAL_TAG] = self._view.local_versions([GLOBAL_TAG])[0][1]
        entry = Entry.of(value, tuple(sorted(versions.items())))
        if max_bytes is not None:
            size = len(entry.payload or b"") + sum(len(tag) + 16 for tag in versions)
            if size > max_bytes:
                return None
        return entry

    async def tag_versions(self, tags: Iterable[str]) -> TagVersions:
        """The current versions of ``tags`` (and :data:`GLOBAL_TAG`): what a value computed
        from now on depends on. One round trip to Redis; this process's view without it."""
        wanted = canonical_tags(list(tags))
        health = self._health
        if health.redis is not None:
            epoch = self._view.epoch
            pending = self._view.pending
            blocked = pending.blocked(wanted) if pending else frozenset()
            try:
                read = await health.call(lambda r: r.read([], wanted, health.tag_ttl_ms))
            except RedisUnavailable:
                pass
            else:
                versions = self._reads.adopt_versions(wanted, read, epoch, blocked)
                return tuple((tag, versions[tag]) for tag in wanted)
        return self._view.local_versions(wanted)

    # -- invalidation --------------------------------------------------------------------

    async def invalidate(self, tags: Iterable[str], *, row: int | None = None) -> int:
        """Bumps ``tags`` in both tiers and tells the other instances; returns the number
        of distinct tags invalidated. Returns once this instance will no longer serve
        anything that depended on them, and Redis has them bumped (or, if Redis refused,
        they stay pending here, and are retried until applied). ``row``: the outbox row
        (see :class:`~cache.outbox.Outbox`) that recorded this invalidation with the write;
        marked applied once Redis has it."""
        if not self.config.enabled:
            return len(set(tags))
        return await self._invalidator.invalidate(tags, row)

    async def relay_pass(self) -> None:
        """One pass of the outbox relay now (tests and operator tools; it also runs by
        itself every ``outbox_relay_seconds``)."""
        if self._relay is not None and self._health.redis is not None:
            await self._relay.run_pass()

    def on_invalidation_received(self, callback: Callable[[Sequence[str]], None]) -> None:
        """Calls ``callback(tags)`` for every invalidation this instance hears on the
        broadcast: other instances', an operator's, and its own (each instance hears its
        own bumps too). Called on the listener's task: keep it quick, never blocking."""
        self._invalidator.observe(callback)

    # -- health and introspection --------------------------------------------------------

    async def check(self) -> str:
        """Readiness probe (``/readyz``): when the circuit breaker is open, probes Redis
        *now* (ignoring the reset delay; bounded by the probe deadline) instead of waiting
        for traffic to trigger it, then returns :attr:`status`."""
        await self._health.check()
        return self.status

    def observing(self) -> Observation:
        """Count this task's hits, misses, loads and Redis errors (and its children's)."""
        return Observation()

    def recording(self) -> AbstractContextManager[recording.Recorder]:
        """``with cache.recording() as rec:`` collects the tag versions of every value
        served in this task (and tasks it starts) until the block ends."""
        return recording.recording()

    @property
    def stats(self) -> dict[str, Any]:
        """The process counters, with the gauges derived from the parts that own them."""
        l1 = self._l1
        health = self._health
        return {
            **self.counters.snapshot(),
            "breaker_state": health.breaker.state.value,
            "pending_invalidations": len(health.pending),
            "broadcast_connected": self.broadcast_connected,
            "l1_size": len(l1) if l1 is not None else 0,
            "l1_evictions": l1.evictions if l1 is not None else 0,
            "l1_bytes": l1.bytes_held if l1 is not None else 0,
        }

    @property
    def status(self) -> str:
        """``disabled``, ``memory-only``, ``ok`` or ``degraded`` (Redis or broadcast away)."""
        if not self.config.enabled:
            return "disabled"
        if self.config.redis_url is None:
            return "memory-only"
        return "degraded" if self._health.degraded or self._health.redis is None else "ok"

    @property
    def broadcast_connected(self) -> bool:
        listener = self._health.listener
        return listener is not None and listener.connected.is_set()

    @property
    def redis_tier(self) -> L2Tier | None:
        """The engine's Redis tier (its pool and key space), for operator tools."""
        return self._health.redis


def _value_or_none(value: Any) -> Any:
    return None if value is NOT_FOUND else value
