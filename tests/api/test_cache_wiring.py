"""The API on both cache tiers (real Redis): reads are cached, every write invalidates
exactly what it changed, private values stay with their viewer, and bad entries are
misses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from sqlalchemy import text

from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.probes import (
    LIST_QUERY,
    PRIVATE_PROBE,
    PUBLIC_PROBES,
    WRITES,
    answers,
    assert_same_answers,
    differences,
    query_fields_probed,
    schema_query_fields,
    warm,
)
from tests.support.sql_counter import counting_statements

PAGE = {"first": 20}


@pytest.fixture
async def truth(cached_settings: Settings, cached_api: Api) -> AsyncIterator[Api]:
    """A second instance on the same database with every cache tier off: the oracle."""
    settings = cached_settings.model_copy(update={"cache": "off"})
    async with running_api(settings, cached_api.tokens) as api:
        yield api


async def test_warm_list_page_costs_no_sql(cached_api: Api) -> None:
    db = cached_api.services.db
    with counting_statements(db) as cold:
        first = await cached_api.data(LIST_QUERY, PAGE)
    with counting_statements(db) as warm_run:
        second = await cached_api.data(LIST_QUERY, PAGE)
    assert cold
    assert warm_run == []
    assert first == second


async def test_cache_off_reads_the_database_every_time(truth: Api) -> None:
    db = truth.services.db
    for _ in range(2):
        with counting_statements(db) as statements:
            await truth.data(LIST_QUERY, PAGE)
        assert len(statements) == 4  # page ids, books, authors, review aggregates


@pytest.fixture(params=["whole responses", "fields and subtrees"])
async def subject(
    request: pytest.FixtureRequest, cached_settings: Settings, cached_api: Api
) -> AsyncIterator[Api]:
    """The cached instance, with the whole-response cache on, and off (every answer is
    then executed from cached fields and cached subtrees)."""
    if request.param == "whole responses":
        yield cached_api
        return
    settings = cached_settings.model_copy(update={"response_cache": False})
    async with running_api(settings, cached_api.tokens) as api:
        yield api


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_write_is_visible_to_the_next_read(name: str, subject: Api, truth: Api) -> None:
    before = await answers(truth, subject.tokens, limit=1)
    await warm(subject)
    for query, variables, who in WRITES[name]:
        # Everything is cached when each write lands (the first pass filled, this one
        # reads back), so a write that fails to invalidate leaves a stale answer behind.
        await warm(subject)
        await subject.data(query, variables, subject.tokens[who])
    after = await answers(truth, subject.tokens, limit=1)
    assert differences(after, before), f"{name}: no probe shows this write, so it proves nothing"
    await assert_same_answers(subject, truth)


async def test_a_write_keeps_unrelated_entries(cached_api: Api) -> None:
    other_author = '{ books(authorId: "7", first: 10) { edges { node { id title } } } }'
    await cached_api.data(other_author)
    await cached_api.data(
        'mutation { updateBook(id: "1", input: {title: "T"}) { id } }', None, cached_api.admin_token
    )
    with counting_statements(cached_api.services.db) as statements:
        await cached_api.data(other_author)
    assert statements == []


async def test_tampered_redis_entries_are_misses(
    cached_settings: Settings, cached_api: Api, truth: Api
) -> None:
    await warm(cached_api)
    assert cached_settings.redis_url is not None
    client = redis.Redis.from_url(cached_settings.redis_url)
    tampered = 0
    try:
        entries = "{" + cached_api.services.cache.config.namespace + "}:e:*"
        async for key in client.scan_iter(match=entries, count=500):
            if await client.type(key) != b"string":
                continue
            value = await client.get(key)
            if not isinstance(value, bytes) or not value:
                continue
            forged = value[:-1] + bytes([value[-1] ^ 0x01])
            await client.set(key, forged, keepttl=True)
            tampered += 1
    finally:
        await client.aclose()
    assert tampered > 0
    async with running_api(cached_settings, cached_api.tokens) as fresh:
        await assert_same_answers(fresh, truth)
        assert fresh.services.cache.stats["integrity_failures"] > 0


async def test_invalidate_cache_by_hand(cached_api: Api) -> None:
    query = '{ book(id: "1") { title } }'
    assert (await cached_api.data(query))["book"]["title"] != "Changed behind our back"
    async with cached_api.services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE books SET title = 'Changed behind our back' WHERE id = 1"))
    assert (await cached_api.data(query))["book"]["title"] != "Changed behind our back"
    bumped = await cached_api.data(
        'mutation { invalidateCache(tags: ["Book:1", "Book:1"]) }', None, cached_api.admin_token
    )
    assert bumped == {"invalidateCache": 1}
    assert (await cached_api.data(query))["book"]["title"] == "Changed behind our back"


def test_probes_cover_every_query_field() -> None:
    """The oracle is only as good as its probes: between them they select every field of
    the schema's Query type (a new root field fails this until a probe reads it)."""
    documents = [query for query, _ in PUBLIC_PROBES] + [PRIVATE_PROBE]
    assert schema_query_fields() <= query_fields_probed(documents)
