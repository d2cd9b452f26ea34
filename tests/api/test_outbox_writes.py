"""Mutations through the outbox (SPEC 7a), on SQLite and PostgreSQL with Redis: each write
records its tags in its own transaction and the row is applied; a write touching more
tags than one call takes (reproduction 3c: deleteBook of a book with over 1,000 reviews)
answers and leaves nothing stale on any instance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from graph.settings import Settings
from tests.support.api import Api, add_reviews, running_api
from tests.support.outbox import outbox_rows

BOOK = """query ($id: ID!) { book(id: $id) { id title reviewCount reviews { totalCount } } }"""
COUNTS = "{ books { totalCount } }"
UPDATE_TITLE = """mutation ($id: ID!, $title: String!) {
  updateBook(id: $id, input: {title: $title}) { id title } }"""
DELETE_BOOK = "mutation ($id: ID!) { deleteBook(id: $id) }"


@pytest.fixture
def settings(cached_settings: Settings, database_url: str) -> Settings:
    """Both tiers on, on each kind of database."""
    return cached_settings.model_copy(update={"database_url": database_url})


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(settings) as client:
        yield client


async def until_applied(url: str, within: float = 10.0) -> list[tuple[list[str], bool]]:
    deadline = time.monotonic() + within
    while True:
        rows = await outbox_rows(url)
        if rows and all(done for _, done in rows):
            return rows
        assert time.monotonic() < deadline, f"outbox rows not applied: {rows}"
        await asyncio.sleep(0.02)


async def test_a_mutation_records_its_tags_and_they_are_applied(
    api: Api, settings: Settings
) -> None:
    before = await api.data(BOOK, {"id": "1"})
    assert before["book"]["title"] != "Outboxed"
    await api.data(UPDATE_TITLE, {"id": "1", "title": "Outboxed"}, api.admin_token)
    assert (await api.data(BOOK, {"id": "1"}))["book"]["title"] == "Outboxed"
    rows = await until_applied(settings.database_url)
    assert len(rows) == 1
    assert "Book:1" in rows[0][0]


async def test_a_refused_change_records_nothing(api: Api, settings: Settings) -> None:
    codes = await api.error_codes(UPDATE_TITLE, {"id": "1", "title": " "}, api.admin_token)
    assert codes == ["BAD_USER_INPUT"]
    assert await outbox_rows(settings.database_url) == []


async def test_deleting_a_book_with_over_a_thousand_reviews_leaves_nothing_stale(
    api: Api, settings: Settings
) -> None:
    """Reproduction 3c: the write committed, then its invalidation failed ("at most 1000
    tags per call") and the deleted book and old counts stayed cached."""
    await add_reviews(settings.database_url, 2, 1001)
    book = (await api.data(BOOK, {"id": "2"}))["book"]
    assert book["reviewCount"] > 1000
    counts = await api.data(COUNTS)
    async with running_api(settings, api.tokens) as other:
        assert (await other.data(BOOK, {"id": "2"}))["book"] == book  # cached on both
        assert await other.data(COUNTS) == counts
        answer = await api.data(DELETE_BOOK, {"id": "2"}, api.admin_token)
        assert answer == {"deleteBook": True}
        for instance in (api, other):
            assert (await instance.data(BOOK, {"id": "2"}))["book"] is None
            after = await instance.data(COUNTS)
            assert after["books"]["totalCount"] == counts["books"]["totalCount"] - 1
    rows = await until_applied(settings.database_url)
    assert len(rows[0][0]) > 1000


async def test_invalidate_cache_goes_through_the_outbox(api: Api, settings: Settings) -> None:
    answer = await api.data(
        'mutation { invalidateCache(tags: ["Book:1", "Book:2"]) }', token=api.admin_token
    )
    assert answer == {"invalidateCache": 2}
    rows = await until_applied(settings.database_url)
    assert [sorted(tags) for tags, _ in rows] == [["Book:1", "Book:2"]]
