"""One /graphql request and its reply, straight on the ASGI interface.

The endpoint reads the few headers it needs in one pass over the scope and reads the body
from `receive` itself; it answers with two ASGI messages built from a `Reply`. No Starlette
`Request`, `Headers` or `Response` object is made on this path: it is the whole of a
response-cache hit, so every object and lookup made here shows in its cost
(docs/benchmarks.md, "The response-cache hit path"). Header semantics follow Starlette's:
names compared in lower case, the first occurrence of a repeated header wins, and a reply
carries the same headers a Starlette `Response` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

# The request headers /graphql reads; every other header is skipped unread.
_WANTED = {
    b"accept": "accept",
    b"content-type": "content_type",
    b"content-length": "content_length",
    b"authorization": "authorization",
    b"if-none-match": "if_none_match",
}


@dataclass(slots=True)
class Exchange:
    """What /graphql reads of a request: its method, query string and five headers."""

    scope: Scope
    receive: Receive
    method: str
    query_string: bytes
    accept: str = ""
    content_type: str = ""
    content_length: str | None = None
    authorization: str | None = None
    if_none_match: str | None = None

    @classmethod
    def of(cls, scope: Scope, receive: Receive) -> Exchange:
        exchange = cls(scope, receive, scope["method"], scope.get("query_string", b""))
        wanted = _WANTED
        seen: set[str] = set()
        for name, value in scope["headers"]:
            attribute = wanted.get(name)
            if attribute is not None and attribute not in seen:
                seen.add(attribute)
                setattr(exchange, attribute, value.decode("latin-1"))
        return exchange

    async def body(self, limit: int) -> bytes | None:
        """The whole body; None as soon as it runs past `limit` bytes. Raises
        ClientDisconnect when the client left before sending all of it."""
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):  # the usual case: one message
            return chunk if len(chunk) <= limit else None
        body = bytearray(chunk)
        while True:
            if len(body) > limit:
                return None
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                return bytes(body) if len(body) <= limit else None


@dataclass(slots=True)
class Reply:
    """A response as Starlette's `Response(body, status, headers, media_type)` sends it."""

    status: int
    body: bytes = b""
    media_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    _raw: list[tuple[bytes, bytes]] | None = None  # built once: a reply may be sent again

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        if self._raw is None:
            self._raw = self._encoded_headers()
        return self._raw

    def _encoded_headers(self) -> list[tuple[bytes, bytes]]:
        raw = [
            (name.lower().encode("latin-1"), v.encode("latin-1"))
            for name, v in self.headers.items()
        ]
        if not (self.status < 200 or self.status in (204, 304)):
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        if self.media_type is not None:
            media_type = self.media_type
            if media_type.startswith("text/") and "charset=" not in media_type.lower():
                media_type += "; charset=utf-8"
            raw.append((b"content-type", media_type.encode("latin-1")))
        return raw

    async def send(self, send: Send) -> None:
        start: dict[str, Any] = {
            "type": "http.response.start",
            "status": self.status,
            "headers": self.raw_headers(),
        }
        await send(start)
        await send({"type": "http.response.body", "body": self.body})
