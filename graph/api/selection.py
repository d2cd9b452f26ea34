"""What a connection's client asked for under `edges { node { … } }`.

Resolvers use it to fetch relations for a whole page in one batch up front, so that the
per-node fields can be answered synchronously: an async field costs far more in
graphql-core than a plain attribute.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from graph.api.context import Info


def _fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _named(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    name: str,
) -> Iterator[FieldNode]:
    return (field for field in _fields(selection_set, fragments) if field.name.value == name)


def child_fields(info: Info, child: str) -> frozenset[str]:
    """Field names selected under `child { … }` of the field being resolved."""
    raw = info._raw_info
    names: set[str] = set()
    for field in raw.field_nodes:
        for node in _named(field.selection_set, raw.fragments, child):
            names.update(f.name.value for f in _fields(node.selection_set, raw.fragments))
    return frozenset(names)
