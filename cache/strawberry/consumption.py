"""What a composite value consumed: the tag versions, the smallest TTL and the widest
scope of every cached value it was built from.

A completed subtree of a GraphQL result is stored only with the versions of everything it
used (see ``cache.strawberry.subtrees``). Reads are batched across the whole request (one
DataLoader tick serves many subtrees), so the engine's own recording, which sees reads,
cannot say which subtree a value went into. A value is therefore counted where a resolver
*consumes* it: ``consume`` adds it to every subtree open in the consuming task (nested
subtrees all see it, as their parents contain them). A consumer that cannot say what a
value depended on calls ``unknown`` instead, and no open subtree is stored.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from cache.entry import TagVersions
from cache.recording import Recorder


class Scope(StrEnum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


@dataclass(slots=True)
class CachePolicy:
    """The freshness a response may promise: the smallest TTL and widest scope it used
    (the web layer turns it into a ``Cache-Control`` header)."""

    max_age: float | None = None
    private: bool = False

    def include(self, ttl: float, scope: Scope) -> None:
        if self.max_age is None or ttl < self.max_age:
            self.max_age = ttl
        if scope is Scope.PRIVATE:
            self.private = True


class Consumption:
    """One open subtree's record."""

    __slots__ = ("complete", "policy", "recorder")

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.policy = CachePolicy()
        self.complete = True  # False once something it used has no known versions


_open: ContextVar[tuple[Consumption, ...]] = ContextVar("cache_consumptions", default=())


def is_open() -> bool:
    return bool(_open.get())


def consume(versions: TagVersions, ttl: float, scope: Scope) -> None:
    """A resolver used a value valid under `versions`, fresh for `ttl`, of `scope`."""
    for consumption in _open.get():
        consumption.recorder.add(versions)
        consumption.policy.include(ttl, scope)


def unknown() -> None:
    """A resolver used a value whose tag versions are not known: nothing open may be kept."""
    for consumption in _open.get():
        consumption.complete = False


def opened() -> tuple[Consumption, ...]:
    return _open.get()


def enter(stack: tuple[Consumption, ...]) -> object:
    """Makes `stack` the open consumptions of this task; returns what `leave` restores."""
    return _open.set(stack)


def leave(token: object) -> None:
    _open.reset(token)  # type: ignore[arg-type]
