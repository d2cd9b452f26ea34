"""The fast lane of /graphql (graph/web/replays.py): a repeated anonymous request whose
answer was an L1 hit gets the same reply from one lookup, exactly while a response-cache
lookup would still find that entry, and is counted as the hit it stands for."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cache.observation import Observation
from graph.observability.exposition import Scrape
from graph.observability.logs import JsonLines
from graph.observability.operations import OperationLines, OperationStats
from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.lookups import Lookups
from tests.support.sql_counter import counting_statements

BOOKS = '{ books(authorId: "1", first: 3) { edges { node { id title } } } }'
ME = "{ me { name } }"


@pytest.fixture
async def api(cached_settings: Settings) -> AsyncIterator[Api]:
    async with running_api(cached_settings.model_copy(update={"redis_timeout_ms": 1000})) as api:
        yield api


async def scraped(api: Api) -> Scrape:
    return Scrape.of((await api.client.get("/metrics")).text)


def _post(api: Api, query: str = BOOKS, token: str | None = None) -> Any:
    return lambda: api.post(query, token=token)


async def test_a_repeated_anonymous_hit_is_replayed_as_the_hit_it_stands_for(api: Api) -> None:
    lookups = Lookups(api)
    first, hit = await api.post(BOOKS), await api.post(BOOKS)  # a miss, then a hit
    engine_hits = api.services.cache.stats["l1_hits"]
    metrics = await scraped(api)
    with counting_statements(api.services.db) as statements:
        before = lookups.count
        replayed = await api.post(BOOKS)
        assert lookups.count == before  # from the fast lane
    assert statements == []
    assert (replayed.status_code, replayed.content) == (200, hit.content)
    assert replayed.content == first.content
    assert replayed.headers == hit.headers
    assert api.services.cache.stats["l1_hits"] == engine_hits + 1
    after = await scraped(api)
    for series, labels in (
        ("strata_response_cache_total", {"result": "hit"}),
        ("strata_operation_seconds_count", {"type": "query", "response": "hit"}),
        ("strata_request_seconds_count", {"method": "POST"}),
    ):
        assert after.total(series, **labels) == (metrics.total(series, **labels) or 0) + 1


async def test_a_write_ends_the_replays_of_what_it_changed(api: Api) -> None:
    lookups = Lookups(api)
    for _ in range(2):
        await api.post(BOOKS)
    assert await lookups.made_by(_post(api)) == 0
    await api.data(
        'mutation { updateBook(id: "1", input: {title: "Changed"}) { id } }',
        token=api.admin_token,
    )
    assert await lookups.made_by(_post(api)) == 1
    assert "Changed" in (await api.post(BOOKS)).text


async def test_a_viewer_is_never_answered_from_the_fast_lane(api: Api) -> None:
    lookups = Lookups(api)
    for _ in range(3):
        assert (await api.post(ME)).json()["data"]["me"] is None
    assert await lookups.made_by(_post(api, ME)) == 0  # anonymous: replayed
    mine = await api.post(ME, token=api.user_token)
    assert mine.json()["data"]["me"]["name"] == "alice"
    for _ in range(2):
        assert await lookups.made_by(_post(api, ME, api.user_token)) == 1


async def test_an_expired_entry_is_not_replayed(cached_settings: Settings) -> None:
    settings = cached_settings.model_copy(
        update={"response_cache_max_ttl": 1, "redis_timeout_ms": 1000}
    )
    async with running_api(settings) as api:
        lookups = Lookups(api)
        for _ in range(2):
            await api.post(BOOKS)
        assert await lookups.made_by(_post(api)) == 0
        await asyncio.sleep(1.1)
        assert await lookups.made_by(_post(api)) == 1


async def test_revalidations_are_replayed_with_their_own_answer(api: Api) -> None:
    lookups = Lookups(api)
    url = f"/graphql?{httpx.QueryParams({'query': BOOKS})}"
    await api.client.get(url)
    etag = (await api.client.get(url)).headers["etag"]

    def get(if_none_match: str) -> Awaitable[httpx.Response]:
        return api.client.get(url, headers={"If-None-Match": if_none_match})

    for _ in range(2):
        assert (await get(etag)).status_code == 304
    assert await lookups.made_by(lambda: get(etag)) == 0
    assert (await get(etag)).status_code == 304
    assert (await get('"other"')).status_code == 200
    other = await get('"other"')
    assert (other.status_code, other.headers["etag"]) == (200, etag)


def test_a_replay_writes_the_line_of_the_hit_it_stands_for() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, write_through=True)  # kept: closing it closes buffer
    lines = JsonLines(stream)
    writer = OperationLines(lines)
    observation = Observation()
    observation.add("l1_hits", 1)  # what a hit's one lookup counts
    writer.write(OperationStats(cache=observation, name="ListPage", response="hit"))
    writer.write_template(writer.hit_template("ListPage"), 0.000123)
    lines.flush()
    hit, replayed = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert replayed["duration_ms"] == 0.123
    for line in (hit, replayed):
        del line["duration_ms"], line["timestamp"]
    assert replayed == hit


@pytest.mark.parametrize(
    "nanos",
    [
        1_765_000_000_000_000_000,  # a whole second: no fraction, as isoformat writes it
        1_765_000_000_000_001_000,
        1_765_000_000_001_000_000,
        1_765_000_000_999_999_999,
        1_765_000_001_123_456_789,
    ],
)
def test_the_line_end_is_the_iso_timestamp(nanos: int) -> None:
    lines = JsonLines(io.TextIOWrapper(io.BytesIO(), write_through=True))
    for _ in range(2):  # made, then from the text kept for its millisecond
        micros = nanos // 1000
        moment = datetime.fromtimestamp(micros // 1_000_000, UTC)
        iso = moment.replace(microsecond=micros % 1_000_000).isoformat()
        assert lines.line_end(nanos) == f'{iso.replace("+00:00", "Z")}"}}\n'.encode()
