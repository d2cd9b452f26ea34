"""CORS (STRATA_CORS_ORIGINS): allowed origins get the headers a browser needs, others
get none; a preflight is answered; `Vary: Origin` always; the ETag is readable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graph.settings import DEV_CORS_ORIGINS, Settings
from tests.conftest import test_settings as settings_for
from tests.support.api import Api, running_api

ALLOWED = "http://127.0.0.1:5173"
REFUSED = "http://evil.example"
QUERY = "{ books(first: 2) { edges { node { id title } } } }"


@pytest.fixture
async def cors_api(sqlite_url: str) -> AsyncIterator[Api]:
    settings = settings_for(sqlite_url, cors_origins=f"{ALLOWED}, http://other.example/")
    async with running_api(settings) as client:
        yield client


def test_origins_by_default_none_in_production_local_dev_servers_in_dev() -> None:
    assert Settings(env="production").cors_allowed_origins == []
    assert Settings(env="dev").cors_allowed_origins == list(DEV_CORS_ORIGINS)
    assert "http://localhost:5173" in DEV_CORS_ORIGINS
    assert Settings(env="dev", cors_origins="").cors_allowed_origins == []
    assert Settings(cors_origins="https://a.example, https://b.example/").cors_allowed_origins == [
        "https://a.example",
        "https://b.example",
    ]


def test_origins_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_CORS_ORIGINS", "https://app.example,http://localhost:8080")
    assert Settings().cors_allowed_origins == ["https://app.example", "http://localhost:8080"]


async def test_allowed_origin_gets_the_cors_headers_on_get_and_post(cors_api: Api) -> None:
    response = await cors_api.client.get(
        "/graphql", params={"query": QUERY}, headers={"Origin": ALLOWED}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    assert "origin" in response.headers["vary"].lower()
    assert "authorization" in response.headers["vary"].lower()  # the endpoint's own Vary kept
    posted = await cors_api.client.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {cors_api.user_token}"},
    )
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == ALLOWED
    # A trailing slash in the setting is ignored: browsers send origins without one.
    other = await cors_api.client.get(
        "/graphql", params={"query": QUERY}, headers={"Origin": "http://other.example"}
    )
    assert other.headers["access-control-allow-origin"] == "http://other.example"


async def test_revalidation_304_carries_the_cors_headers(cors_api: Api) -> None:
    first = await cors_api.client.get(
        "/graphql", params={"query": QUERY}, headers={"Origin": ALLOWED}
    )
    again = await cors_api.client.get(
        "/graphql",
        params={"query": QUERY},
        headers={"Origin": ALLOWED, "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == ALLOWED


async def test_refused_origin_gets_no_cors_headers(cors_api: Api) -> None:
    response = await cors_api.client.get(
        "/graphql", params={"query": QUERY}, headers={"Origin": REFUSED}
    )
    # The server still answers (CORS is enforced by the browser), but without the header
    # the browser hides the answer from the page.
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in response.headers["vary"].lower()
    preflight = await cors_api.client.options(
        "/graphql",
        headers={"Origin": REFUSED, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


async def test_preflight_allows_authorization_and_content_type(cors_api: Api) -> None:
    response = await cors_api.client.options(
        "/graphql",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    methods = response.headers["access-control-allow-methods"]
    assert "GET" in methods
    assert "POST" in methods
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers["vary"].lower()


async def test_vary_origin_even_without_an_origin_header(cors_api: Api) -> None:
    response = await cors_api.client.get("/graphql", params={"query": QUERY})
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_when_no_origin_is_configured(sqlite_url: str) -> None:
    """The production default (an empty list): no CORS headers, OPTIONS not answered."""
    async with running_api(settings_for(sqlite_url, cors_origins="")) as api:
        response = await api.client.get(
            "/graphql", params={"query": QUERY}, headers={"Origin": ALLOWED}
        )
        assert "access-control-allow-origin" not in response.headers
        preflight = await api.client.options(
            "/graphql", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 405
