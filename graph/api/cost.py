"""Query cost (SPEC 2): how many objects a document could return, before it runs.

Counted the way GitHub's API counts nodes: a field whose value is an object counts 1 plus
what is selected below it; a connection field (one with a `first` argument that returns a
`…Connection` object) counts 1 plus `first` times what is selected below it, because each
of its edges repeats that selection. Scalars count nothing. Aliases and fragments (named and
inline) count every time they are used, since each use is answered again. `first` comes from
a literal, else the variable it names, else that variable's default, else the argument's
default in the schema; a value GraphQL would refuse as an Int counts as the default (the
request fails in coercion anyway, so its cost does not matter).

Pure: only graphql-core's schema and AST; no Strawberry, no request. The memo in
`CostMeter` makes a repeated document cost two dict lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
    value_from_ast_untyped,
)

from graph.api.memo import MEMO_ENTRIES, Memo

FIRST = "first"
CONNECTION_SUFFIX = "Connection"
INT_MAX = 2**31 - 1  # GraphQL's Int is 32-bit: coercion refuses anything larger

# (type name, field name) -> the default of its `first` argument.
Connections = Mapping[tuple[str, str], int]


def connection_fields(schema: GraphQLSchema, fallback: int = 20) -> dict[tuple[str, str], int]:
    """Every field of the schema that pages: a `first` argument and a `…Connection` type."""
    found: dict[tuple[str, str], int] = {}
    for type_ in schema.type_map.values():
        if not (is_object_type(type_) or is_interface_type(type_)):
            continue
        for name, field in type_.fields.items():
            argument = field.args.get(FIRST)
            if argument is None or not get_named_type(field.type).name.endswith(CONNECTION_SUFFIX):
                continue
            default = argument.default_value
            found[(type_.name, name)] = default if _is_int(default) else fallback
    return found


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT_MAX


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs, or None when the name is missing or ambiguous (then
    execution reports that, and there is nothing to count)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    return None


def first_variables(document: DocumentNode) -> tuple[str, ...]:
    """Names of the variables given to any `first` argument: the only variables a cost
    depends on, so the only ones in a memo key. Syntactic, so it may name a few more."""
    names: dict[str, None] = {}
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value == FIRST and isinstance(argument.value, VariableNode):
                        names[argument.value.name.value] = None
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                stack.append(selection_set)
    return tuple(sorted(names))


@dataclass
class _Count:
    schema: GraphQLSchema
    connections: Connections
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    defaults: Mapping[str, Any]
    # A fragment costs the same wherever it is spread: counted once, so that fragments
    # spreading fragments twice over stay linear to count.
    fragment_costs: dict[str, int]

    def selection_set(self, node: SelectionSetNode | None, parent: GraphQLNamedType | None) -> int:
        if node is None:
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = parent if condition is None else self.schema.get_type(condition.name.value)
                total += self.selection_set(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        known = self.fragment_costs.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None:
            return 0  # validation reports the unknown fragment
        self.fragment_costs[name] = 0  # a cycle (refused by validation) adds nothing
        cost = self.selection_set(
            definition.selection_set, self.schema.get_type(definition.type_condition.name.value)
        )
        self.fragment_costs[name] = cost
        return cost

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> int:
        if node.selection_set is None:
            return 0  # a scalar or an enum: not an object
        child: GraphQLNamedType | None = None
        default: int | None = None
        if isinstance(parent, GraphQLObjectType) or is_interface_type(parent):
            definition = parent.fields.get(node.name.value)
            if definition is not None:
                child = get_named_type(definition.type)
            default = self.connections.get((parent.name, node.name.value))
        below = self.selection_set(node.selection_set, child)
        if default is None:
            return 1 + below
        return 1 + self.first(node, default) * below

    def first(self, node: FieldNode, default: int) -> int:
        for argument in node.arguments or ():
            if argument.name.value != FIRST:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                name = value.name.value
                given = self.variables.get(name, self.defaults.get(name))
                return given if _is_int(given) else default
            if isinstance(value, IntValueNode):
                number = int(value.value)
                return number if _is_int(number) else default
            return default  # null (the default too) or a literal of the wrong type
        return default


def query_cost(
    schema: GraphQLSchema,
    connections: Connections,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """The number of objects the operation could return (0 when there is no operation)."""
    operation = select_operation(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(OperationType(operation.operation.value))
    defaults = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    }
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    count = _Count(schema, connections, fragments, variables or {}, defaults, {})
    return count.selection_set(operation.selection_set, root)


class CostMeter:
    """`query_cost` memoized per (document, operation, the values fed to `first`)."""

    def __init__(self, schema: GraphQLSchema, *, entries: int = MEMO_ENTRIES) -> None:
        self.schema = schema
        self.connections = connection_fields(schema)
        self._shapes: Memo[tuple[str, ...]] = Memo(entries)
        self._costs: Memo[int] = Memo(entries)

    def cost(
        self,
        key: bytes | None,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """The cost; `key` is `document_key` of the text `document` was parsed from (None:
        not memoized)."""
        if key is None:
            return query_cost(self.schema, self.connections, document, operation_name, variables)
        names = self._shapes.get(key, lambda: first_variables(document))
        given = variables or {}
        values = tuple(_int_or_none(given.get(name)) for name in names)
        return self._costs.get(
            (key, values),
            lambda: query_cost(self.schema, self.connections, document, operation_name, given),
        )


def _int_or_none(value: object) -> int | None:
    # Anything but a valid Int counts as the default, so it need not tell keys apart.
    return value if isinstance(value, int) and _is_int(value) else None
