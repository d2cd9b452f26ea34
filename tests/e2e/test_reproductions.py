"""Issue 13's reproductions 1, 2 and 3c, each run as reported: against real `strata serve`
processes over HTTP, with a real Redis (3a and 3b, which need a Redis that keeps its data
across an outage, are in test_outbox_e2e.py). Each once served wrong or stale data."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.api import add_reviews, prepare_database
from tests.support.redis_server import RedisServer, fill_until_refused
from tests.support.servers import Server, running, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

COLLIDING_COUNT = '{ books(authorId: "7", genre: "None") { totalCount } }'
PAGE = '{ books(authorId: "7") { totalCount edges { node { id } } } }'
TITLE = "query ($id: ID!) { book(id: $id) { id title } }"
RENAME = """mutation ($id: ID!, $title: String!) {
  updateBook(id: $id, input: {title: $title}) { id title } }"""
BOOK = "query ($id: ID!) { book(id: $id) { id reviewCount reviews { totalCount } } }"
TOTAL = "{ books { totalCount } }"
DELETE = "mutation ($id: ID!) { deleteBook(id: $id) }"
BROADCAST_BOUND_S = 2.0


async def test_1_none_and_the_string_none_never_share_an_entry(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    await prepare_database(sqlite_url)
    env = server_env(sqlite_url, redis_url, key_prefix)
    cached = Server("A", env, tmp_path)
    truth = Server("C", {**env, "STRATA_CACHE": "off"}, tmp_path)
    async with running([cached, truth]):
        assert await cached.data(COLLIDING_COUNT) == {"books": {"totalCount": 0}}
        page = await cached.data(PAGE)
        assert page == await truth.data(PAGE)
        assert page["books"]["totalCount"] == len(page["books"]["edges"]) > 0


async def test_2_the_writer_reads_its_write_while_redis_refuses_writes(
    sqlite_url: str, own_redis: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    admin, _, _ = await prepare_database(sqlite_url)
    a = Server("A", server_env(sqlite_url, own_redis.url, key_prefix), tmp_path)
    async with running([a]):
        old = (await a.data(TITLE, {"id": "1"}))["book"]["title"]
        assert (await a.data(TITLE, {"id": "1"}))["book"]["title"] == old  # L1 and L2
        client = aioredis.Redis.from_url(own_redis.url)
        try:
            await fill_until_refused(client)
            renamed = await a.data(RENAME, {"id": "1", "title": "Renamed while full"}, admin)
            assert renamed["updateBook"]["title"] == "Renamed while full"
            for _ in range(20):  # every later read on the writer, however L1 and L2 stand
                got = await a.data(TITLE, {"id": "1"})
                assert got["book"]["title"] == "Renamed while full"
            await client.config_set("maxmemory", "0")  # Redis takes writes again
        finally:
            await client.aclose()
        assert (await a.data(TITLE, {"id": "1"}))["book"]["title"] == "Renamed while full"


async def test_3c_deleting_a_book_with_over_a_thousand_reviews(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    admin, _, _ = await prepare_database(sqlite_url)
    await add_reviews(sqlite_url, 2, 1001)
    env = server_env(sqlite_url, redis_url, key_prefix)
    a, b = Server("A", env, tmp_path), Server("B", env, tmp_path)
    async with running([a, b]):
        book = (await b.data(BOOK, {"id": "2"}))["book"]
        assert book["reviewCount"] > 1000
        total = (await b.data(TOTAL))["books"]["totalCount"]
        assert (await b.data(BOOK, {"id": "2"}))["book"] == book  # cached on B
        assert await a.data(DELETE, {"id": "2"}, admin) == {"deleteBook": True}
        # On the writer at once; on B within the broadcast's window (bounded wait).
        assert (await a.data(BOOK, {"id": "2"}))["book"] is None
        assert (await a.data(TOTAL))["books"]["totalCount"] == total - 1
        deadline = time.monotonic() + BROADCAST_BOUND_S
        while (await b.data(BOOK, {"id": "2"}))["book"] is not None:
            assert time.monotonic() < deadline, "B still serves the deleted book"
            await asyncio.sleep(0.01)
        assert (await b.data(TOTAL))["books"]["totalCount"] == total - 1
