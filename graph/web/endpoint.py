"""The /graphql endpoint: GraphQL over HTTP in front of the response cache and Strawberry.

A request is read (graph/requests.py), its viewer identified, its persisted query resolved;
then a stored response is sent as it is, or the operation executes and its response is
stored for the next asker when it may be.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from cache import TagVersions
from graph.api.context import Context
from graph.api.errors import ErrorCode
from graph.observability.operations import OperationStats, observing_operation, report
from graph.services import Services
from graph.web import persisted_queries, results
from graph.web.http_caching import (
    NO_STORE,
    SAFE_METHODS,
    cache_control_of,
    cacheable_response,
    etag_of,
)
from graph.web.requests import (
    GraphQLParams,
    RequestError,
    params_from_body,
    params_from_query_string,
    response_media_type,
    wants_ide,
)
from graph.web.response_cache import StoredResponse
from models import UserRecord

# Strawberry's GraphiQL page with its assets vendored under /static/graphiql (no CDN), read
# once: it never changes while the process runs.
GRAPHIQL_HTML = (Path(__file__).parent / "static" / "graphiql.html").read_text(encoding="utf-8")

# Starlette answers HEAD wherever it answers GET: both are safe methods, queries only.
QUERIES_ONLY = (OperationType.QUERY,)
QUERIES_AND_MUTATIONS = (OperationType.QUERY, OperationType.MUTATION)
METHODS = ("GET", "HEAD", "POST")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strata"'}


async def authenticate(request: Request, services: Services) -> UserRecord | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestError(
            401,
            "Authorization must be 'Bearer <token>'",
            "bad_token",
            code=ErrorCode.UNAUTHENTICATED,
            headers=CHALLENGE,
        )
    viewer = await services.viewer_for_token(token.strip())
    if viewer is None:
        raise RequestError(
            401,
            "the bearer token is not valid",
            "bad_token",
            code=ErrorCode.UNAUTHENTICATED,
            headers=CHALLENGE,
        )
    return viewer


async def _execute(
    request: Request, services: Services, params: GraphQLParams, context: Context
) -> ExecutionResult:
    allowed = QUERIES_AND_MUTATIONS if request.method == "POST" else QUERIES_ONLY
    try:
        return await services.schema.execute(
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


def _storable(result: ExecutionResult, context: Context) -> bool:
    """Only a query that answered without any error may be reused."""
    return not result.errors and context.operation_type is OperationType.QUERY


class GraphQLEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.responses = services.responses
        self.expose_stats = services.settings.cache_stats_exposed
        histogram = services.metrics.request_seconds
        self._latency = {method: histogram.labels(method=method) for method in METHODS}
        operations = services.metrics.operations
        self._operations_counted = {
            kind: operations.labels(type=kind.value) for kind in OperationType
        }
        counter = services.metrics.response_cache
        self._responses_counted = {
            result: counter.labels(result=result) for result in ("hit", "miss", "skip")
        }

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        media_type = response_media_type(request)
        metrics = self.services.metrics
        with observing_operation(self.services.cache) as stats:
            try:
                response = await self._answer(request, media_type, stats)
            except RequestError as error:
                metrics.rejected_requests.labels(reason=error.reason).inc()
                return Response(
                    results.error_body(error.message, error.code),
                    status_code=error.status,
                    media_type=media_type,
                    headers={"Cache-Control": NO_STORE, **error.headers},
                )
            if stats.response is not None:  # an operation ran or was replayed
                report(stats, metrics)
        self._latency[request.method].observe(time.perf_counter() - started)
        return response

    async def _answer(self, request: Request, media_type: str, stats: OperationStats) -> Response:
        services = self.services
        if request.method in SAFE_METHODS:
            if wants_ide(request) and services.settings.graphiql:
                return HTMLResponse(GRAPHIQL_HTML)
            params = params_from_query_string(request)
        else:
            params = await params_from_body(request, services.settings.max_body_bytes)
        viewer = await authenticate(request, services)
        viewer_id = None if viewer is None else str(viewer.id)
        params = await persisted_queries.resolve(params, services.cache)
        operation = self.responses.operation_key(
            params.query, params.operation_name, params.variables
        )
        if operation is not None:
            stored = await self.responses.lookup(operation, viewer_id)
            if stored is not None:
                stats.name = self.responses.name_of(params.query, params.operation_name)
                stats.response = "hit"
                self._responses_counted["hit"].inc()
                return self._replay(request, stored, media_type, stats)
        context = services.context(viewer)
        if operation is None:  # nothing to store: no need to record what it read
            result = await _execute(request, services, params, context)
            tag_versions: TagVersions = ()
        else:
            with services.cache.recording() as recorder:
                result = await _execute(request, services, params, context)
            tag_versions = recorder.tag_versions
        if context.operation_type is not None:
            self._operations_counted[context.operation_type].inc()
        body, codes = results.encode(result)
        for code in codes:
            services.metrics.graphql_errors.labels(code=code).inc()
        storable = _storable(result, context)
        policy = context.request_cache.policy
        cache_control = cache_control_of(policy) if storable else NO_STORE
        store_as = operation if storable else None
        # Only GET/HEAD answers and stored responses carry an ETag: skip hashing otherwise.
        etag = etag_of(body) if store_as or request.method in SAFE_METHODS else ""
        kept = False
        if store_as is not None:
            kept = await self.responses.store(
                store_as,
                viewer_id,
                StoredResponse(body, cache_control, etag),
                policy,
                tag_versions,
            )
        stats.response = "miss" if kept else "skip"
        self._responses_counted[stats.response].inc()
        extensions: dict[str, Any] = dict(result.extensions or {})
        if "cache" in extensions:
            extensions["cache"] = {**extensions["cache"], "response": stats.response}
        return cacheable_response(
            request,
            results.with_extensions(body, extensions),
            results.status(result, media_type),
            media_type,
            cache_control,
            etag,
        )

    def _replay(
        self, request: Request, stored: StoredResponse, media_type: str, stats: OperationStats
    ) -> Response:
        body = stored.body
        if self.expose_stats:
            body = results.with_extensions(body, {"cache": {**stats.report(), "tier": stored.tier}})
        return cacheable_response(request, body, 200, media_type, stored.cache_control, stored.etag)
