"""Who is asking: one Starlette authentication backend for every surface that identifies.

`Authorization: Bearer <token>` names a user; no header is an anonymous request. A header
that is not a bearer token, or a token nobody holds, is refused (401) by the surface's own
`on_error`, so each answers in its own shape (a GraphQL error on /graphql, JSON on the
dashboard) with the same challenge.

The middleware wraps the routes that need it, not the whole app: health checks and static
files never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from graph.services import Services
from models import UserRecord

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strata"'}
ADMIN = "admin"  # the credential scope of an admin's token


class MalformedAuthorization(AuthenticationError):
    """The Authorization header is not `Bearer <token>`."""


class UnknownToken(AuthenticationError):
    """A well-formed bearer token that belongs to nobody."""


class Viewer(BaseUser):
    """An identified user, as Starlette's `request.user`."""

    def __init__(self, record: UserRecord) -> None:
        self.record = record

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.record.name

    @property
    def identity(self) -> str:
        return str(self.record.id)


class BearerTokens(AuthenticationBackend):
    def __init__(self, services: Services) -> None:
        self._services = services

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None  # anonymous: Starlette sets UnauthenticatedUser
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MalformedAuthorization("Authorization must be 'Bearer <token>'")
        user = await self._services.viewer_for_token(token.strip())
        if user is None:
            raise UnknownToken("the bearer token is not valid")
        scopes = ["authenticated", ADMIN] if user.is_admin else ["authenticated"]
        return AuthCredentials(scopes), Viewer(user)


def viewer_of(conn: HTTPConnection) -> UserRecord | None:
    """The user the request identified, None when anonymous."""
    user = conn.user
    return user.record if isinstance(user, Viewer) else None


def is_admin(conn: HTTPConnection) -> bool:
    return ADMIN in conn.auth.scopes


def authenticated(
    backend: BearerTokens, on_error: Callable[[HTTPConnection, AuthenticationError], Response]
) -> Middleware:
    """The middleware for one route: identifies with `backend`, refuses with `on_error`."""
    return Middleware(AuthenticationMiddleware, backend=backend, on_error=on_error)
