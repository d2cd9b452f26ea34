"""Per-task record of the tag versions behind every value served.

A whole-response cache (or any value composed of cached values) opens a recording, lets the
engine serve reads, then stores its composite with ``rec.tag_versions``: the composite is
valid only while every tag it was built from still has the version it was read at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cache.entry import TagVersions


class Recorder:
    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self.reads = 0

    def add(self, versions: TagVersions) -> None:
        # Keep the oldest version seen of a tag: if two values disagree, the composite is
        # already stale and must never validate.
        known = self._versions
        for tag, version in versions:
            current = known.get(tag)
            if current is None or version < current:
                known[tag] = version
        self.reads += 1

    @property
    def tag_versions(self) -> TagVersions:
        return tuple(sorted(self._versions.items()))

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self._versions)


_active: ContextVar[tuple[Recorder, ...]] = ContextVar("cache_recorders", default=())


@contextmanager
def recording() -> Iterator[Recorder]:
    """Nested recordings all see the reads made inside them."""
    recorder = Recorder()
    token = _active.set((*_active.get(), recorder))
    try:
        yield recorder
    finally:
        _active.reset(token)


def record(versions: TagVersions) -> None:
    for recorder in _active.get():
        recorder.add(versions)


def active() -> tuple[Recorder, ...]:
    return _active.get()
