"""Signed wire format of entries in Redis.

``blob = HMAC-SHA256(secret, redis_key || 0x00 || rest) || rest`` with
``rest = u32be(len(header)) || header || body``, ``header`` = the entry's tags joined by
``0x00`` (so the read script can find the tag version keys of an entry it has never seen)
and ``body = msgpack([FORMAT, payload | nil, [version, ...], expires_at_ms])``. The Redis
key is inside the MAC so a valid entry copied under another key does not verify; the header
is inside it too, so the script can only be steered to tags the writer chose.
``expires_at_ms`` (wall clock, 0 = unknown) lets a reader give L1 the entry's remaining
lifetime without asking Redis for a ``PTTL`` per key.

Format 1 (``rest = msgpack([1, payload | nil, [[tag, version], ...]])``, no header, no
expiry) is still decoded, so entries written before an upgrade stay readable until they
expire.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Final

import msgpack

from cache.entry import Entry

FORMAT: Final = 2
_LEGACY_FORMAT: Final = 1
_MAC_SIZE: Final = hashlib.sha256().digest_size
_BLOCK: Final = hashlib.sha256().block_size
_HEADER_AT: Final = _MAC_SIZE + 4
_LEGACY_MARK: Final = 0x93  # msgpack fixarray of 3: the first byte of a format-1 body
_SEPARATOR: Final = "\x00"
_U32: Final = struct.Struct(">I").pack


class IntegrityError(Exception):
    """A blob from Redis failed its MAC check or did not decode."""


class EntryCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # HMAC-SHA256 (RFC 2104) with the keyed inner and outer states computed once:
        # each MAC then costs two hash copies instead of re-deriving both pads, about
        # 40 % cheaper than ``hmac.digest`` per entry. Same output (tested against it).
        key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
        key = key.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def _mac(self, redis_key: bytes, rest: bytes | memoryview) -> bytes:
        inner = self._inner.copy()
        inner.update(redis_key + b"\x00")
        inner.update(rest)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def encode(self, redis_key: bytes, entry: Entry, expires_at_ms: int = 0) -> bytes:
        """Raises ``ValueError`` for a tag containing NUL (the header separator): such an
        entry is not stored in Redis."""
        tags = entry.tags
        if any(_SEPARATOR in tag for tag in tags):
            raise ValueError("a tag contains NUL: entry not storable in Redis")
        body: bytes = msgpack.packb(
            [FORMAT, entry.payload, [version for _, version in entry.versions], expires_at_ms],
            use_bin_type=True,
        )
        rest = header_of(tags) + body
        return self._mac(redis_key, rest) + rest

    def decode(self, redis_key: bytes, blob: bytes) -> Entry:
        return self.decode_timed(redis_key, blob)[0]

    def decode_timed(self, redis_key: bytes, blob: bytes) -> tuple[Entry, int]:
        """The entry and its expiry time (Unix ms; 0 when unknown), whatever its tags."""
        self._verify(redis_key, blob)
        if blob[_MAC_SIZE] == _LEGACY_MARK:
            return _decode_legacy(memoryview(blob)[_MAC_SIZE:]), 0
        body_at = _HEADER_AT + int.from_bytes(blob[_MAC_SIZE:_HEADER_AT], "big")
        try:
            tags = (
                str(blob[_HEADER_AT:body_at], "utf-8").split(_SEPARATOR)
                if body_at > _HEADER_AT
                else []
            )
        except UnicodeDecodeError as error:
            raise IntegrityError(f"undecodable tags: {error!r}") from error
        payload, versions, expires_at_ms = _unpack_body(blob, body_at)
        if len(versions) != len(tags):
            raise IntegrityError("tags and versions disagree")
        # Signed by us, so the types are ours: no per-version int() needed.
        return Entry(payload, tuple(zip(tags, versions, strict=True))), expires_at_ms

    def decode_known(self, redis_key: bytes, blob: bytes, header: bytes) -> Opened | None:
        """The batch read's fast path, for a reader that knows which tags the entry must
        depend on (``header`` = :func:`header_of` of them): the entry's payload, recorded
        versions (in the order of those tags) and expiry, or ``None`` when it was written
        against other tags. A byte comparison instead of parsing the header."""
        self._verify(redis_key, blob)
        if not blob.startswith(header, _MAC_SIZE):
            return None
        return _unpack_body(blob, _MAC_SIZE + len(header))

    def _verify(self, redis_key: bytes, blob: bytes) -> None:
        if len(blob) <= _MAC_SIZE:
            raise IntegrityError("entry too short")
        # A view, not a slice: this runs for every key of every L2 read.
        if not hmac.compare_digest(
            blob[:_MAC_SIZE], self._mac(redis_key, memoryview(blob)[_MAC_SIZE:])
        ):
            raise IntegrityError("bad signature")


Opened = tuple[bytes | None, list[int], int]
"""``(payload | None, recorded versions, expires_at_ms)`` of a verified entry."""


def header_of(tags: Sequence[str]) -> bytes:
    """The framed header naming ``tags`` in this order (its u32 length, then the tags
    joined by NUL), exactly as it follows the MAC in a blob."""
    joined = _SEPARATOR.join(tags).encode()
    return _U32(len(joined)) + joined


def _unpack_body(blob: bytes, body_at: int) -> Opened:
    try:
        fmt, payload, versions, expires_at_ms = msgpack.unpackb(
            memoryview(blob)[body_at:], raw=False
        )
    except Exception as error:  # any decode failure is the same answer: not an entry
        raise IntegrityError(f"undecodable entry: {error!r}") from error
    if fmt != FORMAT or not (payload is None or isinstance(payload, bytes)):
        raise IntegrityError("unknown entry format")
    return payload, versions, expires_at_ms


def _decode_legacy(body: bytes | memoryview) -> Entry:
    try:
        fmt, payload, versions = msgpack.unpackb(body, raw=False)
    except Exception as error:
        raise IntegrityError(f"undecodable entry: {error!r}") from error
    if fmt != _LEGACY_FORMAT or not (payload is None or isinstance(payload, bytes)):
        raise IntegrityError("unknown entry format")
    return Entry(payload, tuple((str(tag), int(version)) for tag, version in versions))
