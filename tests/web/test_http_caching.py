"""Cache-Control from what a response used, ETag on GET, and 304 Not Modified."""

from __future__ import annotations

import httpx

from graph.api.types import AGGREGATE_TTL, LIST_TTL, PRIVATE_TTL
from tests.support.api import Api


async def get(api: Api, query: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await api.client.get("/graphql", params={"query": query}, headers=headers)


async def test_max_age_is_the_smallest_ttl_used(cached_api: Api) -> None:
    default_ttl = cached_api.services.settings.default_ttl
    entity_only = await get(cached_api, '{ book(id: "1") { title } }')
    assert entity_only.headers["cache-control"] == f"public, max-age={default_ttl}"
    with_count = await get(cached_api, '{ book(id: "1") { title reviewCount } }')
    assert with_count.headers["cache-control"] == f"public, max-age={int(AGGREGATE_TTL)}"
    listing = await get(cached_api, "{ books(first: 2) { edges { node { id } } } }")
    assert listing.headers["cache-control"] == f"public, max-age={int(LIST_TTL)}"


async def test_private_fields_make_the_response_private(cached_api: Api) -> None:
    mine = await get(cached_api, "{ me { name } }", cached_api.user_token)
    assert mine.headers["cache-control"] == f"private, max-age={int(PRIVATE_TTL)}"
    anonymous = await get(cached_api, '{ me { name } book(id: "1") { id } }')
    assert anonymous.headers["cache-control"].startswith("private")


async def test_mutations_and_errors_are_not_stored(cached_api: Api) -> None:
    mutation = await cached_api.post(
        'mutation { updateBook(id: "1", input: {title: "x"}) { id } }',
        token=cached_api.admin_token,
    )
    assert mutation.headers["cache-control"] == "no-store"
    field_error = await get(cached_api, '{ books(first: 0) { totalCount } book(id: "1") { id } }')
    assert field_error.status_code == 200
    assert field_error.headers["cache-control"] == "no-store"
    invalid = await get(cached_api, "{ nope }")
    assert invalid.headers["cache-control"] == "no-store"
    refused = await cached_api.client.post(
        "/graphql", content=b"{", headers={"content-type": "application/json"}
    )
    assert refused.headers["cache-control"] == "no-store"


async def test_etag_and_not_modified(cached_api: Api) -> None:
    query = '{ book(id: "1") { title } }'
    first = await get(cached_api, query)
    etag = first.headers["etag"]
    assert first.headers["vary"] == "Accept, Authorization, Origin"  # Origin: CORS on in dev
    again = await get(cached_api, query, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (
        await get(cached_api, query, **{"If-None-Match": f'"other", W/{etag}'})
    ).status_code == 304
    assert (await get(cached_api, query, **{"If-None-Match": '"other"'})).status_code == 200
    await cached_api.data(
        'mutation { updateBook(id: "1", input: {title: "New title"}) { id } }',
        token=cached_api.admin_token,
    )
    changed = await get(cached_api, query, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json() == {"data": {"book": {"title": "New title"}}}
    assert changed.headers["etag"] != etag


async def test_post_has_no_etag(cached_api: Api) -> None:
    response = await cached_api.post('{ book(id: "1") { title } }')
    assert "etag" not in response.headers
    assert response.headers["cache-control"].startswith("public")
