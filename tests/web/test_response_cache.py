"""The whole-response cache: hits skip execution, writes drop exactly the responses that
showed what they changed, private responses stay with their viewer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as redis

from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.sql_counter import counting_statements

BOOKS_OF = """query ($a: ID) { books(authorId: $a, first: 10) {
  edges { node { id title reviewCount averageRating author { name } } } } }"""


async def answer(
    api: Api, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    response = await api.post(query, variables, token)
    assert response.status_code == 200
    payload: dict[str, Any] = response.json()
    assert "errors" not in payload
    return payload


def executed(api: Api) -> float:
    return sum(
        sample.value
        for metric in api.services.metrics.operations.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_a_repeated_query_is_a_response_hit_without_execution(stats_api: Api) -> None:
    first = await answer(stats_api, BOOKS_OF, {"a": "1"})
    assert first["extensions"]["cache"]["response"] == "miss"
    runs = executed(stats_api)
    with counting_statements(stats_api.services.db) as statements:
        second = await answer(stats_api, BOOKS_OF, {"a": "1"})
    assert second["extensions"]["cache"]["response"] == "hit"
    assert second["extensions"]["cache"]["tier"] == "L1"
    assert second["extensions"]["cache"]["sql"]["statements"] == 0
    assert second["data"] == first["data"]
    assert statements == []
    assert executed(stats_api) == runs


async def test_spacing_argument_order_and_variable_order_share_a_key(stats_api: Api) -> None:
    await answer(
        stats_api,
        "query ($a: ID, $g: String) { books(authorId: $a, genre: $g) { totalCount } }",
        {"a": "1", "g": "fantasy"},
    )
    again = await answer(
        stats_api,
        "query($a:ID,$g:String){books(authorId:$a,genre:$g){totalCount}}  # same",
        {"g": "fantasy", "a": "1"},
    )
    assert again["extensions"]["cache"]["response"] == "hit"
    other = await answer(
        stats_api,
        "query ($a: ID, $g: String) { books(authorId: $a, genre: $g) { totalCount } }",
        {"a": "2", "g": "fantasy"},
    )
    assert other["extensions"]["cache"]["response"] == "miss"


async def test_a_write_drops_exactly_the_responses_that_showed_it(stats_api: Api) -> None:
    await answer(stats_api, BOOKS_OF, {"a": "1"})
    await answer(stats_api, BOOKS_OF, {"a": "5"})
    await stats_api.data(
        'mutation { updateBook(id: "2", input: {title: "Changed"}) { id } }',
        token=stats_api.admin_token,
    )
    mine = await answer(stats_api, BOOKS_OF, {"a": "1"})
    assert mine["extensions"]["cache"]["response"] == "miss"
    assert "Changed" in [e["node"]["title"] for e in mine["data"]["books"]["edges"]]
    unrelated = await answer(stats_api, BOOKS_OF, {"a": "5"})
    assert unrelated["extensions"]["cache"]["response"] == "hit"


async def test_review_changes_drop_the_responses_with_their_aggregates(stats_api: Api) -> None:
    before = await answer(stats_api, BOOKS_OF, {"a": "1"})
    await stats_api.data(
        'mutation { addReview(input: {bookId: "1", rating: 5, body: "x"}) { id } }',
        token=stats_api.user_token,
    )
    after = await answer(stats_api, BOOKS_OF, {"a": "1"})
    assert after["extensions"]["cache"]["response"] == "miss"
    count = {e["node"]["id"]: e["node"]["reviewCount"] for e in after["data"]["books"]["edges"]}
    old = {e["node"]["id"]: e["node"]["reviewCount"] for e in before["data"]["books"]["edges"]}
    assert count["1"] == old["1"] + 1


async def test_private_responses_are_kept_per_viewer(stats_api: Api) -> None:
    me = "{ me { name } }"
    for token, name in ((stats_api.user_token, "alice"), (stats_api.other_user_token, "bob")):
        first = await answer(stats_api, me, token=token)
        assert first["data"]["me"]["name"] == name
    for token, name in ((stats_api.user_token, "alice"), (stats_api.other_user_token, "bob")):
        again = await answer(stats_api, me, token=token)
        assert again["data"]["me"]["name"] == name
        assert again["extensions"]["cache"]["response"] == "hit"
    anonymous = await answer(stats_api, me)
    assert anonymous["data"]["me"] is None
    assert anonymous["extensions"]["cache"]["response"] == "miss"


async def test_public_responses_are_shared_by_every_viewer(stats_api: Api) -> None:
    await answer(stats_api, BOOKS_OF, {"a": "4"}, token=stats_api.user_token)
    for token in (None, stats_api.other_user_token, stats_api.admin_token):
        again = await answer(stats_api, BOOKS_OF, {"a": "4"}, token=token)
        assert again["extensions"]["cache"]["response"] == "hit"


async def test_what_is_never_stored(stats_api: Api) -> None:
    never = [
        ('mutation { updateAuthor(id: "1", input: {bio: "b"}) { id } }', stats_api.admin_token),
        ("{ __schema { queryType { name } } }", None),
        ('{ books(first: 0) { totalCount } book(id: "1") { id } }', None),
    ]
    for query, token in never:
        for _ in range(2):
            payload = (await stats_api.post(query, token=token)).json()
            assert payload["extensions"]["cache"]["response"] == "skip", query


async def test_response_cache_settings(cached_settings: Settings, key_prefix: str) -> None:
    settings = cached_settings.model_copy(
        update={
            "expose_cache_stats": True,
            "response_cache_exclude": ["Live"],
            "response_cache_max_ttl": 5,
        }
    )
    async with running_api(settings) as api:
        live = 'query Live { book(id: "1") { title } }'
        for _ in range(2):
            payload = (await api.post(live)).json()
            assert payload["extensions"]["cache"]["response"] == "skip"
        await answer(api, '{ book(id: "1") { title } }')
        client = redis.Redis.from_url(str(settings.redis_url))
        try:
            keys = [
                key
                async for key in client.scan_iter(
                    match="{" + api.services.cache.config.namespace + "}:e:response:*"
                )
            ]
            assert len(keys) == 1
            assert 0 < await client.ttl(keys[0]) <= 6  # the cap, plus TTL jitter
        finally:
            await client.aclose()


async def test_cache_off_bypasses_the_response_cache(cached_settings: Settings) -> None:
    settings = cached_settings.model_copy(update={"cache": "off", "expose_cache_stats": True})
    async with running_api(settings) as api:
        for _ in range(2):
            with counting_statements(api.services.db) as statements:
                payload = await answer(api, BOOKS_OF, {"a": "1"})
            assert statements
            assert payload["extensions"]["cache"]["response"] == "skip"


async def test_automatic_persisted_queries(stats_api: Api) -> None:
    query = '{ book(id: "3") { title } }'
    sha = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    unknown = await stats_api.client.get("/graphql", params={"extensions": json.dumps(extensions)})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await stats_api.client.post(
        "/graphql", json={"query": query, "extensions": extensions}
    )
    assert registered.json()["data"]["book"]["title"]
    by_hash = await stats_api.client.get("/graphql", params={"extensions": json.dumps(extensions)})
    assert by_hash.json().get("data") == registered.json()["data"], by_hash.json()
    assert by_hash.json()["extensions"]["cache"]["response"] == "hit"
    assert "etag" in by_hash.headers
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    mismatch = await stats_api.client.post("/graphql", json={"query": query, "extensions": wrong})
    assert mismatch.status_code == 400
    for bad in ({"persistedQuery": {"version": 2, "sha256Hash": sha}}, {"persistedQuery": "x"}):
        refused = await stats_api.client.post("/graphql", json={"extensions": bad})
        assert refused.status_code == 400


async def test_a_hit_keeps_http_caching_headers(stats_api: Api) -> None:
    query = '{ book(id: "4") { title reviewCount } }'
    first = await stats_api.client.get("/graphql", params={"query": query})
    second = await stats_api.client.get("/graphql", params={"query": query})
    assert second.json()["extensions"]["cache"]["response"] == "hit"
    assert second.headers["cache-control"] == first.headers["cache-control"]
    assert second.headers["etag"] == first.headers["etag"]
    runs = executed(stats_api)
    not_modified = await stats_api.client.get(
        "/graphql", params={"query": query}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == first.headers["etag"]
    assert not_modified.headers["cache-control"] == first.headers["cache-control"]
    assert executed(stats_api) == runs, "a 304 from the response cache executes nothing"
