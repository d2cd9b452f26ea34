"""The read path: L1 -> L2 -> loader, under single flight, then the fills of both tiers.

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
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, TypeVar

from cache.codec import EntryCodec, IntegrityError, prefix_of, stamp
from cache.config import CacheConfig
from cache.counters import Counters
from cache.entry import NOT_FOUND, Entry
from cache.health import RedisHealth, RedisUnavailable
from cache.keys import KeySpace, canonical_tags
from cache.memory import TinyLFUStore
from cache.redis_tier import FillItem, ReadResult
from cache.singleflight import Flight, FlightAborted, SingleFlight
from cache.slots import Slot
from cache.versions import TagVersionView

logger = logging.getLogger(__name__)

V = TypeVar("V")

BatchLoader = Callable[[list[str]], Awaitable[Mapping[str, V]]]
"""``load(missing_keys) -> {key: value}``; a key left out of the mapping does not exist."""
TagsOf = Callable[[str], Sequence[str]]
"""``tags(key) -> tags`` the value of ``key`` depends on, known before it is loaded."""

_LOGGED_INTEGRITY_KEYS_MAX: Final = 1024


class ReadPath:
    def __init__(
        self,
        config: CacheConfig,
        counters: Counters,
        view: TagVersionView,
        l1: TinyLFUStore | None,
        flights: SingleFlight,
        keys: KeySpace,
        health: RedisHealth,
    ) -> None:
        self._config = config
        self._counters = counters
        self._view = view
        self._l1 = l1
        self._flights = flights
        self._keys = keys
        self._health = health
        self._codec = EntryCodec(config.secret)
        self._integrity_logged: set[str] = set()

    @property
    def has_l1(self) -> bool:
        return self._l1 is not None

    # -- L1 ------------------------------------------------------------------------------

    def l1_hit(self, key: str, expected: tuple[str, ...] | None) -> Slot | None:
        """The slot of the current L1 entry of ``key`` (counted as a hit), else ``None``
        (uncounted). ``expected``: the reader's canonical tags (None: an entry naming its
        own tags)."""
        if self._l1 is None:
            return None
        slot: Slot | None = self._l1.get(key)
        if (
            slot is not None
            and (expected is None or slot.tags == expected)
            and self._still_current(slot)
        ):
            self._counters.add("l1_hits")
            return slot
        return None

    def _still_current(self, slot: Slot) -> bool:
        """``slot``'s entry matches the view: free when the view has not moved since the
        last check, else one pass over the entry's tags (whole responses carry dozens)."""
        revision = self._view.revision
        if slot.checked == revision:
            return True
        if self._view.is_current(slot.entry.versions):
            slot.checked = revision
            return True
        return False

    # -- batches -------------------------------------------------------------------------

    async def entries(
        self,
        keys: list[str],
        load: BatchLoader[V],
        ttl: float | None,
        tags_of: TagsOf | None,
    ) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        missing = keys
        key_tags = {key: canonical_tags(tags_of(key) if tags_of else ()) for key in keys}
        l1 = self._l1
        if l1 is not None:
            cached = l1.get_many(keys)
            still_current = self._still_current
            missing = []
            for key, slot in zip(keys, cached, strict=True):
                if slot is not None and slot.tags == key_tags[key] and still_current(slot):
                    found[key] = slot.entry
                else:
                    missing.append(key)
            self._counters.add("l1_hits", len(found))
            self._counters.add("l1_misses", len(missing))
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
            found.update(await self._lead(leading, load, ttl, key_tags))
        if waiting:
            self._counters.add("single_flight_joins", len(waiting))
            orphaned: list[str] = []
            for key, flight in waiting:
                try:
                    found[key] = (await asyncio.shield(flight.future))[key]
                except FlightAborted:
                    orphaned.append(key)
            if orphaned:  # their leader was cancelled: load them ourselves, in one batch
                found.update(await self._lead(orphaned, load, ttl, key_tags))
        return found

    async def _lead(
        self,
        keys: list[str],
        load: BatchLoader[V],
        ttl: float | None,
        tags_by_key: Mapping[str, tuple[str, ...]],
    ) -> dict[str, Entry]:
        """Fetches ``keys`` under one flight that concurrent readers of them join."""
        key_tags = {key: tags_by_key[key] for key in keys}
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
        ttl = ttl or self._config.default_ttl
        epoch = self._view.epoch
        pending = self._view.pending
        # Checked when the read starts, not only when its reply is handled: a bump applied
        # in between clears the mark, and the reply still holds the old versions.
        blocked = pending.blocked(all_tags) if pending else frozenset()
        result: dict[str, Entry] = {}
        versions: dict[str, int] | None = None
        read = await self._read_l2(keys, all_tags)
        if read is not None:
            versions = self.adopt_versions(all_tags, read, epoch, blocked)
            expiries: dict[str, int] | None = None if self._l1 is None else {}
            # Against the versions read: an unreachable tag's 0 matches no entry.
            as_read = dict(zip(all_tags, read.versions, strict=True))
            result = self._accept_l2(keys, key_tags, read, as_read, expiries, blocked)
            if expiries:
                now = time.time()
                self.fill_l1(
                    [
                        (key, entry, remaining)
                        for key, entry in result.items()
                        if (remaining := remaining_ttl(expiries[key], ttl, now)) > 0
                    ],
                    epoch,
                )
            if len(result) == len(keys):
                return result
        missing = [key for key in keys if key not in result]

        if versions is None:
            versions = dict(self._view.local_versions(all_tags))
        loaded = await load(missing)
        self._counters.add("loads")
        self._counters.add("loaded_keys", len(missing))
        self._counters.load_batch_max = max(self._counters.load_batch_max, len(missing))
        fresh: dict[str, Entry] = {}
        for key in missing:
            recorded = tuple((tag, versions[tag]) for tag in key_tags[key])
            fresh[key] = Entry.of(loaded.get(key, NOT_FOUND), recorded)
        result.update(fresh)
        self.fill_l1([(key, entry, ttl) for key, entry in fresh.items()], epoch)
        if read is not None:
            await self.fill_l2(fresh, key_tags, all_tags, versions, ttl)
        return result

    def adopt_versions(
        self, tags: Sequence[str], read: ReadResult, epoch: int, blocked: frozenset[str]
    ) -> dict[str, int]:
        """The versions of ``tags`` a load now records: as read, and folded into the view
        under the same guards as any read (``epoch``; ``blocked``: the tags pending when
        the read started), except for tags Redis could not give (a cluster node down),
        which get this process's own, as when the whole of Redis is away (a pending tag's
        local version stays out of the view)."""
        versions = dict(zip(tags, read.versions, strict=True))
        for tag in read.unreachable:
            del versions[tag]
        self._view.merge(versions.items(), epoch, skip=blocked)
        if read.unreachable:
            versions.update(self._view.local_versions(read.unreachable))
        return versions

    async def _read_l2(self, keys: list[str], tags: list[str]) -> ReadResult | None:
        health = self._health
        if health.redis is None:
            return None
        try:
            return await health.call(lambda redis: redis.read(keys, tags, health.tag_ttl_ms))
        except RedisUnavailable:
            return None

    def _accept_l2(
        self,
        keys: list[str],
        key_tags: Mapping[str, tuple[str, ...]],
        read: ReadResult,
        versions: Mapping[str, int],
        expiries: dict[str, int] | None,
        blocked: frozenset[str],
    ) -> dict[str, Entry]:
        """Entries of the read that are valid now (none depending on a tag pending now or
        when the read started, ``blocked``); their expiry times go to ``expiries`` when
        given (for the L1 fill)."""
        accepted: dict[str, Entry] = {}
        entry_prefix = self._keys.entry_prefix
        open_current = self._codec.open_current
        # Per tag once per batch; per key, only joins: the bytes a current entry starts with.
        stamps = {tag: stamp(tag, version) for tag, version in versions.items()}
        recorded = {tag: (tag, version) for tag, version in versions.items()}
        pending = self._health.pending
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
                self.integrity_failure(key, error)
                continue
            # None: computed at other versions or against other tags (another caller's
            # tags function), or written by an older release.
            if (
                opened is None
                or (pending and pending.blocks(tags))
                or (blocked and not blocked.isdisjoint(tags))
            ):
                invalid += 1
                continue
            payload, expires_at_ms = opened
            if payload is None:
                not_found += 1
            accepted[key] = Entry(payload, tuple([recorded[tag] for tag in tags]))
            if expiries is not None:
                expiries[key] = expires_at_ms
        hits = len(accepted)
        self._counters.add("l2_hits", hits)
        self._counters.add("l2_misses", len(keys) - hits)
        self._counters.add("l2_invalid_versions", invalid)
        self._counters.add("not_found_hits", not_found)
        return accepted

    def integrity_failure(self, key: str, error: IntegrityError) -> None:
        """Counted every time, logged once per key (bounded): a tampered or foreign entry
        is read on every request until it expires."""
        self._counters.add("integrity_failures")
        if (
            key not in self._integrity_logged
            and len(self._integrity_logged) < _LOGGED_INTEGRITY_KEYS_MAX
        ):
            self._integrity_logged.add(key)
            logger.warning("cache entry %r failed its integrity check: %s", key, error)

    # -- fills ---------------------------------------------------------------------------

    def fill_l1(self, items: Sequence[tuple[str, Entry, float]], epoch: int) -> None:
        """Synchronous on purpose: from the checks to the writes no invalidation may slip
        in, so there must be no point where the event loop could run another task."""
        l1 = self._l1
        if l1 is None or not items:
            return
        view = self._view
        if epoch != view.epoch:
            # An invalidation or flush happened since these versions were read.
            self._counters.add("l1_stale_rejected", len(items))
            return
        config = self._config
        cap = config.degraded_l1_ttl if self._health.degraded else None
        revision = view.revision
        now = time.monotonic()  # before L1 is given the TTLs: our deadlines come first
        by_ttl: dict[float, list[tuple[str, Slot]]] = {}
        pending = view.pending
        for key, entry, ttl in items:
            if not view.is_current(entry.versions) or (pending and pending.blocks(entry.tags)):
                self._counters.add("l1_stale_rejected")
                continue
            effective = ttl if entry.found else min(ttl, config.not_found_ttl)
            if cap is not None:
                effective = min(effective, cap)
            expires = now + effective if effective else math.inf
            by_ttl.setdefault(effective, []).append((key, Slot(entry, revision, expires)))
        for ttl, pairs in by_ttl.items():
            view.writes += 1  # an overwrite or an eviction: every lease ends
            l1.set_many(pairs, ttl=ttl)
            self._counters.add("l1_sets", len(pairs))

    async def fill_l2(
        self,
        fresh: Mapping[str, Entry],
        key_tags: Mapping[str, Sequence[str]],
        all_tags: Sequence[str],
        versions: Mapping[str, int],
        ttl: float,
    ) -> None:
        health = self._health
        if health.redis is None:
            return
        config = self._config
        position = {tag: index for index, tag in enumerate(all_tags)}
        items: list[FillItem] = []
        now_ms = int(time.time() * 1000)
        for key, entry in fresh.items():
            tags = key_tags[key]
            if health.pending.blocks(tags):
                continue
            base = ttl if entry.found else min(ttl, config.not_found_ttl)
            ttl_ms = max(1, int(base * 1000 * (1 + random.random() * config.ttl_jitter)))
            redis_key = self._keys.entry(key)
            blob = self._codec.encode(redis_key.encode(), entry, now_ms + ttl_ms)
            items.append(FillItem(redis_key, blob, ttl_ms, [position[tag] for tag in tags]))
        if not items:
            return
        expected = [versions[tag] for tag in all_tags]
        try:
            written = await health.call(lambda redis: redis.fill(items, all_tags, expected))
        except RedisUnavailable:
            return
        self._counters.add("l2_sets", written)
        self._counters.add("l2_stale_rejected", len(items) - written)


def remaining_ttl(expires_at_ms: int, ttl: float, now: float) -> float:
    """Seconds an entry read from Redis may live in L1: what is left of its Redis TTL (from
    the expiry written in the entry), or ``ttl`` when the entry does not say."""
    if not expires_at_ms:
        return ttl
    return expires_at_ms / 1000 - now
