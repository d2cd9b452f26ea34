"""Entry signing and its format (the key builder is tested in test_keys.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from cache import NOT_FOUND, Entry
from cache.codec import (
    EntryCodec,
    IntegrityError,
    Opened,
    OutdatedEntry,
    prefix_of,
    stamp,
    tags_in,
)
from tests.cache.conftest import format2_blob

VERSIONS = (("*", 17), ("User:1", 42))


def test_round_trip_keeps_value_and_versions() -> None:
    codec = EntryCodec(b"k")
    entry = Entry.of({"name": "x", "n": [1, 2.5, None, b"raw"]}, VERSIONS)
    decoded = codec.decode(b"key", codec.encode(b"key", entry))
    assert decoded == entry
    assert decoded.value == {"name": "x", "n": [1, 2.5, None, b"raw"]}


def test_not_found_is_distinct_from_a_none_value() -> None:
    codec = EntryCodec(b"k")
    missing = codec.decode(b"key", codec.encode(b"key", Entry.of(NOT_FOUND, VERSIONS)))
    none_value = codec.decode(b"key", codec.encode(b"key", Entry.of(None, VERSIONS)))
    assert not missing.found
    assert none_value.found
    assert none_value.value is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # flipped bit in the body
        lambda blob: bytes([blob[0] ^ 1]) + blob[1:],  # flipped bit in the MAC
        lambda blob: blob[:10],  # truncated
        lambda blob: b"",
    ],
)
def test_tampered_blob_is_rejected(tamper: object) -> None:
    codec = EntryCodec(b"k")
    blob = codec.encode(b"key", Entry.of("value", VERSIONS))
    with pytest.raises(IntegrityError):
        codec.decode(b"key", tamper(blob))  # type: ignore[operator]


def test_entry_copied_under_another_key_is_rejected() -> None:
    codec = EntryCodec(b"k")
    blob = codec.encode(b"key-a", Entry.of("value", VERSIONS))
    with pytest.raises(IntegrityError):
        codec.decode(b"key-b", blob)


def test_other_secret_is_rejected() -> None:
    blob = EntryCodec(b"k1").encode(b"key", Entry.of("value", VERSIONS))
    with pytest.raises(IntegrityError):
        EntryCodec(b"k2").decode(b"key", blob)


@pytest.mark.parametrize("secret", [b"k", b"s" * 64, b"long" * 40])
def test_mac_is_standard_hmac_sha256(secret: bytes) -> None:
    # The codec precomputes the keyed pads; it must still be RFC 2104 HMAC-SHA256
    # (short key, key of exactly one block, key hashed down first).
    blob = EntryCodec(secret).encode(b"key", Entry.of("value", VERSIONS))
    expected = hmac.new(secret, b"key\x00" + blob[32:], hashlib.sha256).digest()
    assert blob[:32] == expected


def test_tags_with_any_characters_round_trip() -> None:
    codec = EntryCodec(b"k")
    versions = (("", 1), ("a\x00b", 2), ("é" * 70_000, 3))
    entry = Entry.of("value", versions)
    blob = codec.encode(b"key", entry)
    assert codec.decode(b"key", blob) == entry
    assert tags_in(blob) == ("", "a\x00b", "é" * 70_000)
    assert tags_in(blob[:100]) == ()  # a truncated head names nothing rather than garbage


def test_open_current_needs_exactly_the_recorded_stamps() -> None:
    codec = EntryCodec(b"k")
    blob = codec.encode(b"key", Entry.of("value", VERSIONS), expires_at_ms=1234)

    def opened(versions: tuple[tuple[str, int], ...]) -> Opened | None:
        return codec.open_current(b"key", blob, prefix_of([stamp(t, v) for t, v in versions]))

    current = opened(VERSIONS)
    assert current is not None
    payload, expires_at_ms = current
    assert (Entry(payload, VERSIONS).value, expires_at_ms) == ("value", 1234)
    assert opened((("*", 17), ("User:1", 43))) is None  # a tag moved on
    assert opened((("*", 17),)) is None  # the reader depends on fewer tags
    assert opened((*VERSIONS, ("User:2", 1))) is None  # or on more
    assert opened((("*", 17), ("User:10", 42))) is None  # or on another
    with pytest.raises(IntegrityError):
        codec.open_current(b"other-key", blob, prefix_of([]))


def test_entry_of_an_older_format_is_outdated_not_tampered() -> None:
    blob = format2_blob(b"k", b"key", ["a", "*b"], b"\x94\x02\xc0\x90\x00")
    codec = EntryCodec(b"k")
    with pytest.raises(OutdatedEntry):
        codec.decode(b"key", blob)
    assert codec.open_current(b"key", blob, prefix_of([])) is None
    assert tags_in(blob) == ()


def test_readers_get_independent_copies() -> None:
    entry = Entry.of({"items": [1]}, VERSIONS)
    first = entry.value
    first["items"].append(2)
    assert entry.value == {"items": [1]}
