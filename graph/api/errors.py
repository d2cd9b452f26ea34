"""GraphQL errors with the `extensions.code` values the SPEC names."""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLError

from models import CatalogueError, Forbidden, InvalidInput, NotFound


class ErrorCode(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_REQUEST = "BAD_REQUEST"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


def api_error(code: ErrorCode, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code.value})


def bad_input(message: str) -> GraphQLError:
    return api_error(ErrorCode.BAD_USER_INPUT, message)


def not_found(message: str) -> GraphQLError:
    return api_error(ErrorCode.NOT_FOUND, message)


_CODE_OF_CATALOGUE_ERROR: dict[type[CatalogueError], ErrorCode] = {
    NotFound: ErrorCode.NOT_FOUND,
    InvalidInput: ErrorCode.BAD_USER_INPUT,
    Forbidden: ErrorCode.FORBIDDEN,
}


def from_catalogue_error(error: CatalogueError) -> GraphQLError:
    code = _CODE_OF_CATALOGUE_ERROR.get(type(error), ErrorCode.BAD_USER_INPUT)
    return api_error(code, str(error))
