"""Who is asking: one Starlette authentication backend for every surface that identifies.

`Authorization: Bearer <token>` names a user; no header is an anonymous request. A header
that is not a bearer token, or a token nobody holds, raises an AuthenticationError that
the surface answers in its own shape (a GraphQL error on /graphql, JSON on the dashboard),
with the same 401 challenge.

Routes call `BearerTokens.identify` themselves instead of sitting behind Starlette's
AuthenticationMiddleware. It does what the middleware does (`request.user` and
`request.auth` are set the same way), but the middleware costs a measurable share of a
response-cache hit (docs/benchmarks.md: an ASGI layer and a second parse of the headers),
and called from the endpoint the caller is identified at the point it always was: after
the request is read, inside the operation's figures. Health checks, /metrics and static
files never pay for it.
"""

from __future__ import annotations

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.requests import HTTPConnection
from starlette.types import Scope

from graph.services import Services
from models import UserRecord

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strata"'}
ADMIN = "admin"  # the credential scope of an admin's token
# What Starlette gives an anonymous request; shared, never mutated.
ANONYMOUS = (AuthCredentials(), UnauthenticatedUser())


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
        return await self.credentials(header)

    async def credentials(self, header: str) -> tuple[AuthCredentials, BaseUser]:
        """Who an `Authorization` header names; raises AuthenticationError for one that
        is malformed or holds an unknown token."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MalformedAuthorization("Authorization must be 'Bearer <token>'")
        user = await self._services.viewer_for_token(token.strip())
        if user is None:
            raise UnknownToken("the bearer token is not valid")
        scopes = ["authenticated", ADMIN] if user.is_admin else ["authenticated"]
        return AuthCredentials(scopes), Viewer(user)

    async def identify(self, conn: HTTPConnection) -> None:
        """Set `conn.user` and `conn.auth` as AuthenticationMiddleware would; raises
        AuthenticationError for a malformed header or an unknown token."""
        if "authorization" not in conn.headers:  # most requests: no lookup to await
            conn.scope["auth"], conn.scope["user"] = ANONYMOUS
            return
        credentials, user = await self.authenticate(conn) or ANONYMOUS
        conn.scope["auth"], conn.scope["user"] = credentials, user

    async def identify_scope(self, scope: Scope, header: str | None) -> UserRecord | None:
        """`identify` for a request read straight from its ASGI scope: the same `user` and
        `auth` in the scope, and the user identified (None when anonymous)."""
        credentials, user = ANONYMOUS if header is None else await self.credentials(header)
        scope["auth"], scope["user"] = credentials, user
        return user.record if isinstance(user, Viewer) else None


def is_admin(conn: HTTPConnection) -> bool:
    return ADMIN in conn.auth.scopes
