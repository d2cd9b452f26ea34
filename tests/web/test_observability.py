"""Seeing the cache: per-operation figures in responses and logs, and /metrics, including
across several worker processes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.observability.exposition import Scrape
from graph.settings import Settings
from tests.support.api import Api, prepare_database, running_api
from tests.support.servers import Server, running, server_env

BOOK = 'query OneBook { book(id: "2") { title author { name } reviewCount } }'


async def stats_of(api: Api, query: str, token: str | None = None) -> dict[str, Any]:
    payload = (await api.post(query, token=token)).json()
    cache: dict[str, Any] = payload["extensions"]["cache"]
    return cache


async def test_a_response_says_what_its_operation_did(stats_api: Api) -> None:
    cold = await stats_of(stats_api, BOOK)
    assert cold["operation"] == "OneBook"
    assert cold["type"] == "query"
    assert cold["response"] == "miss"
    assert cold["sql"]["statements"] >= 2
    assert cold["dataloaders"]["Book"] == [1]
    assert cold["cache"]["l2_misses"] > 0
    assert cold["cache"]["loads"] > 0
    warm = await stats_of(stats_api, BOOK)
    assert warm["response"] == "hit"
    assert warm["sql"]["statements"] == 0
    assert warm["cache"]["l1_hits"] == 1
    written = await stats_of(
        stats_api,
        'mutation Rename { updateBook(id: "2", input: {genre: "poetry"}) { id } }',
        stats_api.admin_token,
    )
    assert written["type"] == "mutation"
    assert written["response"] == "skip"
    assert written["tags_invalidated"] == 3  # the book, its old genre and its new one


async def test_no_figures_unless_exposed(cached_api: Api) -> None:
    payload = (await cached_api.post(BOOK)).json()
    assert "extensions" not in payload


async def test_each_operation_logs_one_json_line(
    cached_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = cached_settings.model_copy(update={"log_level": "INFO", "log_format": "json"})
    async with running_api(settings) as api:
        capsys.readouterr()
        await api.post(BOOK)
        await api.post(BOOK)
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if '"event":"operation"' in line
        ]
    assert [line["response"] for line in lines] == ["miss", "hit"]
    assert all(line["operation"] == "OneBook" and line["level"] == "info" for line in lines)
    assert lines[0]["sql"]["statements"] > 0
    assert "timestamp" in lines[0]


def series(text: str, name: str, **labels: str) -> float:
    return Scrape.of(text).total(name, **labels) or 0.0


async def test_metrics_follow_the_traffic(stats_api: Api) -> None:
    for _ in range(3):
        await stats_api.post(BOOK)
    await stats_api.post(
        'mutation { updateBook(id: "3", input: {title: "x"}) { id } }', token=stats_api.admin_token
    )
    await stats_api.post("{ nope }")
    text = (await stats_api.client.get("/metrics")).text
    assert series(text, "strata_response_cache_total", result="hit") == 2
    assert series(text, "strata_response_cache_total", result="miss") == 1
    assert series(text, "strata_cache_hits_total", tier="l1") >= 2
    assert series(text, "strata_cache_misses_total", tier="l2") > 0
    assert series(text, "strata_sql_statements_total") > 0
    assert series(text, "strata_cache_invalidations_total", kind="Book") == 1
    assert series(text, "strata_operation_seconds_count", type="query") == 4
    assert series(text, "strata_dataloader_batch_size_count", loader="Book") >= 1
    assert series(text, "strata_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert "strata_redis_breaker_open 0.0" in text
    # Series that never moved are still there, at zero (a dashboard reads "0", not "no data").
    assert 'strata_cache_redis_errors_total{kind="error"} 0.0' in text
    assert 'strata_cache_redis_errors_total{kind="timeout"} 0.0' in text


@pytest.mark.slow
async def test_metrics_add_up_across_worker_processes(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    await prepare_database(sqlite_url)
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = server_env(sqlite_url, redis_url, key_prefix) | {
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "STRATA_LOG_LEVEL": "WARNING",
    }
    server = Server("workers", env, tmp_path, workers=2)
    requests = 60
    async with running([server]):

        async def one(n: int) -> None:
            # A new connection each time, so the kernel spreads them over both workers.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                response = await client.post(
                    "/graphql", json={"query": f'{{ book(id: "{n % 7 + 1}") {{ id }} }}'}
                )
                assert response.status_code == 200

        for start in range(0, requests, 10):
            await asyncio.gather(*(one(n) for n in range(start, start + 10)))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            text = (await client.get("/metrics")).text
    writers = {path.name.rsplit("_", 1)[-1] for path in shared.glob("*.db")}
    assert len(writers) >= 2, f"only {writers} wrote metrics: the test did not reach both"
    assert series(text, "strata_request_seconds_count", method="POST") == requests
