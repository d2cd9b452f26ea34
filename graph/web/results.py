"""Turning an execution result into GraphQL-over-HTTP bytes and a status code."""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.types import ExecutionResult

from graph.api.errors import ErrorCode
from graph.web.requests import GRAPHQL_RESPONSE_JSON

# `extensions.code` of request errors (the codes Apollo and most clients know).
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def error_body(message: str, code: ErrorCode) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code.value}}]})


def executed(result: ExecutionResult) -> bool:
    """Whether execution began. Parse, validation and variable errors come before it, have
    no path, and leave no data; every field error has a path."""
    return result.data is not None or any(error.path for error in result.errors or ())


def error_code(error: GraphQLError, began: bool) -> str:
    code = (error.extensions or {}).get("code")
    if code is not None:
        return str(code)
    unexpected = error.original_error is not None and not isinstance(
        error.original_error, GraphQLError
    )
    if not began and not unexpected:
        return PARSE_FAILED if isinstance(error, GraphQLSyntaxError) else VALIDATION_FAILED
    return ErrorCode.INTERNAL_SERVER_ERROR.value  # a bug, e.g. a masked unexpected error


def encode(result: ExecutionResult) -> tuple[bytes, list[str]]:
    """The response body without `extensions`, and the code of each error in it."""
    began = executed(result)
    # GraphQL spec: when an error was raised before execution began, `data` is absent.
    payload: dict[str, Any] = {"data": result.data} if began else {}
    codes: list[str] = []
    if result.errors:
        payload["errors"] = []
        for error in result.errors:
            code = error_code(error, began)
            formatted = error.formatted
            formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
            payload["errors"].append(formatted)
            codes.append(code)
    return orjson.dumps(payload), codes


def with_extensions(body: bytes, extensions: dict[str, Any] | None) -> bytes:
    """`body` with an `extensions` member appended, without decoding it again."""
    if not extensions:
        return body
    separator = b"," if len(body) > 2 else b""
    return body[:-1] + separator + b'"extensions":' + orjson.dumps(extensions) + b"}"


def status(result: ExecutionResult, media_type: str) -> int:
    # GraphQL-over-HTTP: with the new media type, a request that never executed is a 400,
    # while one that did (even with `data: null`) is a 200; with application/json every
    # well-formed request answers 200.
    if media_type == GRAPHQL_RESPONSE_JSON and not executed(result):
        return 400
    return 200
