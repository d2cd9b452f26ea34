"""Signed wire format of entries in Redis.

``blob = HMAC-SHA256(secret, redis_key || 0x00 || rest) || rest`` with ::

    rest    = FORMAT (1 byte) || u32 count || stamp[0] || ... || stamp[count-1]
              || u64 expires_at_ms || u8 found || payload
    stamp   = u32 len(tag) || tag (UTF-8) || i64 version

(integers big-endian). The stamps say which tag versions the entry was computed against,
in the order the engine gives tags (sorted), so a reader that knows the tags of a key and
their current versions builds the bytes a current entry must start with and checks them in
one ``startswith``: no parsing, no per-tag comparison in Python. The read script of a
composite entry (``scripts.READ_ENTRY``) finds the tag names in the same stamps.

The Redis key is inside the MAC so a valid entry copied under another key does not verify;
the stamps are inside it too, so a script can only be steered to tags the writer chose.
``expires_at_ms`` (wall clock, 0 = unknown) lets a reader give L1 the entry's remaining
lifetime without asking Redis for a ``PTTL`` per key. ``payload`` is the msgpack value, or
nothing when ``found`` is 0 (the not-found sentinel).

An entry of an older format raises :class:`OutdatedEntry`: a miss, rewritten on the next
fill, and not an integrity failure (it verifies; it was written by an older release).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Final

from cache.entry import Entry

FORMAT: Final = 3
_FORMAT_BYTE: Final = bytes([FORMAT])
_MAC_SIZE: Final = hashlib.sha256().digest_size
_BLOCK: Final = hashlib.sha256().block_size
_STAMPS_AT: Final = _MAC_SIZE + 5
_U32: Final = struct.Struct(">I")
_VERSION: Final = struct.Struct(">q")  # signed: versions handed out without Redis are < 0
_TRAILER: Final = struct.Struct(">QB")


class IntegrityError(Exception):
    """A blob from Redis failed its MAC check or did not decode."""


class OutdatedEntry(IntegrityError):
    """A genuine entry in an older format: treat as a miss, not as tampering."""


Opened = tuple[bytes | None, int]
"""``(payload | None, expires_at_ms)`` of a verified, current entry."""


def stamp(tag: str, version: int) -> bytes:
    """The bytes recording that an entry was computed at ``version`` of ``tag``."""
    name = tag.encode()
    return _U32.pack(len(name)) + name + _VERSION.pack(version)


def prefix_of(stamps: Sequence[bytes]) -> bytes:
    """What follows the MAC in an entry computed at exactly these stamps."""
    return _FORMAT_BYTE + _U32.pack(len(stamps)) + b"".join(stamps)


class EntryCodec:
    def __init__(self, secret: bytes) -> None:
        # HMAC-SHA256 (RFC 2104) with the keyed inner and outer states computed once:
        # each MAC then costs two hash copies instead of re-deriving both pads, cheaper
        # than ``hmac.digest`` per entry (docs/benchmarks.md). Same output (tested).
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
        payload = entry.payload
        rest = (
            prefix_of([stamp(tag, version) for tag, version in entry.versions])
            + _TRAILER.pack(expires_at_ms, payload is not None)
            + (payload or b"")
        )
        return self._mac(redis_key, rest) + rest

    def decode(self, redis_key: bytes, blob: bytes) -> Entry:
        return self.decode_timed(redis_key, blob)[0]

    def decode_timed(self, redis_key: bytes, blob: bytes) -> tuple[Entry, int]:
        """The entry and its expiry time (Unix ms; 0 when unknown), whatever its tags."""
        self._verify(redis_key, blob)
        try:
            versions, at = _read_stamps(blob)
        except (struct.error, UnicodeDecodeError) as error:
            raise IntegrityError(f"undecodable entry: {error!r}") from error
        payload, expires_at_ms = _read_trailer(blob, at)
        return Entry(payload, versions), expires_at_ms

    def open_current(self, redis_key: bytes, blob: bytes, prefix: bytes) -> Opened | None:
        """The batch read's fast path: the payload and expiry of the entry if it was
        computed at exactly the stamps in ``prefix`` (see :func:`prefix_of`), else ``None``
        (other tags, other versions, or an older format)."""
        self._verify(redis_key, blob)
        if not blob.startswith(prefix, _MAC_SIZE):
            return None
        return _read_trailer(blob, _MAC_SIZE + len(prefix))

    def _verify(self, redis_key: bytes, blob: bytes) -> None:
        if len(blob) <= _MAC_SIZE:
            raise IntegrityError("entry too short")
        # A view, not a slice: this runs for every key of every L2 read.
        if not hmac.compare_digest(
            blob[:_MAC_SIZE], self._mac(redis_key, memoryview(blob)[_MAC_SIZE:])
        ):
            raise IntegrityError("bad signature")


def tags_in(blob: bytes) -> tuple[str, ...]:
    """The tag names an entry's stamps give, *unverified* (for listing entries); ``()``
    when ``blob`` is not a whole current-format entry head (e.g. a truncated peek)."""
    try:
        versions, _ = _read_stamps(blob)
    except (IntegrityError, struct.error, UnicodeDecodeError):
        return ()
    return tuple(tag for tag, _ in versions)


def _read_trailer(blob: bytes, at: int) -> Opened:
    """The payload and expiry that follow the stamps ending at ``at``."""
    try:
        expires_at_ms, found = _TRAILER.unpack_from(blob, at)
    except struct.error as error:
        raise IntegrityError(f"undecodable entry: {error!r}") from error
    return (blob[at + _TRAILER.size :] if found else None), expires_at_ms


def _read_stamps(blob: bytes) -> tuple[tuple[tuple[str, int], ...], int]:
    """The ``(tag, version)`` pairs of a blob's stamps and the offset after them."""
    if len(blob) < _STAMPS_AT:
        raise struct.error("entry too short")
    if blob[_MAC_SIZE] != FORMAT:
        raise OutdatedEntry(f"entry written in an older format (expected format {FORMAT})")
    (count,) = _U32.unpack_from(blob, _MAC_SIZE + 1)
    at = _STAMPS_AT
    versions: list[tuple[str, int]] = []
    for _ in range(count):
        (size,) = _U32.unpack_from(blob, at)
        at += _U32.size
        name = blob[at : at + size]
        if len(name) != size:
            raise struct.error("stamp runs past the end")
        (version,) = _VERSION.unpack_from(blob, at + size)
        versions.append((name.decode(), version))
        at += size + _VERSION.size
    return tuple(versions), at
