"""Composites: entries that name their own tags, such as a whole response built from
many cached reads. Stored with the versions a ``Recorder`` collected, read back validated
against the tags in their signed stamps, through the same fills as the read path."""

from __future__ import annotations

import time

from cache.codec import EntryCodec, IntegrityError, OutdatedEntry
from cache.config import CacheConfig
from cache.counters import Counters
from cache.entry import Entry
from cache.health import RedisHealth, RedisUnavailable
from cache.keys import KeySpace
from cache.reads import ReadPath, remaining_ttl
from cache.slots import Lease, Slot
from cache.versions import TagVersionView


class Composites:
    def __init__(
        self,
        config: CacheConfig,
        counters: Counters,
        view: TagVersionView,
        keys: KeySpace,
        health: RedisHealth,
        reads: ReadPath,
    ) -> None:
        self._config = config
        self._counters = counters
        self._view = view
        self._keys = keys
        self._health = health
        self._reads = reads
        self._codec = EntryCodec(config.secret)

    async def get_with_tier(self, key: str) -> tuple[Entry, str, Lease | None] | None:
        slot = self._local_slot(key)
        if slot is not None:
            view = self._view
            return slot.entry, "L1", Lease(view.revision, view.writes, slot.expires)
        entry = await self._from_l2(key)
        return None if entry is None else (entry, "L2", None)

    def local(self, key: str) -> Entry | None:
        slot = self._local_slot(key)
        return None if slot is None else slot.entry

    def _local_slot(self, key: str) -> Slot | None:
        reads = self._reads
        slot = reads.l1_hit(key, None)  # a composite names its own tags
        if slot is None and reads.has_l1:
            self._counters.add("l1_misses")
        return slot

    async def remote(self, key: str) -> Entry | None:
        return await self._from_l2(key)

    async def _from_l2(self, key: str) -> Entry | None:
        """One round trip: the script reads the entry's tag names from its (signed) stamps
        and returns their current versions with the blob."""
        health = self._health
        if health.redis is None:
            return None
        epoch = self._view.epoch
        pending = self._view.pending
        # Pending when the read started (see ReadPath._fetch); None: everything was.
        blocked = pending.snapshot() if pending else frozenset()
        try:
            blob, current = await health.call(
                lambda redis: redis.read_entry(key, health.tag_ttl_ms)
            )
        except RedisUnavailable:
            return None
        decoded = None if blob is None else self._decode(key, blob)
        if decoded is None:
            self._counters.add("l2_misses")
            return None
        entry, expires_at_ms = decoded
        tags = entry.tags
        was_blocked = blocked is None or not blocked.isdisjoint(tags)
        if len(current) == len(tags) and blocked is not None:
            self._view.merge(zip(tags, current, strict=True), epoch, skip=blocked)
        if (
            len(current) != len(tags)
            or any(mine != now for (_, mine), now in zip(entry.versions, current, strict=True))
            or health.pending.blocks(tags)
            or was_blocked
        ):
            self._counters.add("l2_invalid_versions")
            self._counters.add("l2_misses")
            return None
        self._counters.add("l2_hits")
        remaining = remaining_ttl(expires_at_ms, self._config.default_ttl, time.time())
        if remaining > 0:
            self._reads.fill_l1([(key, entry, remaining)], epoch)
        return entry

    async def store(self, key: str, entry: Entry, ttl: float) -> None:
        """Writes a composite to both tiers, each refusing it where a tag already moved."""
        self.store_locally(key, entry, ttl)
        if self._health.redis is not None and self._health.breaker.closed:
            tags = list(entry.tags)
            await self._reads.fill_l2({key: entry}, {key: tags}, tags, dict(entry.versions), ttl)

    def store_locally(self, key: str, entry: Entry, ttl: float) -> None:
        self._reads.fill_l1([(key, entry, ttl)], self._view.epoch)

    def _decode(self, key: str, blob: bytes) -> tuple[Entry, int] | None:
        try:
            return self._codec.decode_timed(self._keys.entry(key).encode(), blob)
        except OutdatedEntry:
            return None
        except IntegrityError as error:
            self._reads.integrity_failure(key, error)
            return None
