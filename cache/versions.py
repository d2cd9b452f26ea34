"""The tag versions this process believes current: what L1 entries are checked against.

Redis holds the authoritative version of each tag. This view caches them locally so an L1
hit needs no round trip, and it moves only forward: versions from Redis grow (see
``scripts.py``), so folding in a late reply with ``max`` can never undo a newer
invalidation. A tag missing from the view makes every entry depending on it a miss, which
is always safe.

Pending tags (invalidated here, their bump not yet applied in Redis) are kept out of the
view: no reply from Redis, which still holds their old versions, may bring them back, so
nothing depending on them is served from L1 or filled into it until the bump lands.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from cache.entry import TagVersions


class PendingInvalidations:
    """Tags invalidated while Redis was unreachable. Until they are replayed, L2 entries
    that depend on them are not trusted (Redis still has their old versions)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._tags: set[str] = set()
        self._all = False

    def queue(self, tags: Iterable[str]) -> None:
        self._tags.update(tags)
        if len(self._tags) > self._limit:
            # Too many to remember: invalidate the whole namespace on replay instead.
            self._tags.clear()
            self._all = True

    def blocks(self, tags: Iterable[str]) -> bool:
        if self._all:
            return True
        return bool(self._tags) and not self._tags.isdisjoint(tags)

    def batch(self) -> tuple[frozenset[str], bool]:
        """What a replay sends now; pass it to :meth:`replayed` once Redis has it."""
        return frozenset(self._tags), self._all

    def replayed(self, batch: tuple[frozenset[str], bool]) -> None:
        tags, everything = batch
        self._tags -= tags
        if everything:
            self._all = False

    def __bool__(self) -> bool:
        return self._all or bool(self._tags)

    def __len__(self) -> int:
        return len(self._tags) + int(self._all)


class TagVersionView:
    def __init__(self, max_tags: int, max_pending: int = 10_000) -> None:
        self.pending = PendingInvalidations(max_pending)
        self._versions: dict[str, int] = {}
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

    def is_current(self, versions: TagVersions) -> bool:
        known = self._versions
        # A plain loop: this runs on every L1 hit and beats all() over a generator.
        for tag, version in versions:  # noqa: SIM110
            if known.get(tag) != version:
                return False
        return True

    def merge(self, versions: Iterable[tuple[str, int]], epoch: int | None = None) -> bool:
        """Fold in versions read from Redis (or broadcast). Returns False, changing nothing,
        when ``epoch`` is given and a flush or local invalidation happened since."""
        if epoch is not None and epoch != self.epoch:
            return False
        known = self._versions
        if len(known) >= self._max_tags:
            # Bound the view: dropping it only turns L1 hits into L2 reads.
            self.flush()
            if epoch is not None:
                return False
        raised = False
        pending = self.pending
        for tag, version in versions:
            if pending and pending.blocks((tag,)):
                continue  # Redis has not applied its bump: its version there is old
            current = known.get(tag)
            if current is None:
                known[tag] = version
            elif version > current:
                known[tag] = version
                raised = True
        if raised:
            self.revision += 1
        return True

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
        self.epoch += 1
        self.revision += 1

    def __len__(self) -> int:
        return len(self._versions)
