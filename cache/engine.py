"""The two-tier read-through cache: L1 (memory) -> L2 (Redis) -> loader, with tags.

Correctness rests on tag versions (see ``scripts.py`` and docs/decisions.md):

* Every entry records the versions of the tags it depends on, read *before* its loader ran.
* An L2 entry is served only if those versions equal the ones read from Redis in the same
  round trip; an L1 entry only if they equal this process's view of them
  (``versions.TagVersionView``), which invalidations move forward at once, locally and on
  other instances through the broadcast.
* Fills are conditional: Redis refuses an entry whose versions moved since they were read,
  and L1 refuses one when any invalidation happened in this process during the load.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Final, TypeVar

from redis.exceptions import RedisError

from cache import recording
from cache.breaker import BreakerState, CircuitBreaker
from cache.broadcast import InvalidationListener
from cache.codec import EntryCodec, IntegrityError, OutdatedEntry, prefix_of, stamp
from cache.config import CacheConfig
from cache.deadline import Deadline
from cache.entry import NOT_FOUND, Entry, TagVersions
from cache.keys import GLOBAL_TAG, KeySpace
from cache.memory import TinyLFUMemoryBackend
from cache.observation import Observation, note, observing
from cache.redis_tier import FillItem, ReadResult, RedisTier, build_listener_client
from cache.singleflight import Flight, FlightAborted, SingleFlight
from cache.stats import CacheStats
from cache.versions import TagVersionView

logger = logging.getLogger(__name__)

V = TypeVar("V")
T = TypeVar("T")

BatchLoader = Callable[[list[str]], Awaitable[Mapping[str, V]]]
"""``load(missing_keys) -> {key: value}``; a key left out of the mapping does not exist."""
TagsOf = Callable[[str], Sequence[str]]
"""``tags(key) -> tags`` the value of ``key`` depends on, known before it is loaded."""

_REDIS_FAILURES: Final = (RedisError, OSError, TimeoutError)
_LOGGED_INTEGRITY_KEYS_MAX: Final = 1024


class RedisUnavailable(Exception):
    """Internal: this Redis call was skipped or failed; the caller falls back."""


class _Slot:
    """What L1 holds: an entry and the view revision it was last found current at."""

    __slots__ = ("checked", "entry")

    def __init__(self, entry: Entry, checked: int) -> None:
        self.entry = entry
        self.checked = checked


class TieredCache:
    """See the package docstring for the contract of each method."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self._stats = CacheStats()
        self._codec = EntryCodec(config.secret)
        self._view = TagVersionView(max_tags=max(4096, 8 * config.l1_max_entries))
        self._l1: TinyLFUMemoryBackend | None = None
        if config.enabled and config.l1_max_entries > 0:
            self._l1 = TinyLFUMemoryBackend(config.l1_max_entries)
        self._flights = SingleFlight()
        self._breaker = CircuitBreaker(
            config.breaker_failure_threshold, config.breaker_reset_seconds
        )
        self._keys = KeySpace(config.namespace)
        self._redis: RedisTier | None = None
        self._listener: InvalidationListener | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._probing: asyncio.Task[None] | None = None
        self._replaying = False
        self._pending: set[str] = set()
        self._pending_all = False
        self._timeout_s = config.redis_timeout_ms / 1000
        self._probe_timeout_s = max(self._timeout_s * 4, 0.2)
        self._tag_ttl_ms = int(config.tag_ttl * 1000)
        self._integrity_logged: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Builds the Redis pool and starts the invalidation listener. Never fails because
        Redis is down: the engine then starts degraded and recovers by itself."""
        config = self.config
        if not config.enabled or config.redis_url is None or self._redis is not None:
            return
        url = config.redis_url
        self._redis = RedisTier(url, self._keys, self._timeout_s, config.redis_max_connections)
        self._listener = InvalidationListener(
            lambda: build_listener_client(url, max(self._timeout_s, 1.0)),
            self._keys.channel,
            self._on_broadcast,
            self._on_broadcast_connected,
            self._on_broadcast_lost,
        )
        self._spawn(self._listener.run())
        self._spawn(self._recover())
        try:
            await asyncio.wait_for(self._redis.warm_up(), timeout=1.0)
        except (*_REDIS_FAILURES, TimeoutError) as error:
            logger.warning("Redis not reachable at start (%r): serving degraded", error)
        try:
            await asyncio.wait_for(self._listener.connected.wait(), timeout=1.0)
        except TimeoutError:
            logger.warning("cache broadcast not connected at start; L1 TTLs capped until it is")

    async def close(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.close()
            self._redis = None
        if self._l1 is not None:
            self._l1.clear_now()

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

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- reads -------------------------------------------------------------------------

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
        if not wanted:
            return {}
        entries = await self._entries(wanted, load, ttl, tags)
        for recorder in recording.active():
            for entry in entries.values():
                recorder.add(entry.versions)
        return {key: entries[key].value for key in wanted}

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[V]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> V | None:
        if self._l1 is not None:
            # The common case first, without building the batch machinery below.
            slot = self._l1.get_now(key)
            if slot is not None and self._still_current(slot):
                entry = slot.entry
                self._stats.l1_hits += 1
                note("l1_hits")
                for recorder in recording.active():
                    recorder.add(entry.versions)
                value: V | None = entry.value
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

    async def get_entry_with_tier(self, key: str) -> tuple[Entry, str] | None:
        """Like :meth:`get_entry`, with the tier that had it: ``"L1"`` or ``"L2"``."""
        if not self.config.enabled:
            return None
        entry = await self._l1_lookup(key)
        tier = "L1"
        if entry is None:
            entry = await self._l2_lookup_composite(key)
            tier = "L2"
        if entry is None:
            return None
        recording.record(entry.versions)
        return entry, tier

    async def set_entry(
        self, key: str, value: Any, tag_versions: TagVersions, ttl: float | None = None
    ) -> None:
        """Stores ``value`` valid while every tag in ``tag_versions`` keeps its version
        (pass ``Recorder.tag_versions``). Refused by each tier where a tag already moved."""
        if not self.config.enabled:
            return
        versions = dict(tag_versions)
        if GLOBAL_TAG not in versions:
            global_version = self._view.local_versions([GLOBAL_TAG])[0][1]
            versions[GLOBAL_TAG] = global_version
        entry = Entry.of(value, tuple(sorted(versions.items())))
        ttl = ttl or self.config.default_ttl
        epoch = self._view.epoch
        await self._fill_l1([(key, entry, ttl)], epoch)
        if self._redis is not None and self._breaker.closed:
            tags = list(versions)
            await self._fill_l2({key: entry}, {key: tags}, tags, versions, ttl)

    async def _l1_lookup(self, key: str) -> Entry | None:
        l1 = self._l1
        if l1 is None:
            return None
        slot: _Slot | None = l1.get_now(key)
        if slot is not None and self._still_current(slot):
            self._stats.l1_hits += 1
            note("l1_hits")
            return slot.entry
        self._stats.l1_misses += 1
        note("l1_misses")
        return None

    def _still_current(self, slot: _Slot) -> bool:
        """``slot``'s entry matches the view: free when the view has not moved since the
        last check, else one pass over the entry's tags (whole responses carry dozens)."""
        revision = self._view.revision
        if slot.checked == revision:
            return True
        if self._view.is_current(slot.entry.versions):
            slot.checked = revision
            return True
        return False

    async def _l2_lookup_composite(self, key: str) -> Entry | None:
        """One round trip: the script reads the entry's tag names from its (signed) stamps
        and returns their current versions with the blob."""
        if self._redis is None:
            return None
        epoch = self._view.epoch
        try:
            blob, current = await self._guarded(
                lambda redis: redis.read_entry(key, self._tag_ttl_ms)
            )
        except RedisUnavailable:
            return None
        decoded = None if blob is None else self._decode(key, blob)
        if decoded is None:
            self._stats.l2_misses += 1
            note("l2_misses")
            return None
        entry, expires_at_ms = decoded
        tags = entry.tags
        if len(current) == len(tags):
            self._view.merge(zip(tags, current, strict=True), epoch)
        if (
            len(current) != len(tags)
            or any(mine != now for (_, mine), now in zip(entry.versions, current, strict=True))
            or self._blocked_by_pending(tags)
        ):
            self._stats.l2_invalid_versions += 1
            self._stats.l2_misses += 1
            note("l2_misses")
            return None
        self._stats.l2_hits += 1
        note("l2_hits")
        remaining = _remaining(expires_at_ms, self.config.default_ttl, time.time())
        if remaining > 0:
            await self._fill_l1([(key, entry, remaining)], epoch)
        return entry

    async def _entries(
        self,
        keys: list[str],
        load: BatchLoader[V],
        ttl: float | None,
        tags_of: TagsOf | None,
    ) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        missing = keys
        l1 = self._l1
        if l1 is not None:
            cached = l1.get_many_now(keys)
            still_current = self._still_current
            missing = []
            for key, slot in zip(keys, cached, strict=True):
                if slot is not None and still_current(slot):
                    found[key] = slot.entry
                else:
                    missing.append(key)
            self._stats.l1_hits += len(found)
            self._stats.l1_misses += len(missing)
            note("l1_hits", len(found))
            note("l1_misses", len(missing))
            if not missing:
                return found

        leading: list[str] = missing
        waiting: list[tuple[str, Flight]] = []
        if self._flights:
            leading = []
            joinable = self._flights.joinable
            for key in missing:
                flight = joinable(key)
                if flight is None:
                    leading.append(key)
                else:
                    waiting.append((key, flight))

        if leading:
            found.update(await self._lead(leading, load, ttl, tags_of))
        if waiting:
            self._stats.single_flight_joins += len(waiting)
            orphaned: list[str] = []
            for key, flight in waiting:
                try:
                    found[key] = (await asyncio.shield(flight.future))[key]
                except FlightAborted:
                    orphaned.append(key)
            if orphaned:  # their leader was cancelled: load them ourselves, in one batch
                found.update(await self._lead(orphaned, load, ttl, tags_of))
        return found

    async def _lead(
        self, keys: list[str], load: BatchLoader[V], ttl: float | None, tags_of: TagsOf | None
    ) -> dict[str, Entry]:
        """Fetches ``keys`` under one flight that concurrent readers of them join."""
        key_tags = {key: _tags_for(key, tags_of) for key in keys}
        all_tags = list(dict.fromkeys(tag for tags in key_tags.values() for tag in tags))
        flights = self._flights
        flight = flights.lead(keys, all_tags)
        try:
            fetched = await self._fetch(keys, key_tags, all_tags, load, ttl)
        except BaseException as error:
            flights.land(keys, flight)
            flight.fail(error if isinstance(error, Exception) else FlightAborted())
            raise
        flights.land(keys, flight)
        flight.resolve(fetched)
        return fetched

    async def _fetch(
        self,
        keys: list[str],
        key_tags: Mapping[str, tuple[str, ...]],
        all_tags: list[str],
        load: BatchLoader[V],
        ttl: float | None,
    ) -> dict[str, Entry]:
        """L2, then the loader for what L2 lacks, then fill both tiers."""
        ttl = ttl or self.config.default_ttl
        epoch = self._view.epoch
        result: dict[str, Entry] = {}
        versions: dict[str, int] | None = None
        read: ReadResult | None = None
        if self._redis is not None:
            try:
                read = await self._guarded(
                    lambda redis: redis.read(keys, all_tags, self._tag_ttl_ms)
                )
            except RedisUnavailable:
                read = None
        if read is not None:
            versions = dict(zip(all_tags, read.versions, strict=True))
            self._view.merge(versions.items(), epoch)
            expiries: dict[str, int] | None = None if self._l1 is None else {}
            result = self._accept_l2(keys, key_tags, read, versions, expiries)
            if expiries:
                now = time.time()
                await self._fill_l1(
                    [
                        (key, entry, remaining)
                        for key, entry in result.items()
                        if (remaining := _remaining(expiries[key], ttl, now)) > 0
                    ],
                    epoch,
                )
            if len(result) == len(keys):
                return result
        missing = [key for key in keys if key not in result]

        if versions is None:
            versions = dict(self._view.local_versions(all_tags))
        loaded = await load(missing)
        stats = self._stats
        stats.loads += 1
        stats.loaded_keys += len(missing)
        note("loads")
        note("loaded_keys", len(missing))
        stats.load_batch_max = max(stats.load_batch_max, len(missing))
        fresh: dict[str, Entry] = {}
        for key in missing:
            recorded = tuple((tag, versions[tag]) for tag in key_tags[key])
            fresh[key] = Entry.of(loaded.get(key, NOT_FOUND), recorded)
        result.update(fresh)
        await self._fill_l1([(key, entry, ttl) for key, entry in fresh.items()], epoch)
        if read is not None:
            await self._fill_l2(fresh, key_tags, all_tags, versions, ttl)
        return result

    def _accept_l2(
        self,
        keys: list[str],
        key_tags: Mapping[str, tuple[str, ...]],
        read: ReadResult,
        versions: Mapping[str, int],
        expiries: dict[str, int] | None,
    ) -> dict[str, Entry]:
        """Entries of the read that are valid now; their expiry times go to ``expiries``
        when given (for the L1 fill)."""
        accepted: dict[str, Entry] = {}
        entry_prefix = self._keys.entry_prefix
        open_current = self._codec.open_current
        # Per tag once per batch; per key, only joins: the bytes a current entry starts with.
        stamps = {tag: stamp(tag, version) for tag, version in versions.items()}
        recorded = {tag: (tag, version) for tag, version in versions.items()}
        pending = bool(self._pending) or self._pending_all
        invalid = not_found = 0
        for key, blob in zip(keys, read.blobs, strict=True):
            if blob is None:
                continue
            tags = key_tags[key]
            try:
                opened = open_current(
                    (entry_prefix + key).encode(),
                    blob,
                    prefix_of([stamps[tag] for tag in tags]),
                )
            except IntegrityError as error:
                self._integrity_failure(key, error)
                continue
            # None: computed at other versions or against other tags (another caller's
            # tags function), or written by an older release.
            if opened is None or (pending and self._blocked_by_pending(tags)):
                invalid += 1
                continue
            payload, expires_at_ms = opened
            if payload is None:
                not_found += 1
            accepted[key] = Entry(payload, tuple([recorded[tag] for tag in tags]))
            if expiries is not None:
                expiries[key] = expires_at_ms
        stats = self._stats
        hits = len(accepted)
        misses = len(keys) - hits
        stats.l2_hits += hits
        stats.l2_misses += misses
        stats.l2_invalid_versions += invalid
        stats.not_found_hits += not_found
        if hits:
            note("l2_hits", hits)
        if misses:
            note("l2_misses", misses)
        return accepted

    def _decode(self, key: str, blob: bytes) -> tuple[Entry, int] | None:
        try:
            return self._codec.decode_timed(self._keys.entry(key).encode(), blob)
        except OutdatedEntry:
            return None
        except IntegrityError as error:
            self._integrity_failure(key, error)
            return None

    def _integrity_failure(self, key: str, error: IntegrityError) -> None:
        """Counted every time, logged once per key (bounded): a tampered or foreign entry
        is read on every request until it expires."""
        self._stats.integrity_failures += 1
        note("integrity_failures")
        if (
            key not in self._integrity_logged
            and len(self._integrity_logged) < _LOGGED_INTEGRITY_KEYS_MAX
        ):
            self._integrity_logged.add(key)
            logger.warning("cache entry %r failed its integrity check: %s", key, error)

    # -- fills -------------------------------------------------------------------------

    async def _fill_l1(self, items: Sequence[tuple[str, Entry, float]], epoch: int) -> None:
        l1 = self._l1
        if l1 is None or not items:
            return
        view = self._view
        if epoch != view.epoch:
            # An invalidation or flush happened since these versions were read.
            self._stats.l1_stale_rejected += len(items)
            return
        cap = self.config.degraded_l1_ttl if self._degraded else None
        revision = view.revision
        by_ttl: dict[float, list[tuple[str, _Slot]]] = {}
        for key, entry, ttl in items:
            if not view.is_current(entry.versions):
                self._stats.l1_stale_rejected += 1
                continue
            effective = ttl if entry.found else min(ttl, self.config.not_found_ttl)
            if cap is not None:
                effective = min(effective, cap)
            by_ttl.setdefault(effective, []).append((key, _Slot(entry, revision)))
        # Synchronous from the checks above to these writes: no invalidation can slip in.
        for ttl, pairs in by_ttl.items():
            l1.set_many_now(pairs, ttl=ttl)
            self._stats.l1_sets += len(pairs)

    async def _fill_l2(
        self,
        fresh: Mapping[str, Entry],
        key_tags: Mapping[str, Sequence[str]],
        all_tags: Sequence[str],
        versions: Mapping[str, int],
        ttl: float,
    ) -> None:
        if self._redis is None:
            return
        position = {tag: index for index, tag in enumerate(all_tags)}
        jitter = self.config.ttl_jitter
        items: list[FillItem] = []
        now_ms = int(time.time() * 1000)
        for key, entry in fresh.items():
            tags = key_tags[key]
            if self._blocked_by_pending(tags):
                continue
            base = ttl if entry.found else min(ttl, self.config.not_found_ttl)
            ttl_ms = max(1, int(base * 1000 * (1 + random.random() * jitter)))
            redis_key = self._keys.entry(key)
            blob = self._codec.encode(redis_key.encode(), entry, now_ms + ttl_ms)
            items.append(
                FillItem(
                    redis_key=redis_key,
                    blob=blob,
                    ttl_ms=ttl_ms,
                    tag_indexes=[position[tag] for tag in tags],
                )
            )
        if not items:
            return
        expected = [versions[tag] for tag in all_tags]
        try:
            written = await self._guarded(lambda r: r.fill(items, all_tags, expected))
        except RedisUnavailable:
            return
        self._stats.l2_sets += written
        self._stats.l2_stale_rejected += len(items) - written

    # -- invalidation ------------------------------------------------------------------

    async def invalidate(self, tags: Iterable[str]) -> int:
        """Bumps ``tags`` in both tiers and tells the other instances; returns the number
        of distinct tags invalidated. Returns once this instance will no longer serve
        anything that depended on them, and Redis has them bumped (or, if Redis is
        unreachable, they are queued and replayed before L2 is trusted again)."""
        unique = list(dict.fromkeys(tags))
        if not unique:
            return 0
        if not self.config.enabled:
            return len(unique)
        self._stats.invalidations += 1
        self._stats.invalidated_tags += len(unique)
        self._view.drop(unique)
        self._flights.detach(unique)
        if self._redis is None:
            return len(unique)
        try:
            await self._bump(unique)
        except RedisUnavailable:
            self._queue_pending(unique)
        return len(unique)

    async def _bump(self, tags: list[str]) -> None:
        """One round trip for the given tags plus whatever is pending."""
        pending = set(self._pending)
        pending_all = self._pending_all
        batch = list(dict.fromkeys([*tags, *pending, *([GLOBAL_TAG] if pending_all else [])]))
        new_versions = await self._guarded(lambda redis: redis.invalidate(batch, self._tag_ttl_ms))
        self._pending -= pending
        if pending_all:
            self._pending_all = False
        self._stats.pending_invalidations = len(self._pending)
        self._view.merge(zip(batch, new_versions, strict=True))

    def _queue_pending(self, tags: Iterable[str]) -> None:
        self._pending.update(tags)
        if len(self._pending) > self.config.max_pending_invalidations:
            # Too many to remember: invalidate the whole namespace on replay instead.
            self._pending.clear()
            self._pending_all = True
        self._stats.pending_invalidations = len(self._pending) + int(self._pending_all)

    def _blocked_by_pending(self, tags: Iterable[str]) -> bool:
        """While an invalidation waits for Redis, L2 entries it covers are not trusted."""
        if self._pending_all:
            return True
        return bool(self._pending) and not self._pending.isdisjoint(tags)

    def _schedule_replay(self) -> None:
        if self._replaying:
            return
        self._replaying = True

        async def replay() -> None:
            try:
                await self._bump([])
            except RedisUnavailable:
                pass
            finally:
                self._replaying = False

        self._spawn(replay())

    # -- Redis guard, breaker, recovery ------------------------------------------------

    async def _guarded(self, op: Callable[[RedisTier], Awaitable[T]]) -> T:
        redis = self._redis
        if redis is None:
            raise RedisUnavailable
        if not self._breaker.closed:
            self._stats.redis_skipped += 1
            if self._breaker.begin_probe():
                self._stats.breaker_state = BreakerState.PROBING.value
                self._start_probe()
            raise RedisUnavailable
        self._stats.redis_round_trips += 1
        note("redis_round_trips")
        try:
            async with Deadline(self._timeout_s):
                result = await op(redis)
        except _REDIS_FAILURES as error:
            self._record_failure(error)
            raise RedisUnavailable from error
        self._breaker.record_success()
        if self._pending or self._pending_all:
            self._schedule_replay()
        return result

    def _record_failure(self, error: BaseException) -> None:
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            self._stats.redis_timeouts += 1
            note("redis_timeouts")
        else:
            self._stats.redis_errors += 1
            note("redis_errors")
        if self._breaker.record_failure():
            self._stats.breaker_opened += 1
            self._stats.breaker_state = BreakerState.OPEN.value
            logger.warning("Redis unavailable (%r): circuit breaker open", error)

    async def _probe(self) -> None:
        """Half-open probe: replay pending invalidations (or PING). On success L1 is
        flushed, since invalidations may have been missed, and Redis is used again."""
        redis = self._redis
        assert redis is not None
        self._stats.redis_round_trips += 1
        try:
            async with Deadline(self._probe_timeout_s):
                pending = set(self._pending)
                pending_all = self._pending_all
                if pending or pending_all:
                    batch = [*pending, *([GLOBAL_TAG] if pending_all else [])]
                    await redis.invalidate(batch, self._tag_ttl_ms)
                    self._pending -= pending
                    if pending_all:
                        self._pending_all = False
                    self._stats.pending_invalidations = len(self._pending)
                else:
                    await redis.ping()
        except _REDIS_FAILURES:
            self._breaker.trip()
            self._stats.breaker_state = BreakerState.OPEN.value
            return
        self._flush_l1()
        self._breaker.close()
        self._stats.breaker_closed += 1
        self._stats.breaker_state = BreakerState.CLOSED.value
        logger.warning("Redis is back: L1 flushed, circuit breaker closed")

    async def check(self) -> str:
        """Readiness probe (``/readyz``): when the circuit breaker is open, probes Redis
        *now* (ignoring the reset delay; bounded by the probe deadline) instead of waiting
        for traffic to trigger it, then returns :attr:`status`. A probe already in flight
        is waited for (within the same bound), not duplicated."""
        if self._redis is not None and not self._breaker.closed:
            if self._breaker.begin_probe(force=True):
                self._stats.breaker_state = BreakerState.PROBING.value
                self._start_probe()
            probe = self._probing
            if probe is not None:
                # shield: a readiness check timing out must not cancel the probe itself.
                await asyncio.wait([asyncio.shield(probe)], timeout=self._probe_timeout_s)
        return self.status

    def _start_probe(self) -> None:
        """Runs :meth:`_probe` as a task (the breaker is PROBING: one at a time)."""
        task = self._spawn(self._probe())
        self._probing = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._probing is done:
                self._probing = None

        task.add_done_callback(forget)

    async def _recover(self) -> None:
        """Background half of recovery: an idle instance (no traffic to trigger a probe)
        still probes an open breaker every ``breaker_reset_seconds``."""
        period = self.config.breaker_reset_seconds
        while True:
            await asyncio.sleep(period)
            if self._redis is not None and self._breaker.begin_probe():
                self._stats.breaker_state = BreakerState.PROBING.value
                self._start_probe()

    @property
    def _degraded(self) -> bool:
        if self._redis is None:
            return False
        listener = self._listener
        return not self._breaker.closed or listener is None or not listener.connected.is_set()

    # -- broadcast ---------------------------------------------------------------------

    def _on_broadcast(self, tags: Sequence[str], versions: Sequence[int]) -> None:
        self._stats.invalidations_received += 1
        self._view.merge(zip(tags, versions, strict=True))
        self._flights.detach(tags)

    def _on_broadcast_connected(self) -> None:
        self._flush_l1()
        self._stats.broadcast_connected = True
        self._stats.broadcast_connects += 1

    def _on_broadcast_lost(self) -> None:
        self._flush_l1()
        self._stats.broadcast_connected = False
        self._stats.broadcast_lost += 1

    def _flush_l1(self) -> None:
        self._view.flush()
        self._flights.detach_all()
        if self._l1 is not None:
            self._l1.clear_now()
        self._stats.l1_flushes += 1

    # -- introspection -----------------------------------------------------------------

    def observing(self) -> Observation:
        """Count this task's hits, misses, loads and Redis errors (and its children's)."""
        return observing()

    def recording(self) -> AbstractContextManager[recording.Recorder]:
        """``with cache.recording() as rec:`` collects the tag versions of every value
        served in this task (and tasks it starts) until the block ends."""
        return recording.recording()

    @property
    def stats(self) -> dict[str, Any]:
        self._stats.l1_size = len(self._l1) if self._l1 is not None else 0
        self._stats.l1_evictions = self._l1.evictions if self._l1 is not None else 0
        return self._stats.snapshot()

    @property
    def status(self) -> str:
        """``disabled``, ``memory-only``, ``ok`` or ``degraded`` (Redis or broadcast away)."""
        if not self.config.enabled:
            return "disabled"
        if self.config.redis_url is None:
            return "memory-only"
        return "degraded" if self._degraded or self._redis is None else "ok"

    @property
    def broadcast_connected(self) -> bool:
        return self._listener is not None and self._listener.connected.is_set()


def _tags_for(key: str, tags_of: TagsOf | None) -> tuple[str, ...]:
    """The tags of ``key``'s value, with :data:`GLOBAL_TAG`, in one canonical (sorted)
    order: entries record them in this order, so a reader compares lists, not sets."""
    own = tags_of(key) if tags_of is not None else ()
    if len(own) == 1 and own[0] != GLOBAL_TAG:  # the common case, without a set and a sort
        tag = own[0]
        return (tag, GLOBAL_TAG) if tag < GLOBAL_TAG else (GLOBAL_TAG, tag)
    return tuple(sorted({*own, GLOBAL_TAG}))


def _remaining(expires_at_ms: int, ttl: float, now: float) -> float:
    """Seconds an entry read from Redis may live in L1: what is left of its Redis TTL (from
    the expiry written in the entry), or ``ttl`` when the entry does not say."""
    if not expires_at_ms:
        return ttl
    return expires_at_ms / 1000 - now


def _value_or_none(value: Any) -> Any:
    return None if value is NOT_FOUND else value
