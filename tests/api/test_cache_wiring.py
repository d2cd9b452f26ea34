"""The API on both cache tiers (real Redis): reads are cached, every write invalidates
exactly what it changed, private values stay with their viewer, and bad entries are
misses."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from sqlalchemy import text

from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.probes import PRIVATE_PROBE, PUBLIC_PROBES, assert_same_answers, warm
from tests.support.sql_counter import counting_statements

LIST_PAGE = """{ books(first: 20) { edges { node {
  title author { name } reviewCount averageRating } } } }"""


@pytest.fixture
async def truth(cached_settings: Settings, cached_api: Api) -> AsyncIterator[Api]:
    """A second instance on the same database with every cache tier off: the oracle."""
    settings = cached_settings.model_copy(update={"cache": "off"})
    async with running_api(settings, cached_api.tokens) as api:
        yield api


async def test_warm_list_page_costs_no_sql(cached_api: Api) -> None:
    engine = cached_api.services.db.engine
    with counting_statements(engine) as cold:
        first = await cached_api.data(LIST_PAGE)
    with counting_statements(engine) as warm_run:
        second = await cached_api.data(LIST_PAGE)
    assert cold
    assert warm_run == []
    assert first == second


async def test_cache_off_reads_the_database_every_time(truth: Api) -> None:
    engine = truth.services.db.engine
    for _ in range(2):
        with counting_statements(engine) as statements:
            await truth.data(LIST_PAGE)
        assert len(statements) == 4  # page ids, books, authors, review aggregates


async def test_first_query_after_a_restart_is_an_l2_hit(
    cached_settings: Settings, cached_api: Api
) -> None:
    expected = await cached_api.data(LIST_PAGE)
    async with running_api(cached_settings, cached_api.tokens) as restarted:
        with counting_statements(restarted.services.db.engine) as statements:
            assert await restarted.data(LIST_PAGE) == expected
        assert statements == []
        assert restarted.services.cache.stats["l2_hits"] > 0


Mutation = Callable[[Api], Awaitable[Any]]


async def _post(api: Api, query: str, variables: dict[str, Any], token: str) -> None:
    await api.data(query, variables, token)


MUTATIONS: dict[str, Mutation] = {
    "update book title": lambda api: _post(
        api,
        'mutation { updateBook(id: "1", input: {title: "Renamed"}) { id } }',
        {},
        api.admin_token,
    ),
    "update book genre": lambda api: _post(
        api,
        'mutation { updateBook(id: "1", input: {genre: "mystery"}) { id } }',
        {},
        api.admin_token,
    ),
    "move book to another author": lambda api: _post(
        api,
        'mutation { updateBook(id: "5", input: {authorId: "1"}) { id } }',
        {},
        api.admin_token,
    ),
    "create book": lambda api: _post(
        api,
        """mutation { createBook(input: {title: "New", isbn: "x-1", genre: "fantasy",
           publishedYear: 2001, price: 3.5, authorId: "2"}) { id } }""",
        {},
        api.admin_token,
    ),
    "delete book": lambda api: _post(api, 'mutation { deleteBook(id: "2") }', {}, api.admin_token),
    "add review": lambda api: _post(
        api,
        'mutation { addReview(input: {bookId: "1", rating: 1, body: "meh"}) { id } }',
        {},
        api.user_token,
    ),
    "delete review": lambda api: _post(
        api, 'mutation { deleteReview(id: "4") }', {}, api.admin_token
    ),
    "create author": lambda api: _post(
        api, 'mutation { createAuthor(input: {name: "Newcomer"}) { id } }', {}, api.admin_token
    ),
    "update author": lambda api: _post(
        api,
        'mutation { updateAuthor(id: "2", input: {name: "Renamed", bio: null}) { id } }',
        {},
        api.admin_token,
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_write_is_visible_to_the_next_read(name: str, cached_api: Api, truth: Api) -> None:
    await warm(cached_api)
    await warm(cached_api)  # second pass: everything served from the cache
    await MUTATIONS[name](cached_api)
    await assert_same_answers(cached_api, truth)


async def test_deleting_an_author_after_their_books(cached_api: Api, truth: Api) -> None:
    await warm(cached_api)
    for book in ("9", "10", "11", "12"):
        await cached_api.data(
            f'mutation {{ deleteBook(id: "{book}") }}', None, cached_api.admin_token
        )
    await warm(cached_api)
    await cached_api.data('mutation { deleteAuthor(id: "3") }', None, cached_api.admin_token)
    await assert_same_answers(cached_api, truth)


async def test_a_write_keeps_unrelated_entries(cached_api: Api) -> None:
    other_author = '{ books(authorId: "7", first: 10) { edges { node { id title } } } }'
    await cached_api.data(other_author)
    await cached_api.data(
        'mutation { updateBook(id: "1", input: {title: "T"}) { id } }', None, cached_api.admin_token
    )
    with counting_statements(cached_api.services.db.engine) as statements:
        await cached_api.data(other_author)
    assert statements == []


async def test_private_values_stay_with_their_viewer(cached_api: Api, truth: Api) -> None:
    add = 'mutation { addReview(input: {bookId: "3", rating: 4, body: "mine"}) { id } }'
    viewers = [None, cached_api.user_token, cached_api.other_user_token]
    for round_ in range(3):
        for token in viewers:
            mine = await cached_api.data(PRIVATE_PROBE, token=token)
            assert mine == await truth.data(PRIVATE_PROBE, token=token)
            if token is None:
                assert mine == {"me": None}
        await cached_api.data(add, None, viewers[1 + round_ % 2])
    alice = (await cached_api.data(PRIVATE_PROBE, token=cached_api.user_token))["me"]
    bob = (await cached_api.data(PRIVATE_PROBE, token=cached_api.other_user_token))["me"]
    assert alice["name"] == "alice"
    assert bob["name"] == "bob"
    assert alice["reviews"]["totalCount"] == 2
    assert bob["reviews"]["totalCount"] == 1


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


async def test_probes_cover_every_query_field(cached_api: Api) -> None:
    """The oracle is only as good as its probes: they must reach every query root."""
    text_of_probes = " ".join(query for query, _ in PUBLIC_PROBES) + PRIVATE_PROBE
    for root in ("books", "authors", "book(", "author(", "review(", "me"):
        assert root in text_of_probes


async def test_strata_cache_invalidate_reaches_a_running_instance(
    cached_settings: Settings, cached_api: Api
) -> None:
    query = '{ book(id: "2") { title } }'
    await cached_api.data(query)
    async with cached_api.services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE books SET title = 'Operator fixed it' WHERE id = 2"))
    assert (await cached_api.data(query))["book"]["title"] != "Operator fixed it"
    env = {
        **os.environ,
        "DATABASE_URL": cached_settings.database_url,
        "REDIS_URL": str(cached_settings.redis_url),
        "STRATA_CACHE_SECRET": "test-secret",
        "STRATA_CACHE_PREFIX": cached_settings.cache_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "strata"),
        *("cache", "invalidate", "--tag", "Book:2"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert out.decode().strip() == "invalidated 1 tag"
    deadline = time.monotonic() + 5
    while (await cached_api.data(query))["book"]["title"] != "Operator fixed it":
        assert time.monotonic() < deadline, "the broadcast never reached the instance"
        await asyncio.sleep(0.01)
