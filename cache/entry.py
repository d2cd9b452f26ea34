"""What the engine stores: an encoded value (or "not found") and the tag versions it was
validated against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

TagVersions = tuple[tuple[str, int], ...]
"""``((tag, version), ...)``: the state of the world an entry was computed in."""


class _NotFound:
    """Type of :data:`NOT_FOUND`; a singleton so identity checks work."""

    _instance: _NotFound | None = None

    def __new__(cls) -> _NotFound:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_FOUND"

    def __bool__(self) -> bool:
        return False


NOT_FOUND: Final = _NotFound()
"""A single-key loader returns this to say "no such thing" (cached, with a short TTL)."""


def encode_value(value: Any) -> bytes:
    """msgpack, never pickle: a cache must not be a code-execution channel. Tuples come
    back as lists; anything msgpack cannot represent raises ``TypeError`` at store time."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def decode_value(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached answer. ``payload`` is ``None`` for the not-found sentinel.

    The value is kept encoded so every reader decodes its own copy: a caller mutating what
    it got can never corrupt what the next caller sees.
    """

    payload: bytes | None
    versions: TagVersions

    @property
    def found(self) -> bool:
        return self.payload is not None

    @property
    def value(self) -> Any:
        """The decoded value, or ``None`` for not-found."""
        return None if self.payload is None else decode_value(self.payload)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(tag for tag, _ in self.versions)

    @classmethod
    def of(cls, value: Any, versions: TagVersions) -> Entry:
        if value is NOT_FOUND:
            return cls(None, versions)
        return cls(encode_value(value), versions)
