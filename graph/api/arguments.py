"""Text arguments bounded like the stored values they are compared with (SPEC 2, 9, 14).

A text argument flows into cache keys and tags (`Book:genre:<g>`) before any resolver
could refuse it, so a long one would make long Redis keys and long-lived tag versions. Its
length is therefore checked before execution, for literals and for the variables that feed
them alike.

Pure: graphql-core's schema and AST only. The plan of a document (which literals are too
long, which variables feed which bound) is computed once per document by the caller's memo;
a request then only measures its variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
)

from models.writes import GENRE_LIMIT

ID_LIMIT = 64  # ids are at most 18 digits; room to spare, so a malformed one is still null
CURSOR_LIMIT = 64  # a cursor is the base64 of `<Type>:<id>`
TEXT_LIMIT = 200  # any other text argument: as long as the longest tag invalidateCache takes

# (type, field, argument) -> limit, where the stored value's own limit is known.
STORED_LIMITS: Mapping[tuple[str, str, str], int] = {("Query", "books", "genre"): GENRE_LIMIT}

# (type, field, argument) -> the most characters that argument may have.
Bounds = Mapping[tuple[str, str, str], int]


def text_bounds(schema: GraphQLSchema) -> dict[tuple[str, str, str], int]:
    """A bound for every argument of the schema whose type is ID or String (or a list of)."""
    bounds: dict[tuple[str, str, str], int] = {}
    for type_ in schema.type_map.values():
        if type_.name.startswith("__") or not (is_object_type(type_) or is_interface_type(type_)):
            continue
        for field_name, field in type_.fields.items():
            for name, argument in field.args.items():
                kind = get_named_type(argument.type).name
                key = (type_.name, field_name, name)
                if key in STORED_LIMITS:
                    bounds[key] = STORED_LIMITS[key]
                elif kind == "ID":
                    bounds[key] = ID_LIMIT
                elif kind == "String":
                    bounds[key] = CURSOR_LIMIT if name == "after" else TEXT_LIMIT
    return bounds


@dataclass(frozen=True, slots=True)
class TextPlan:
    """What a document's text arguments need: `too_long` names the first literal over its
    bound (the document is refused whatever its variables), `variables` the bound of each
    variable given to a bounded argument (the smallest, when it feeds several)."""

    too_long: str | None
    variables: tuple[tuple[str, int, str], ...]

    def violation(self, values: Mapping[str, Any] | None) -> str | None:
        """The message for the first argument over its bound, or None."""
        if self.too_long is not None:
            return self.too_long
        if not values:
            return None
        for variable, limit, where in self.variables:
            for text in _texts(values.get(variable)):
                if len(text) > limit:
                    return _message(where, limit)
        return None


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def _where(field: str, argument: str) -> str:
    # Clients know `after` as the cursor they were given: the message says so.
    return f"the cursor {field}(after:)" if argument == "after" else f"{field}({argument}:)"


def _message(where: str, limit: int) -> str:
    return f"{where} must be at most {limit} characters"


def text_plan(schema: GraphQLSchema, bounds: Bounds, document: DocumentNode) -> TextPlan:
    """The plan of every operation and fragment of the document."""
    walk = _Walk(schema, bounds, {})
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = schema.get_root_type(definition.operation)
            walk.selection_set(definition.selection_set, root)
        elif isinstance(definition, FragmentDefinitionNode):
            walk.selection_set(
                definition.selection_set, schema.get_type(definition.type_condition.name.value)
            )
    variables = tuple(
        (name, limit, where) for name, (limit, where) in sorted(walk.variables.items())
    )
    return TextPlan(walk.too_long, variables)


@dataclass
class _Walk:
    schema: GraphQLSchema
    bounds: Bounds
    variables: dict[str, tuple[int, str]]
    too_long: str | None = None

    def selection_set(self, node: SelectionSetNode | None, parent: GraphQLNamedType | None) -> None:
        if node is None:
            return
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = parent if condition is None else self.schema.get_type(condition.name.value)
                self.selection_set(selection.selection_set, inner)
            # named spreads: their definitions are walked on their own

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> None:
        child: GraphQLNamedType | None = None
        if parent is not None and (is_object_type(parent) or is_interface_type(parent)):
            definition = parent.fields.get(node.name.value)  # type: ignore[attr-defined]
            if definition is not None:
                child = get_named_type(definition.type)
            for argument in node.arguments or ():
                limit = self.bounds.get((parent.name, node.name.value, argument.name.value))
                if limit is not None:
                    self.value(argument.value, limit, _where(node.name.value, argument.name.value))
        self.selection_set(node.selection_set, child)

    def value(self, node: ValueNode, limit: int, where: str) -> None:
        if isinstance(node, StringValueNode):
            if len(node.value) > limit and self.too_long is None:
                self.too_long = _message(where, limit)
        elif isinstance(node, VariableNode):
            name = node.name.value
            known = self.variables.get(name)
            if known is None or limit < known[0]:
                self.variables[name] = (limit, where)
        elif isinstance(node, ListValueNode):
            for item in node.values:
                self.value(item, limit, where)
