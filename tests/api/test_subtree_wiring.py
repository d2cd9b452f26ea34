"""Cached subtrees in the API, whole-response cache off: a warm bench page is one L1 read,
with no resolver, loader or SQL behind it, and answers what the database says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from graph.cli.bench.plan import DETAIL_PAGE, LIST_PAGE
from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.sql_counter import counting_statements

PAGES = [
    pytest.param(LIST_PAGE, {"genre": "fantasy", "first": 20}, id="list"),
    pytest.param(DETAIL_PAGE, {"id": "3"}, id="detail"),
]


@pytest.fixture
async def fields_api(cached_settings: Settings) -> AsyncIterator[Api]:
    settings = cached_settings.model_copy(
        update={"response_cache": False, "expose_cache_stats": True, "redis_timeout_ms": 1000}
    )
    async with running_api(settings) as api:
        yield api


async def cache_stats(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    payload = (await api.post(query, variables)).json()
    assert "errors" not in payload, payload["errors"]
    stats: dict[str, Any] = payload["extensions"]["cache"]
    return {"data": payload["data"], **stats}


@pytest.mark.parametrize(("query", "variables"), PAGES)
async def test_a_warm_page_is_one_read_of_l1(
    fields_api: Api, uncached_truth: Api, query: str, variables: dict[str, Any]
) -> None:
    cold = await cache_stats(fields_api, query, variables)
    assert cold["dataloaders"]  # the first answer was computed
    with counting_statements(fields_api.services.db) as statements:
        warm = await cache_stats(fields_api, query, variables)
    assert statements == []
    assert warm["dataloaders"] == {}
    assert warm["cache"]["l1_hits"] == 1
    assert warm["cache"]["l1_misses"] == 0
    assert warm["data"] == cold["data"] == await uncached_truth.data(query, variables)


@pytest.fixture
async def uncached_truth(cached_settings: Settings, fields_api: Api) -> AsyncIterator[Api]:
    settings = cached_settings.model_copy(update={"cache": "off"})
    async with running_api(settings, fields_api.tokens) as api:
        yield api
