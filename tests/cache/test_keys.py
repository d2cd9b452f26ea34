"""The key encoder's injectivity and normalization."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cache import compose_key
from cache.keys import GLOBAL_TAG, canonical_tags

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


@given(st.lists(st.text(alphabet="!*+Aa\x00é", max_size=3), max_size=3))
def test_tags_are_recorded_in_one_canonical_order(tags: list[str]) -> None:
    # Writers and readers must agree byte for byte (an entry's stamps are compared whole),
    # whichever path computed the order.
    assert canonical_tags(tags) == tuple(sorted({*tags, GLOBAL_TAG}))
