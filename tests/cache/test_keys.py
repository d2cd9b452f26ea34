"""The key encoder is injective: different inputs, typed as they are, never share a key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache import compose_key
from cache.keys import GLOBAL_TAG, INLINE_ARGS_LIMIT, canonical_tags, viewer_part

# Strings made of the grammar's own characters (and whitespace, a lone surrogate, text
# past Latin-1) as often as of ordinary ones.
_TRICKY = ":%(),=@{}\\ \n\t\u00e9\u2028\ud800\U0001f4da0123456789-."
texts = st.text(
    alphabet=st.one_of(st.sampled_from(_TRICKY), st.characters()), max_size=6
) | st.sampled_from(["None", "none", "@none", "null", "True", "7", "-7", "7.0", "", "@empty"])
# GraphQL numbers: 64-bit integers, finite floats (NaN equals nothing, not even itself).
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
parts = st.recursive(
    scalars, lambda inner: st.tuples(inner) | st.tuples(inner, inner), max_leaves=4
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
arguments = st.none() | st.dictionaries(texts, values, max_size=4)


def typed(value: Any) -> Any:
    """A value with its type made part of its identity: `7`, `"7"`, `7.0`, `True` differ."""
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", repr(value))  # -0.0 and 0.0 are two spellings, fine either way
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, dict):
        return ("map", tuple(sorted((name, typed(item)) for name, item in value.items())))
    return ("seq", tuple(typed(item) for item in value))


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(parts, min_size=1, max_size=4),
    arguments,
    st.lists(parts, min_size=1, max_size=4),
    arguments,
)
def test_distinct_inputs_give_distinct_keys(
    parts_a: list[Any],
    args_a: dict[str, Any] | None,
    parts_b: list[Any],
    args_b: dict[str, Any] | None,
) -> None:
    same = typed(parts_a) == typed(parts_b) and (
        (args_a is None and args_b is None)
        or (args_a is not None and args_b is not None and typed(args_a) == typed(args_b))
    )
    assert (compose_key(*parts_a, args=args_a) == compose_key(*parts_b, args=args_b)) == same


@settings(max_examples=500, deadline=None)
@given(st.lists(parts, min_size=1, max_size=4), arguments)
def test_a_key_prints_on_one_line(parts_a: list[Any], args_a: dict[str, Any] | None) -> None:
    # `strata cache keys` prints keys to be pasted whole into `strata cache inspect`.
    key = compose_key(*parts_a, args=args_a)
    assert key.isprintable()
    assert " " not in key
    key.encode("utf-8")  # a lone surrogate in a part is escaped, so Redis can store the key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((None,), ("None",)),
        (("7",), (7,)),
        ((7,), (7.0,)),
        ((1,), (True,)),
        (("", ""), ("",)),
        (("x", ""), ("x",)),
        (("a:b",), ("a", "b")),
        (("a,b",), (("a", "b"),)),
        ((("a",), "b"), (("a", "b"),)),
        (("@none",), (None,)),
        (("@empty",), ("",)),
        (("%3A",), (":",)),
    ],
)
def test_classic_collisions_are_apart(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert compose_key(*a) != compose_key(*b)


def test_arguments_are_their_own_part() -> None:
    assert compose_key("Q", args={}) != compose_key("Q")
    assert compose_key("Q", args={}) != compose_key("Q", "")
    assert compose_key("Q", args={"genre": None}) != compose_key("Q", args={"genre": "None"})
    nested: Any = ({"a": 1},)  # a mapping inside a tuple part spells with parentheses
    assert compose_key("Q", nested) != compose_key("Q", args={"a": 1})
    with pytest.raises(TypeError):
        compose_key("Q", {"a": 1})  # type: ignore[arg-type]


def test_ordinary_names_and_ids_read_as_they_are() -> None:
    # Operators copy these from responses and `strata cache keys` into commands.
    assert compose_key("Book", "42") == "Book:42"
    assert compose_key("Book", "genre", "science-fiction") == "Book:genre:science-fiction"
    assert compose_key("Book.reviewCount", "1", args={}) == "Book.reviewCount:1:"


def test_arguments_are_normalized_and_long_ones_hashed() -> None:
    assert compose_key("Q", args={"a": 1, "b": 2}) == compose_key("Q", args={"b": 2, "a": 1})
    long_key = compose_key("Q", args={"filter": "x" * INLINE_ARGS_LIMIT})
    assert long_key.startswith("Q:@h")
    assert len(long_key) == len("Q:@h") + 64
    assert long_key != compose_key("Q", args={"filter": "x" * (INLINE_ARGS_LIMIT + 1)})


def test_viewers_are_spelled_one_way_and_anonymous_is_nobody() -> None:
    anonymous = compose_key("F", viewer_part(None))
    assert anonymous != compose_key("F", viewer_part("None"))
    assert anonymous != compose_key("F", viewer_part(""))
    assert compose_key("F", viewer_part("7")) == "F:(viewer,7)"


@given(st.lists(st.text(alphabet="!*+Aa\x00é", max_size=3), max_size=3))
def test_tags_are_recorded_in_one_canonical_order(tags: list[str]) -> None:
    # Writers and readers must agree byte for byte (an entry's stamps are compared whole),
    # whichever path computed the order.
    assert canonical_tags(tags) == tuple(sorted({*tags, GLOBAL_TAG}))
