"""Key construction: namespaced Redis keys, and the one injective encoder of cache keys.

``compose_key(*parts, args=...)`` spells a key as its parts joined by ``:``. Each part is
written so that no two different inputs share a spelling, and none contains a bare
separator:

* a string is itself, with ``% : ( ) , = @ { }``, whitespace and unprintable characters
  percent-escaped (``%3A``; ``%uXXXX`` / ``%UXXXXXXXX`` past Latin-1), so ordinary names
  and ids read as they are: ``Book:42``, ``Book:genre:science-fiction``;
* every other value starts with ``@``, which no string part can: ``@none``, ``@true``,
  ``@false``, ``@empty`` (the empty string), ``@7`` (an int, never the string ``"7"``),
  ``@1.5`` (a float);
* a tuple or list is ``(a,b,…)`` of its items, a mapping ``{k=v,…}`` sorted by key.

``args`` (a resolver's arguments) is the last part when given: empty arguments are the
empty part, so ``compose_key("Book.reviewCount", "1", args={})`` is ``Book.reviewCount:1:``.
Long arguments are replaced by their SHA-256 (``@h…``), so keys stay short without sharing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final

GLOBAL_TAG: Final = "*"
"""Every entry depends on this tag implicitly: invalidating it drops the whole namespace."""

INLINE_ARGS_LIMIT: Final = 96
"""Longer argument spellings are hashed: a key is read on every request and held in L1."""

KeyPart = str | int | float | bool | None | tuple["KeyPart", ...]
"""A positional part. Mappings go in ``args`` only: at the top level they would spell like
arguments."""

# Characters a string part cannot hold as they are: the separators of this grammar, the
# marker of non-strings, the escape itself, and anything that would not print on one line
# (`strata cache keys` prints keys to be pasted whole into `strata cache inspect`).
_PLAIN_PARTS: Final = frozenset({str, int, float, bool, type(None), tuple})
"""Types that are neither a mapping nor a dataclass (exactly these, not subclasses)."""

_SPECIAL = re.compile(r"[%:(),=@{}\s]")


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"%{code:02X}"
    if code < 0x10000:
        return f"%u{code:04X}"
    return f"%U{code:08X}"


def _string(text: str) -> str:
    if not text:
        return "@empty"
    if text.isprintable() and _SPECIAL.search(text) is None:
        return text
    return "".join(
        _escape_char(char) if not char.isprintable() or _SPECIAL.match(char) else char
        for char in text
    )


def encode_part(part: Any) -> str:
    """One part's spelling: injective, and free of a bare ``:``."""
    # bool before int: True is an int to Python, not to a key.
    if isinstance(part, str):
        return _string(part)
    if part is None:
        return "@none"
    if isinstance(part, bool):
        return "@true" if part else "@false"
    if isinstance(part, int):
        return f"@{part}"
    if isinstance(part, float):
        # repr of a float always has a ".", an "e", "inf" or "nan": never an int's spelling.
        return f"@{part!r}"
    if isinstance(part, Enum):
        return encode_part(part.value)
    if isinstance(part, Mapping):
        items = sorted((_key_name(name), value) for name, value in part.items())
        return (
            "{" + ",".join(f"{_string(name)}={encode_part(value)}" for name, value in items) + "}"
        )
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        # Input objects: by their fields, like the mapping a client sent.
        return encode_part({f.name: getattr(part, f.name) for f in dataclasses.fields(part)})
    if isinstance(part, (tuple, list)):
        return "(" + ",".join(encode_part(item) for item in part) + ")"
    raise TypeError(f"{type(part).__name__} cannot be part of a cache key")


def _key_name(name: object) -> str:
    # Argument names are strings in GraphQL; an int key would spell like its string.
    if not isinstance(name, str):
        raise TypeError(f"mapping keys in a cache key must be strings, not {name!r}")
    return name


def encode_args(args: Mapping[str, Any]) -> str:
    """Arguments as a key's last part: empty, ``{…}`` sorted by name, or ``@h<sha256>``."""
    if not args:
        return ""
    spelled = encode_part(args)
    if len(spelled) <= INLINE_ARGS_LIMIT:
        return spelled
    return "@h" + hashlib.sha256(spelled.encode("utf-8", "surrogatepass")).hexdigest()


def compose_key(first: KeyPart, *rest: KeyPart, args: Mapping[str, Any] | None = None) -> str:
    """``compose_key("Type.field", parent_id, args={...})`` -> a stable, injective key.

    Two calls give the same key only for equal parts (of equal types) and equal arguments;
    ``args={}`` and no ``args`` differ.
    """
    parts = (first, *rest)
    for part in parts:
        # The common parts (names, ids) skip the two costlier checks: keys are built on
        # every read, cache off included.
        if type(part) not in _PLAIN_PARTS and (
            isinstance(part, Mapping) or dataclasses.is_dataclass(part)
        ):
            raise TypeError("pass a mapping as args=, not as a part")
    pieces = [encode_part(part) for part in parts]
    if args is not None:
        pieces.append(encode_args(args))
    return ":".join(pieces)


def extend_key(key: str, *parts: KeyPart, args: Mapping[str, Any] | None = None) -> str:
    """A key built in two steps, the first one kept: ``extend_key(compose_key(*a), *b,
    args=x)`` is ``compose_key(*a, *b, args=x)``, for keys whose leading parts repeat."""
    pieces = [key, *map(encode_part, parts)]
    if args is not None:
        pieces.append(encode_args(args))
    return ":".join(pieces)


def viewer_part(viewer: str | None) -> tuple[str, str | None]:
    """How a viewer is spelled in every per-viewer key: ``(viewer,<id>)``, anonymous being
    ``(viewer,@none)``, so no signed-in viewer can share the anonymous entries."""
    return ("viewer", viewer)


def canonical_tags(own: Sequence[str]) -> tuple[str, ...]:
    """``own`` with :data:`GLOBAL_TAG`, in one canonical (sorted) order: entries record
    their tags in this order, so a reader compares lists, not sets."""
    count = len(own)
    if count == 1 and own[0] != GLOBAL_TAG:  # the common cases, without a set and a sort
        tag = own[0]
        return (tag, GLOBAL_TAG) if tag < GLOBAL_TAG else (GLOBAL_TAG, tag)
    if count == 2:
        low, high = own
        if low > high:
            low, high = high, low
        if low > GLOBAL_TAG and low != high:
            return (GLOBAL_TAG, low, high)
    return tuple(sorted({*own, GLOBAL_TAG}))


class KeySpace:
    """Names of everything the engine keeps in Redis under one namespace.

    On a single Redis the namespace is a Redis Cluster hash tag (``{ns}``): entries and the
    tag versions that validate them share one slot, so one script reads both. On a cluster
    (:meth:`spread_over_slots`) the namespace is a plain prefix, so entries and tag versions
    spread over every slot; the cluster tier then reads each on its own node and validates
    in the client (``cluster_tier.py``).
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._name("{" + namespace + "}:")

    def _name(self, prefix: str) -> None:
        self.prefix = prefix
        self.entry_prefix = prefix + "e:"
        self.tag_prefix = prefix + "t:"
        self.channel = prefix + "invalidations"

    def spread_over_slots(self) -> None:
        """The cluster layout. Called by the engine once at start, when it finds a cluster,
        before any key is built."""
        self._name(self.namespace + ":")

    def entry(self, key: str) -> str:
        return self.entry_prefix + key

    def tag(self, tag: str) -> str:
        return self.tag_prefix + tag
