"""Running one operation through Strawberry: what the response cache calls on a miss.

The result comes back encoded (graph/web/results.py) with the policy it earned, so the
response cache can decide what to keep without knowing GraphQL's error rules: only a
query that answered without any error may be reused.
"""

from __future__ import annotations

from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from cache.strawberry.response_cache import Executed
from graph.api.context import Context
from graph.services import Services
from graph.web import results
from graph.web.requests import GraphQLParams, RequestError
from models import UserRecord

# Starlette answers HEAD wherever it answers GET: both are safe methods, queries only.
QUERIES_ONLY = (OperationType.QUERY,)
QUERIES_AND_MUTATIONS = (OperationType.QUERY, OperationType.MUTATION)


class Execution:
    """Executes operations on the app's schema and counts what they were and what failed."""

    def __init__(self, services: Services) -> None:
        self._services = services
        operations = services.metrics.operations
        # Label lookups done once: prometheus_client's `labels()` takes a lock each time.
        self._operations_counted = {
            kind: operations.labels(type=kind.value) for kind in OperationType
        }

    async def run(
        self, params: GraphQLParams, viewer: UserRecord | None, method: str
    ) -> Executed[ExecutionResult]:
        context = self._services.context(viewer)
        result = await self._execute(params, context, method)
        if context.operation_type is not None:
            self._operations_counted[context.operation_type].inc()
        body, codes = results.encode(result)
        for code in codes:
            self._services.metrics.graphql_errors.labels(code=code).inc()
        reusable = not result.errors and context.operation_type is OperationType.QUERY
        return Executed(body, context.request_cache.policy if reusable else None, result)

    async def _execute(
        self, params: GraphQLParams, context: Context, method: str
    ) -> ExecutionResult:
        allowed = QUERIES_AND_MUTATIONS if method == "POST" else QUERIES_ONLY
        try:
            return await self._services.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
            )
        except MissingQueryError:
            raise RequestError(400, "no GraphQL query in the request", "missing_query") from None
        except CannotGetOperationTypeError as error:
            raise RequestError(400, error.as_http_error_reason(), "unknown_operation") from None
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.MUTATION:
                raise RequestError(
                    405,
                    "mutations must be sent with POST",
                    "mutation_over_get",
                    headers={"Allow": "POST"},
                ) from None
            raise RequestError(400, "subscriptions are not supported", "bad_operation") from None
