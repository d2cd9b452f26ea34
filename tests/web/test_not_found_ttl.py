"""Not found is an answer kept briefly (SPEC 6.13): the response promises no more than the
not-found TTL, whether it was computed, read back from a tier or from the response cache."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graph.api.types import AGGREGATE_TTL, LIST_TTL
from graph.settings import Settings
from tests.conftest import test_settings as settings_for
from tests.support.api import Api, running_api

MISSING = '{ book(id: "999999") { id title } }'
FOUND = '{ book(id: "1") { id title reviewCount } }'


def _http_cache_overrides() -> dict[str, str]:
    """`STRATA_HTTP_CACHE=max-age` where that setting exists (it makes `Cache-Control`
    carry the policy's TTL); before it, `max-age` is what every answer says."""
    return {"http_cache": "max-age"} if "http_cache" in Settings.model_fields else {}


@pytest.fixture
async def api_with_max_age(sqlite_url: str, redis_url: str, key_prefix: str) -> AsyncIterator[Api]:
    settings = settings_for(
        sqlite_url,
        redis_url=redis_url,
        cache_secret="test-secret",
        cache_prefix=key_prefix,
        **_http_cache_overrides(),
    )
    async with running_api(settings) as client:
        yield client


def _max_age(cache_control: str) -> int:
    match = re.search(r"max-age=(\d+)", cache_control)
    assert match, cache_control
    return int(match.group(1))


async def _get(api: Api, query: str) -> tuple[int, Any]:
    response = await api.client.get("/graphql", params={"query": query})
    assert response.status_code == 200
    return _max_age(response.headers["cache-control"]), response.json()


async def test_not_found_answer_promises_at_most_the_not_found_ttl(api_with_max_age: Api) -> None:
    not_found_ttl = api_with_max_age.services.cache.config.not_found_ttl
    found_ttl, found = await _get(api_with_max_age, FOUND)
    assert found["data"]["book"]["id"] == "1"
    for _ in range(3):  # computed, then from the tiers or the response cache
        ttl, payload = await _get(api_with_max_age, MISSING)
        assert payload == {"data": {"book": None}}
        assert ttl <= not_found_ttl
        assert ttl <= found_ttl <= min(AGGREGATE_TTL, LIST_TTL)


async def test_a_found_entity_beside_a_missing_one_takes_the_shorter_ttl(
    api_with_max_age: Api,
) -> None:
    not_found_ttl = api_with_max_age.services.cache.config.not_found_ttl
    ttl, payload = await _get(
        api_with_max_age, '{ a: book(id: "1") { id } b: book(id: "999999") { id } }'
    )
    assert payload["data"] == {"a": {"id": "1"}, "b": None}
    assert ttl <= not_found_ttl
