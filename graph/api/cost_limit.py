"""The query-cost limit (SPEC 2) as a Strawberry extension.

It runs in `on_execute`, before its `yield`: after parsing and validation (so the document
is known to be well formed, and fragments are acyclic) and before graphql-core executes
anything. Setting the execution context's result there makes Strawberry skip execution,
and an answer with errors is never stored by the response cache.

Validation rules cannot do this job: they see no variables, and `first: $n` is exactly how
a client would hide a large page from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from graph.api.cost import CostMeter

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"


def too_complex(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"query cost {cost} is over the limit of {limit} "
        "(objects it could return; each connection multiplies what it selects by `first`)",
        extensions={"code": QUERY_TOO_COMPLEX, "cost": cost, "limit": limit},
    )


class CostLimit(SchemaExtension):
    def __init__(self, *, meter: CostMeter, limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meter = meter
        self.limit = limit

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            cost = self.meter.cost(
                context.query, document, context.operation_name, context.variables
            )
            if cost > self.limit:
                context.result = ExecutionResult(data=None, errors=[too_complex(cost, self.limit)])
        yield
