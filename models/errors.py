"""Why a write was refused, in words the API layer maps to GraphQL error codes."""

from __future__ import annotations


class CatalogueError(Exception):
    """Base class: the message is safe to show to the client."""


class NotFound(CatalogueError):
    pass


class InvalidInput(CatalogueError):
    pass


class Forbidden(CatalogueError):
    pass
