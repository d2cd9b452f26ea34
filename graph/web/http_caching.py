"""HTTP caching of GraphQL responses: Cache-Control, ETag and 304 Not Modified."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from cache.strawberry import CachePolicy

NO_STORE = "no-store"
SAFE_METHODS = ("GET", "HEAD")
# A shared cache must key GET responses on what changes them: the media type asked for
# and the viewer (a bad token answers 401; private fields answer per viewer).
VARY = "Accept, Authorization"


def cache_control_of(policy: CachePolicy) -> str:
    """The header a response may carry given what it used: the smallest TTL, and
    ``private`` if any per-viewer field was read."""
    if policy.max_age is None:
        return NO_STORE
    visibility = "private" if policy.private else "public"
    return f"{visibility}, max-age={int(policy.max_age)}"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: `W/` prefixes are ignored, `*` matches anything."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def cacheable_response(
    request: Request, body: bytes, status: int, media_type: str, cache_control: str, etag: str
) -> Response:
    """The response with its caching headers; a 304 when the client already has it.

    `etag` is that of the body without `extensions` (per-request figures such as cache
    statistics must not make the same data look changed).
    """
    headers = {"Cache-Control": cache_control}
    if request.method in SAFE_METHODS and status == 200:
        headers["ETag"] = etag
        headers["Vary"] = VARY
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type=media_type, headers=headers)
