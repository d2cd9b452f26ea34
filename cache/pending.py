"""Pending marks: invalidations made here whose bump Redis has not applied yet.

A mark covers the tags of one invalidation: an outbox row (its id, ``>= 0``) or, for an
engine without an outbox, a local one (a negative id). Until a mark is cleared, nothing
depending on its tags is served from either tier or filled into one on this instance:
Redis still holds their old versions. Marks are per invalidation, not per tag, because
clearing after a bump must release exactly the invalidations that bump carried (a tag
also covered by a later, still unapplied row stays pending).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """What one replay sends: the marks it carries and the tags to bump."""

    ids: frozenset[int]
    tags: tuple[str, ...]
    everything: bool
    """Too many tags to remember were pending: bump the global tag instead."""


class PendingInvalidations:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._marks: dict[int, tuple[str, ...]] = {}
        self._counts: Counter[str] = Counter()
        self._everything: set[int] = set()
        """Marks whose tags were not kept (past the limit): they cover every tag."""
        self._unbumped: dict[int, tuple[str, ...]] = {}
        """Per mark, its tags no bump has landed for yet (fewer than its tags only after a
        partial bump, on a cluster with a node down): what a replay still has to send."""
        self._to_bump: Counter[str] = Counter()
        self._local = itertools.count(-1, -1)

    def mark(self, tags: Sequence[str], row: int | None = None) -> int:
        """Marks ``tags`` pending under outbox ``row`` (a local mark when None); returns
        the mark's id. Marking a row already marked changes nothing."""
        mark = next(self._local) if row is None else row
        if mark in self._marks or mark in self._everything:
            return mark
        unique = tuple(dict.fromkeys(tags))
        if len(self._counts) + len(unique) > self._limit:
            # Too many to remember: this mark covers everything until it is cleared.
            self._everything.add(mark)
        else:
            self._marks[mark] = unique
            self._counts.update(unique)
            self._unbumped[mark] = unique
            self._to_bump.update(unique)
        return mark

    def clear(self, ids: Iterable[int]) -> None:
        for mark in ids:
            self._everything.discard(mark)
            tags = self._marks.pop(mark, None)
            if tags is None:
                continue
            _uncount(self._counts, tags)
            _uncount(self._to_bump, self._unbumped.pop(mark))

    def blocks(self, tags: Iterable[str]) -> bool:
        if self._everything:
            return True
        counts = self._counts
        return bool(counts) and any(tag in counts for tag in tags)

    def blocked(self, tags: Iterable[str]) -> frozenset[str]:
        """The tags among ``tags`` pending now (all of them while a mark covers
        everything): what a read starting now may neither merge nor accept from L2."""
        if self._everything:
            return frozenset(tags)
        counts = self._counts
        if not counts:
            return frozenset()
        return frozenset(tag for tag in tags if tag in counts)

    def snapshot(self) -> frozenset[str] | None:
        """Every tag pending now, or None while a mark covers everything: for a read whose
        tags are known only from its reply (a composite)."""
        return None if self._everything else frozenset(self._counts)

    def ids(self) -> frozenset[int]:
        return frozenset(self._marks) | frozenset(self._everything)

    def batch(self) -> PendingBatch:
        """Everything pending now, with the tags still to bump (a tag a partial bump already
        landed for is not sent again for the same marks); pass it to :meth:`replayed`."""
        ids = self.ids()
        if self._everything:
            return PendingBatch(ids, (), True)
        return PendingBatch(ids, tuple(self._to_bump), False)

    def replayed(self, batch: PendingBatch, landed: Collection[str]) -> list[int]:
        """Records the bumps of ``batch`` that Redis applied (``landed``: its tags whose
        bump landed; all of them on one Redis) and clears every mark of it whose tags have
        now all been bumped since it was made; returns the outbox rows among the marks this
        call cleared (now applied). A mark with a tag whose bump did not land (on a
        cluster, its node is down) stays, whole, blocking all its tags: only its landed
        tags are not sent again. A batch that bumped everything sent one tag, the global
        one: it clears every mark, or none. A mark cleared meanwhile by another call is
        left to that call to report."""
        if batch.everything:
            done = [mark for mark in batch.ids if self._holds(mark)] if landed else []
        else:
            done = []
            for mark in batch.ids:
                unbumped = self._unbumped.get(mark)
                if unbumped is None:
                    continue  # cleared meanwhile, or one covering everything
                left = tuple(tag for tag in unbumped if tag not in landed)
                if left:
                    _uncount(self._to_bump, [tag for tag in unbumped if tag in landed])
                    self._unbumped[mark] = left
                else:
                    done.append(mark)
        self.clear(done)
        return sorted(mark for mark in done if mark >= 0)

    def _holds(self, mark: int) -> bool:
        return mark in self._marks or mark in self._everything

    def __bool__(self) -> bool:
        return bool(self._marks) or bool(self._everything)

    def __len__(self) -> int:
        """Pending invalidations (marks), not tags."""
        return len(self._marks) + len(self._everything)


def _uncount(counts: Counter[str], tags: Iterable[str]) -> None:
    for tag in tags:
        counts[tag] -= 1
        if counts[tag] <= 0:
            del counts[tag]
