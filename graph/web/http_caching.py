"""HTTP caching of GraphQL responses: Cache-Control, ETag and 304 Not Modified.

The cache says how fresh a response is and what it used (a CachePolicy, or a stored
response's max-age and scope); this module alone spells that as HTTP headers.
"""

from __future__ import annotations

from cache.strawberry import CachePolicy
from cache.strawberry.response_cache import StoredResponse, fingerprint
from graph.web.exchange import Exchange, Reply

NO_STORE = "no-store"
SAFE_METHODS = ("GET", "HEAD")
# A shared cache must key GET responses on what changes them: the media type asked for
# and the viewer (a bad token answers 401; private fields answer per viewer).
VARY = "Accept, Authorization"


def cache_control(max_age: float | None, private: bool, revalidate: bool) -> str:
    """`revalidate` (SPEC 3's default): an HTTP cache may keep the answer but must ask
    before each reuse, so none shows data a mutation already changed; the ETag makes
    that question cost a 304. Otherwise the smallest TTL used, as bounded staleness."""
    if max_age is None:
        return NO_STORE
    scope = "private" if private else "public"
    return f"{scope}, no-cache" if revalidate else f"{scope}, max-age={int(max_age)}"


def cache_control_of(policy: CachePolicy | None, revalidate: bool) -> str:
    """The header of a fresh response; None is the policy of one that may not be reused."""
    if policy is None:
        return NO_STORE
    return cache_control(policy.max_age, policy.private, revalidate)


def etag_of(body: bytes) -> str:
    # The stored response's fingerprint, quoted: a fresh answer and the replay of the
    # stored one carry the same ETag.
    return f'"{fingerprint(body)}"'


def stored_headers(stored: StoredResponse, revalidate: bool) -> tuple[str, str]:
    """Cache-Control and ETag of a stored response."""
    header = cache_control(stored.max_age, stored.private, revalidate)
    return header, f'"{stored.fingerprint}"'


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
    request: Exchange, body: bytes, status: int, media_type: str, cache_control: str, etag: str
) -> Reply:
    """The response with its caching headers; a 304 when the client already has it.

    `etag` is that of the body without `extensions` (per-request figures such as cache
    statistics must not make the same data look changed).
    """
    headers = {"Cache-Control": cache_control}
    if request.method in SAFE_METHODS and status == 200:
        headers["ETag"] = etag
        headers["Vary"] = VARY
        if etag_matches(request.if_none_match, etag):
            return Reply(304, headers=headers)
    return Reply(status, body, media_type, headers)
