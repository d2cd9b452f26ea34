"""What a connection's client asked for under `edges { node { … } }`.

Resolvers use it to fetch relations for a whole page in one batch up front, so that the
per-node fields can be answered synchronously: an async field costs far more in
graphql-core than a plain attribute. Read from Strawberry's public `info.selected_fields`,
whose fragments (named and inline) carry their own selections; a field is found by its
name, whatever alias the client gave it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from graph.api.context import Info


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, (InlineFragment, FragmentSpread)):
            yield from _fields(selection.selections)


def child_fields(info: Info, child: str) -> frozenset[str]:
    """Field names selected under `child { … }` of the field being resolved."""
    names: set[str] = set()
    for field in info.selected_fields:
        for node in _fields(field.selections):
            if node.name == child:
                names.update(grandchild.name for grandchild in _fields(node.selections))
    return frozenset(names)
