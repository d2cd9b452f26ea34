"""Arguments that once spelled alike never share a cache entry (SPEC 6.2a).

Each test asks one question, then a neighbour whose arguments a careless key would render
the same (`null` and `"None"`, a string holding a separator, `""` and absent), over HTTP,
with both tiers on a real Redis, on each kind of database; every answer must equal the
database's, as an instance with the cache off gives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from graph.settings import Settings
from tests.support.api import Api, running_api

BOOKS = """query ($genre: String, $authorId: ID) {
  books(genre: $genre, authorId: $authorId) { totalCount edges { node { id genre } } } }"""
COUNT_ONLY = """query ($genre: String, $authorId: ID) {
  books(genre: $genre, authorId: $authorId) { totalCount } }"""

ABSENT = object()  # the variable is not sent at all


@pytest.fixture
async def cached(database_url: str, redis_url: str, key_prefix: str) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=database_url,
        env="dev",
        expose_cache_stats=False,
        log_level="WARNING",
        redis_url=redis_url,
        cache_secret="test-secret",
        cache_prefix=key_prefix,
    )
    async with running_api(settings) as api:
        yield api


@pytest.fixture
async def truth(cached: Api, database_url: str) -> AsyncIterator[Api]:
    """The same database with every cache tier off: the oracle."""
    settings = Settings(database_url=database_url, env="dev", log_level="WARNING", cache="off")
    async with running_api(settings, cached.tokens) as api:
        yield api


def _variables(genre: object, author_id: object) -> dict[str, Any]:
    sent = {"genre": genre, "authorId": author_id}
    return {name: value for name, value in sent.items() if value is not ABSENT}


async def _same_as_truth(cached: Api, truth: Api, query: str, variables: dict[str, Any]) -> None:
    answer = await cached.data(query, variables)
    expected = await truth.data(query, variables)
    assert answer == expected, (query, variables)


async def test_the_reported_collision_genre_none_and_the_string_none(
    cached: Api, truth: Api
) -> None:
    # The report, literally: an anonymous count of `genre: "None"`, then anyone's page.
    assert (await cached.data('{ books(authorId: "7", genre: "None") { totalCount } }')) == {
        "books": {"totalCount": 0}
    }
    page = await cached.data('{ books(authorId: "7") { totalCount edges { node { id } } } }')
    assert page["books"]["totalCount"] == len(page["books"]["edges"]) > 0
    assert page == await truth.data('{ books(authorId: "7") { totalCount edges { node { id } } } }')


GENRE_PAIRS = [
    ("None", None),
    ("None", ABSENT),
    ("null", None),
    ("@none", None),
    ("", ABSENT),
    ("", None),
    ("fantasy|x", "fantasy"),
    ("fantasy:x", "fantasy"),
    ("a:b", "a%3Ab"),
    ("(fantasy)", "fantasy"),
    ("fantasy,", "fantasy"),
    ("7", ABSENT),
]


@pytest.mark.parametrize(
    ("first", "second"),
    GENRE_PAIRS,
    ids=[
        f"{first!r}-{'absent' if second is ABSENT else repr(second)}"
        for first, second in GENRE_PAIRS
    ],
)
async def test_neighbouring_genres_never_share_an_entry(
    cached: Api, truth: Api, first: object, second: object
) -> None:
    for query in (COUNT_ONLY, BOOKS):
        for author_id in ("7", ABSENT):
            for genre in (first, second, first):
                await _same_as_truth(cached, truth, query, _variables(genre, author_id))


async def test_an_author_id_as_a_number_or_a_string(cached: Api, truth: Api) -> None:
    # GraphQL coerces an ID literal 7 to "7": the API does not tell them apart, so they
    # may share an entry, and both answer the database's count.
    for literal in ('"7"', "7", '"07"', '"None"', '""'):
        query = f"{{ books(authorId: {literal}) {{ totalCount edges {{ node {{ id }} }} }} }}"
        assert await cached.data(query) == await truth.data(query), literal
    for author_id in ("7", "07", "None", "", ABSENT):
        await _same_as_truth(cached, truth, COUNT_ONLY, _variables(ABSENT, author_id))
        await _same_as_truth(cached, truth, BOOKS, _variables("None", author_id))
