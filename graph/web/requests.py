"""Reading a GraphQL-over-HTTP request: its parameters from a query string or a body, and
its document from the persisted queries when it sent only a hash.

Everything a client can get wrong here is refused with a 4xx and a GraphQL-shaped error
before a document reaches the executor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import QueryParams

from cache.strawberry.persisted_queries import (
    PersistedQueries,
    PersistedQueryError,
    PersistedQueryNotFound,
    names_a_hash,
)
from graph.api.errors import ErrorCode
from graph.web.exchange import Exchange
from graph.web.http_caching import SAFE_METHODS

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
GRAPHQL_DOCUMENT = "application/graphql"
QUERY_STRING = "query-string"  # where GET and HEAD carry their parameters
# How deep variables may nest: far past any input type of the schema, far short of where
# encoders and recursive coercion give up (orjson refuses past its own fixed depth).
MAX_VARIABLE_DEPTH = 32


class RequestError(Exception):
    """A request refused before execution: its HTTP status, message and metric label."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str,
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class GraphQLParams:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def response_media_type(request: Exchange) -> str:
    return GRAPHQL_RESPONSE_JSON if GRAPHQL_RESPONSE_JSON in request.accept else JSON


def wants_ide(request: Exchange) -> bool:
    return "text/html" in request.accept and "query" not in QueryParams(request.query_string)


def _json_object(raw: str | bytes, what: str, reason: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(400, f"{what} is not valid JSON", reason) from None
    if value is not None and not isinstance(value, dict):
        raise RequestError(400, f"{what} must be a JSON object", reason)
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests lists or objects more than `limit` levels (iterative: the
    check itself must not recurse on client input)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _params(data: Mapping[str, Any]) -> GraphQLParams:
    query, operation_name = data.get("query"), data.get("operationName")
    variables, extensions = data.get("variables"), data.get("extensions")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, "query must be a string", "bad_params")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "operationName must be a string", "bad_params")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "variables must be a JSON object", "bad_params")
    if variables and _too_deep(variables, MAX_VARIABLE_DEPTH):
        raise RequestError(400, "variables nested too deeply", "variables_too_deep")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "extensions must be a JSON object", "bad_params")
    return GraphQLParams(query, variables, operation_name, extensions)


def params_from_query_string(query_string: bytes) -> GraphQLParams:
    args = QueryParams(query_string)
    data: dict[str, Any] = {"query": args.get("query"), "operationName": args.get("operationName")}
    for name in ("variables", "extensions"):
        if args.get(name):
            data[name] = _json_object(args[name], name, "malformed_json")
    return _params(data)


async def _read_body(request: Exchange, limit: int) -> bytes:
    declared = request.content_length
    # A declared length over the limit is refused before reading; without one (chunked),
    # reading stops as soon as the body runs past it.
    if declared is not None and declared.isdigit() and int(declared) > limit:
        body = None
    else:
        body = await request.body(limit)
    if body is None:
        raise RequestError(413, f"request body is larger than {limit} bytes", "body_too_large")
    return body


async def raw_params(request: Exchange, limit: int) -> tuple[str, bytes]:
    """What a request's parameters are read from: `(QUERY_STRING, the query string)` for
    GET and HEAD, `(media type, body)` for POST (the media type checked, the body read
    within `limit`). `parse_params` gives the same parameters for the same pair."""
    if request.method in SAFE_METHODS:
        return QUERY_STRING, request.query_string
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type not in (JSON, GRAPHQL_DOCUMENT):
        raise RequestError(
            415,
            f"Content-Type must be {JSON} (or {GRAPHQL_DOCUMENT})",
            "unsupported_media_type",
        )
    return media_type, await _read_body(request, limit)


def parse_params(source: str, raw: bytes) -> GraphQLParams:
    if source == QUERY_STRING:
        return params_from_query_string(raw)
    if source == GRAPHQL_DOCUMENT:
        try:
            return GraphQLParams(raw.decode(), None, None, None)
        except UnicodeDecodeError:
            raise RequestError(400, "body is not valid UTF-8", "malformed_body") from None
    data = _json_object(raw, "body", "malformed_json")
    if data is None:
        raise RequestError(400, "body must be a JSON object", "malformed_json")
    return _params(data)


async def with_document(params: GraphQLParams, persisted: PersistedQueries) -> GraphQLParams:
    """The params with the document to execute (SPEC: automatic persisted queries)."""
    if not names_a_hash(params.extensions):  # most requests do not use the protocol
        return params
    try:
        query = await persisted.document(
            params.query, params.extensions, params.operation_name, params.variables
        )
    except PersistedQueryNotFound as error:
        # Apollo clients resend hash and document when they see this error, with a 200.
        raise RequestError(
            200, str(error), "apq_not_found", code=ErrorCode.PERSISTED_QUERY_NOT_FOUND
        ) from None
    except PersistedQueryError as error:
        raise RequestError(400, str(error), "bad_apq") from None
    return params if query is params.query else dataclasses.replace(params, query=query)


async def read_params(request: Exchange, max_body_bytes: int) -> GraphQLParams:
    """The operation a GET, HEAD or POST asks for."""
    return parse_params(*await raw_params(request, max_body_bytes))
