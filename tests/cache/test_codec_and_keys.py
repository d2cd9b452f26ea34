"""Entry signing, and the key builder's injectivity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache import NOT_FOUND, Entry, compose_key
from cache.codec import EntryCodec, IntegrityError

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


def test_readers_get_independent_copies() -> None:
    entry = Entry.of({"items": [1]}, VERSIONS)
    first = entry.value
    first["items"].append(2)
    assert entry.value == {"items": [1]}


parts = st.lists(st.one_of(st.text(max_size=8), st.integers()), min_size=1, max_size=4)
# GraphQL arguments are JSON: 64-bit integers at most.
json_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
args = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.one_of(json_ints, st.text())))


@settings(max_examples=300, deadline=None)
@given(parts, args, parts, args)
def test_compose_key_is_injective(
    parts_a: list[str | int],
    args_a: dict[str, object] | None,
    parts_b: list[str | int],
    args_b: dict[str, object] | None,
) -> None:
    same_input = [str(p) for p in parts_a] == [str(p) for p in parts_b] and (args_a or None) == (
        args_b or None
    )
    key_a = compose_key(*parts_a, args=args_a)
    key_b = compose_key(*parts_b, args=args_b)
    assert (key_a == key_b) == same_input


def test_compose_key_normalizes_argument_order() -> None:
    assert compose_key("Q", args={"a": 1, "b": 2}) == compose_key("Q", args={"b": 2, "a": 1})
    long_args = {"filter": "x" * 200}
    assert compose_key("Q", args=long_args).startswith("Q:h=")
