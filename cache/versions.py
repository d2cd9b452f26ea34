"""The tag versions this process believes current: what L1 entries are checked against.

Redis holds the authoritative version of each tag. This view caches them locally so an L1
hit needs no round trip, and it moves only forward: versions from Redis grow (see
``scripts.py``), so folding in a late reply with ``max`` can never undo a newer
invalidation. A tag missing from the view makes every entry depending on it a miss, which
is always safe.

Pending tags (invalidated here, their bump not yet applied in Redis) are kept out of the
view: no reply from Redis, which still holds their old versions, may bring them back, so
nothing depending on them is served from L1 or filled into it until the bump lands.

Two kinds of merge (the protocol model's MERGE and MERGE_LATE, docs/decisions.md):

* :meth:`TagVersionView.merge`: versions a Redis read returned, for a read that started
  after the tag's last drop with no mark pending on it (the epoch and ``skip`` guards):
  at least as new as every invalidation this process knows of.
* :meth:`TagVersionView.merge_late`: a version of unknown age (a broadcast, a bump's own
  result, possibly overtaken by a later invalidation). It may bring a dropped tag back
  only when it is above every version the view has held since L1 was last emptied (the
  tag's *floor*): then no L1 entry carries it, whatever happened in between.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Iterable

from cache.entry import TagVersions
from cache.pending import PendingInvalidations
from cache.slots import Lease


class TagVersionView:
    def __init__(self, max_tags: int, max_pending: int = 10_000) -> None:
        self.pending = PendingInvalidations(max_pending)
        self._versions: dict[str, int] = {}
        self._floor: dict[str, int] = {}
        """Per tag, the highest Redis version the view held since the last flush: every L1
        stamp of the tag is at or below it."""
        self._max_tags = max_tags
        # Versions handed out while Redis is absent; negative so they never equal a Redis one.
        self._local = itertools.count(-1, -1)
        self.epoch = 0
        """Bumped on every flush or local invalidation: replies to Redis reads that started
        in an older epoch are not folded in (they may predate the invalidation)."""
        self.revision = 0
        """Bumped by every change that can make a current entry stale: a drop, a flush, or
        a merge that raises a known version. An entry found current at revision ``r`` is
        still current while the revision is ``r`` (adding versions of unknown tags cannot
        invalidate anything), so an L1 hit may skip :meth:`is_current`."""
        self.writes = 0
        """Bumped by every write to L1 and every clear of it (an entry overwritten, evicted
        or gone): with ``revision``, what a ``Lease`` of an L1 hit is checked against."""

    def holds(self, lease: Lease) -> bool:
        """Whether L1 would still serve the entry ``lease`` was taken on (see ``Lease``)."""
        return (
            lease.revision == self.revision
            and lease.writes == self.writes
            and time.monotonic() < lease.expires
        )

    def is_current(self, versions: TagVersions) -> bool:
        known = self._versions
        # A plain loop: this runs on every L1 hit and beats all() over a generator.
        for tag, version in versions:  # noqa: SIM110
            if known.get(tag) != version:
                return False
        return True

    def merge(
        self,
        versions: Iterable[tuple[str, int]],
        epoch: int | None = None,
        skip: Collection[str] = (),
    ) -> bool:
        """Fold in versions a Redis read returned. Returns False, changing nothing, when a
        flush or local invalidation happened since ``epoch``. ``skip``: the tags that were
        pending when the read started (their reply may predate a bump applied since)."""
        if epoch is not None and epoch != self.epoch:
            return False
        if not self._room():
            return epoch is None
        raised = False
        pending = self.pending
        known = self._versions
        floor = self._floor
        for tag, version in versions:
            if (pending and pending.blocks((tag,))) or (skip and tag in skip):
                continue  # Redis has not applied its bump: its version there is old
            current = known.get(tag)
            if current is None:
                known[tag] = version
            elif version > current:
                known[tag] = version
                raised = True
            if version > floor.get(tag, 0):
                floor[tag] = version
        if raised:
            self.revision += 1
        return True

    def merge_late(self, versions: Iterable[tuple[str, int]]) -> None:
        """Fold in versions of unknown age: a broadcast, or a bump's own result. Merged
        even for a pending tag's floor (a newer version must not be lost while the tag is
        pending), but never bringing back a dropped tag at a version an L1 entry may hold."""
        if not self._room():
            return
        raised = False
        pending = self.pending
        known = self._versions
        floor = self._floor
        for tag, version in versions:
            current = known.get(tag)
            if version > floor.get(tag, 0):
                floor[tag] = version
                if not (pending and pending.blocks((tag,))):
                    known[tag] = version
                    raised = raised or current is not None
            elif current is not None and current > 0 and version > current:
                # A known Redis version, raised: that can only invalidate entries (a local
                # version is kept: an old Redis one may be on an L1 entry).
                known[tag] = version
                raised = True
        if raised:
            self.revision += 1

    def _room(self) -> bool:
        """Bounds the view: when full it is flushed (L1 hits become L2 reads). False when
        it had to flush, so a guarded merge adds nothing to the emptied view."""
        if len(self._versions) < self._max_tags and len(self._floor) < self._max_tags:
            return True
        self.flush()
        return False

    def drop(self, tags: Iterable[str]) -> None:
        """Local half of an invalidation: entries recorded against these tags stop matching
        at once, and in-flight reads may no longer fill L1 (they may carry old versions)."""
        known = self._versions
        for tag in tags:
            known.pop(tag, None)
        self.epoch += 1
        self.revision += 1

    def local_versions(self, tags: Iterable[str]) -> TagVersions:
        """Versions for a load with no Redis to ask: the known one, or a fresh local one."""
        known = self._versions
        pending = self.pending
        out: list[tuple[str, int]] = []
        for tag in tags:
            version = known.get(tag)
            if version is None:
                version = next(self._local)
                if not (pending and pending.blocks((tag,))):  # pending tags stay unknown
                    known[tag] = version
            out.append((tag, version))
        return tuple(out)

    def flush(self) -> None:
        self._versions.clear()
        self._floor.clear()
        self.epoch += 1
        self.revision += 1

    def __len__(self) -> int:
        return len(self._versions)
