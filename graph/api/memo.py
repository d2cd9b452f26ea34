"""A small LRU memo for per-document facts, keyed by digests of the client's text.

Keys are digests, never the text itself, so a memo is bounded in bytes as well as in
entries (SPEC 14) whatever the documents clients send.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
MEMO_ENTRIES = 4096


def document_key(query: str, operation_name: str | None) -> bytes:
    """A digest of (operation name, query text) that tells every pair apart: the name's
    length comes first, so no name can run into the query."""
    name = "-" if operation_name is None else f"{len(operation_name)}:{operation_name}"
    # surrogatepass: JSON may carry a lone surrogate, which must not fail here.
    return hashlib.sha256(f"{name}|{query}".encode(errors="surrogatepass")).digest()


class Memo(Generic[V]):
    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self.entries = entries
        self._values: OrderedDict[Hashable, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        try:
            self._values.move_to_end(key)
            return self._values[key]
        except KeyError:
            value = self._values[key] = compute()
            if len(self._values) > self.entries:
                self._values.popitem(last=False)
            return value
