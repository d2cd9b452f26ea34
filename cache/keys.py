"""Key construction: namespaced Redis keys, and an injective builder for cache keys."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import orjson

GLOBAL_TAG: Final = "*"
"""Every entry depends on this tag implicitly: invalidating it drops the whole namespace."""

_INLINE_ARGS_LIMIT: Final = 64


def canonical_tags(own: Sequence[str]) -> tuple[str, ...]:
    """``own`` with :data:`GLOBAL_TAG`, in one canonical (sorted) order: entries record
    their tags in this order, so a reader compares lists, not sets."""
    if len(own) == 1 and own[0] != GLOBAL_TAG:  # the common case, without a set and a sort
        tag = own[0]
        return (tag, GLOBAL_TAG) if tag < GLOBAL_TAG else (GLOBAL_TAG, tag)
    return tuple(sorted({*own, GLOBAL_TAG}))


def compose_key(*parts: str | int, args: Mapping[str, Any] | None = None) -> str:
    """``compose_key("Type", "field", parent_id, args={...})`` -> a stable cache key.

    Parts are percent-escaped before joining with ``:`` so no two different part lists
    produce the same key. Arguments are normalized (sorted keys, compact JSON); long ones
    are replaced by their full SHA-256, so keys stay short without sharing.
    """
    pieces = [quote(str(part), safe="") for part in parts]
    if args:
        canonical = orjson.dumps(args, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        if len(canonical) <= _INLINE_ARGS_LIMIT:
            pieces.append("a=" + quote(canonical.decode(), safe=""))
        else:
            pieces.append("h=" + hashlib.sha256(canonical).hexdigest())
    return ":".join(pieces)


class KeySpace:
    """Names of everything the engine keeps in Redis under one namespace.

    The namespace is a Redis Cluster hash tag (``{ns}``): entries and the tag versions that
    validate them must be in one slot for a single script to read both.
    """

    def __init__(self, namespace: str) -> None:
        self.prefix = "{" + namespace + "}:"
        self.entry_prefix = self.prefix + "e:"
        self.tag_prefix = self.prefix + "t:"
        self.channel = self.prefix + "invalidations"

    def entry(self, key: str) -> str:
        return self.entry_prefix + key

    def tag(self, tag: str) -> str:
        return self.tag_prefix + tag
