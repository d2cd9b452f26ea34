"""Cache-Control from what a response used, ETag on GET, and 304 Not Modified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from graph.api.types import AGGREGATE_TTL, LIST_TTL, PRIVATE_TTL
from graph.settings import Settings
from tests.support.api import Api, running_api


@pytest.fixture
async def max_age_api(cached_settings: Settings) -> AsyncIterator[Api]:
    """STRATA_HTTP_CACHE=max-age: bounded staleness in HTTP caches."""
    async with running_api(cached_settings.model_copy(update={"http_cache": "max-age"})) as api:
        yield api


async def get(api: Api, query: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await api.client.get("/graphql", params={"query": query}, headers=headers)


async def test_by_default_every_reuse_revalidates(cached_api: Api) -> None:
    query = "{ books(first: 2) { edges { node { id } } } }"
    first = await get(cached_api, query)
    assert first.headers["cache-control"] == "public, no-cache"
    etag = first.headers["etag"]
    assert etag.startswith('"')
    executions = cached_api.services.metrics.response_cache.labels(result="hit")
    hits_before = executions._value.get()
    again = await get(cached_api, query, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, no-cache"
    assert executions._value.get() == hits_before + 1  # answered by the response cache
    mine = await get(cached_api, "{ me { name } }", cached_api.user_token)
    assert mine.headers["cache-control"] == "private, no-cache"


async def test_max_age_is_the_smallest_ttl_used(max_age_api: Api) -> None:
    cached_api = max_age_api
    default_ttl = cached_api.services.settings.default_ttl
    entity_only = await get(cached_api, '{ book(id: "1") { title } }')
    assert entity_only.headers["cache-control"] == f"public, max-age={default_ttl}"
    with_count = await get(cached_api, '{ book(id: "1") { title reviewCount } }')
    assert with_count.headers["cache-control"] == f"public, max-age={int(AGGREGATE_TTL)}"
    listing = await get(cached_api, "{ books(first: 2) { edges { node { id } } } }")
    assert listing.headers["cache-control"] == f"public, max-age={int(LIST_TTL)}"


async def test_private_fields_make_the_response_private(max_age_api: Api) -> None:
    cached_api = max_age_api
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
