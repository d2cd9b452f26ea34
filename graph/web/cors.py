"""CORS for browser clients on other origins (STRATA_CORS_ORIGINS), with Starlette's
CORSMiddleware.

No cookies are involved (a client sends `Authorization: Bearer …`), so credentials stay
off. Every response says `Vary: Origin` while CORS is on, also those to requests without
an `Origin` or from a refused one: the `Access-Control-Allow-Origin` header depends on
it, so a shared HTTP cache must not hand one origin's answer to another.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type")
EXPOSED_HEADERS = ("ETag",)
PREFLIGHT_MAX_AGE = 600


class VaryOnOrigin:
    """Adds `Vary: Origin` to every HTTP response (Starlette adds it only on allowed ones)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "origin" not in headers.get("vary", "").lower():
                    headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_vary)


def cors_middleware(origins: list[str]) -> list[Middleware]:
    """The middleware stack for these origins; none at all when the list is empty."""
    if not origins:
        return []
    return [
        Middleware(VaryOnOrigin),
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        ),
    ]
