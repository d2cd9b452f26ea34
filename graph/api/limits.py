"""Limits that need the variables, checked before execution (SPEC 2): text arguments no
longer than the values they are compared with, and the query cost.

They run in `on_execute`, before its `yield`: after parsing and validation (so the document
is well formed and its fragments acyclic) and before graphql-core executes anything.
Setting the execution context's result there makes Strawberry skip execution, and an
answer with errors is never stored by the response cache. Validation rules cannot do this
job: they see no variables, and `first: $n` or `genre: $g` is exactly how a client would
hide a large page or a long text from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionResult

from graph.api.arguments import TextPlan, text_bounds, text_plan
from graph.api.cost import CostMeter
from graph.api.errors import bad_input
from graph.api.memo import Memo, document_key

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"


def too_complex(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"query cost {cost} is over the limit of {limit} "
        "(objects it could return; each connection multiplies what it selects by `first`)",
        extensions={"code": QUERY_TOO_COMPLEX, "cost": cost, "limit": limit},
    )


class Limits:
    """The schema's bounds and the per-document memos, shared by every request.

    `rules` are the validation rules the schema adds to GraphQL's own (depth, aliases):
    `admit` runs them all, for documents checked outside a request."""

    def __init__(
        self,
        schema: GraphQLSchema,
        max_cost: int,
        rules: Sequence[type[ASTValidationRule]] = (),
    ) -> None:
        self.schema = schema
        self.max_cost = max_cost
        self.meter = CostMeter(schema)
        self.bounds = text_bounds(schema)
        self.rules = (*specified_rules, *rules)
        self._plans: Memo[TextPlan] = Memo()

    def check(self, context: Any) -> GraphQLError | None:
        """The error that refuses this operation, or None to run it."""
        return self.check_operation(
            context.graphql_document, context.query, context.operation_name, context.variables
        )

    def check_operation(
        self,
        document: DocumentNode,
        query: str | None,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> GraphQLError | None:
        """`check` for a parsed document; `query`, its text, keys the memos (None: none)."""
        key = None if query is None else document_key(query, operation_name)
        if key is None:
            plan = text_plan(self.schema, self.bounds, document)
        else:
            plan = self._plans.get(key, lambda: text_plan(self.schema, self.bounds, document))
        problem = plan.violation(variables)
        if problem is not None:
            return bad_input(problem)
        cost = self.meter.cost(key, document, operation_name, variables)
        if cost > self.max_cost:
            return too_complex(cost, self.max_cost)
        return None

    def admit(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> list[GraphQLError]:
        """What would refuse `document` before execution: validation against the schema
        (with the limit rules), then text bounds and cost. For persisted queries, checked
        once before they are kept (so not memoized: a rare path)."""
        errors = validate_document(self.schema, document, self.rules)
        if errors:
            return errors
        refused = self.check_operation(document, None, operation_name, variables)
        return [] if refused is None else [refused]


class PreExecutionLimits(SchemaExtension):
    def __init__(self, *, limits: Limits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.result is None:
            error = self.limits.check(context)
            if error is not None:
                context.result = ExecutionResult(data=None, errors=[error])
        yield
