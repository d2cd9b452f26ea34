"""GraphQL over HTTP: both methods, both media types, GraphiQL, health, readiness, metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graph.settings import Settings
from graph.web.app import create_app
from tests.support.api import Api, running_api

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

BOOKS_PAGE = "query Page($first: Int!) { books(first: $first) { edges { node { id title } } } }"
AUTHOR_COUNT = "{ authors { totalCount } }"
CREATE_AUTHOR = 'mutation Create { createAuthor(input: {name: "Over GET"}) { id } }'


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.fixture
async def no_graphiql_api(sqlite_url: str) -> AsyncIterator[Api]:
    async with running_api(
        Settings(database_url=sqlite_url, env="dev", graphiql=False, expose_cache_stats=False)
    ) as api:
        yield api


# --- POST ----------------------------------------------------------------------------------


async def test_post_json_answers_application_json(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        "/graphql", json={"query": BOOKS_PAGE, "variables": {"first": 3}}
    )
    assert response.status_code == 200
    assert media_type(response) == JSON
    edges = response.json()["data"]["books"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == ["1", "2", "3"]


async def test_post_with_graphql_response_accept_answers_that_media_type(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        "/graphql",
        json={"query": BOOKS_PAGE, "variables": {"first": 2}},
        headers={"Accept": f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9"},
    )
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE_JSON
    assert len(response.json()["data"]["books"]["edges"]) == 2


async def test_post_application_graphql_document(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        "/graphql",
        content=b"{ book(id: 1) { id } }",
        headers={"Content-Type": "application/graphql"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"book": {"id": "1"}}}


async def test_post_json_with_charset_parameter(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        "/graphql",
        content=json.dumps({"query": "{ book(id: 2) { id } }"}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"book": {"id": "2"}}}


async def test_validation_error_status_depends_on_media_type(sqlite_api: Api) -> None:
    body = {"query": "{ books { edges { node { noSuchField } } } }"}
    new = await sqlite_api.client.post(
        "/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE_JSON}
    )
    assert new.status_code == 400
    assert media_type(new) == GRAPHQL_RESPONSE_JSON
    legacy = await sqlite_api.client.post("/graphql", json=body, headers={"Accept": JSON})
    assert legacy.status_code == 200
    assert media_type(legacy) == JSON
    for response in (new, legacy):
        payload = response.json()
        # A request error: execution never began, so there is no `data` entry at all.
        assert "data" not in payload, payload
        [error] = payload["errors"]
        assert "noSuchField" in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_field_error_with_new_media_type_is_200_with_data(sqlite_api: Api) -> None:
    # The document is valid and execution began: per GraphQL-over-HTTP this is a (partial)
    # response with a `data` entry, answered 200 even though `data` is null.
    response = await sqlite_api.client.post(
        "/graphql",
        json={"query": "{ books(first: 0) { totalCount } }"},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] is None
    assert payload["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


PARTIAL = '{ ok: book(id: "1") { id } bad: author(id: "1") { books(first: 0) { totalCount } } }'


async def test_partial_data_keeps_the_good_fields(sqlite_api: Api) -> None:
    response = await sqlite_api.client.post(
        "/graphql",
        json={"query": PARTIAL},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] == {"ok": {"id": "1"}, "bad": None}
    [error] = payload["errors"]
    assert error["path"] == ["bad", "books"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- GET -----------------------------------------------------------------------------------


async def test_get_with_query_and_variables(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get(
        "/graphql",
        params={
            "query": BOOKS_PAGE,
            "variables": json.dumps({"first": 4}),
            "operationName": "Page",
        },
    )
    assert response.status_code == 200
    assert media_type(response) == JSON
    edges = response.json()["data"]["books"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == ["1", "2", "3", "4"]


async def test_get_with_graphql_response_accept(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get(
        "/graphql",
        params={"query": "{ book(id: 3) { id } }"},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE_JSON
    assert response.json() == {"data": {"book": {"id": "3"}}}


async def author_count(api: Api) -> int:
    count: int = (await api.data(AUTHOR_COUNT))["authors"]["totalCount"]
    return count


async def test_mutation_over_get_is_405_and_changes_nothing(sqlite_api: Api) -> None:
    before = await author_count(sqlite_api)
    response = await sqlite_api.client.get(
        "/graphql",
        params={"query": CREATE_AUTHOR},
        headers={"Authorization": f"Bearer {sqlite_api.admin_token}"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    [error] = response.json()["errors"]
    assert "POST" in error["message"]
    assert await author_count(sqlite_api) == before
    # The same document over POST does create the author: the GET refusal was the only guard.
    posted = await sqlite_api.post(CREATE_AUTHOR, token=sqlite_api.admin_token)
    assert posted.status_code == 200, posted.text
    assert await author_count(sqlite_api) == before + 1


async def test_mutation_chosen_by_operation_name_over_get_is_405(sqlite_api: Api) -> None:
    before = await author_count(sqlite_api)
    document = f"query Read {{ me {{ id }} }} {CREATE_AUTHOR}"
    response = await sqlite_api.client.get(
        "/graphql",
        params={"query": document, "operationName": "Create"},
        headers={"Authorization": f"Bearer {sqlite_api.admin_token}"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    [error] = response.json()["errors"]
    assert "POST" in error["message"]
    assert await author_count(sqlite_api) == before


async def test_head_never_runs_a_mutation(sqlite_api: Api) -> None:
    """HEAD is a safe method like GET: a mutation in a HEAD body must not run."""
    before = await author_count(sqlite_api)
    response = await sqlite_api.client.request(
        "HEAD",
        "/graphql",
        content=json.dumps({"query": CREATE_AUTHOR}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {sqlite_api.admin_token}",
        },
    )
    # Like GET, HEAD takes its operation from the query string and ignores a body.
    assert response.status_code == 400
    assert response.content == b""  # HEAD: the headers of the answer, never its body
    by_query_string = await sqlite_api.client.head(
        "/graphql",
        params={"query": CREATE_AUTHOR},
        headers={"Authorization": f"Bearer {sqlite_api.admin_token}"},
    )
    assert by_query_string.status_code == 405
    assert by_query_string.headers["allow"] == "POST"
    assert by_query_string.content == b""
    assert await author_count(sqlite_api) == before


async def test_head_with_a_query_behaves_like_get(sqlite_api: Api) -> None:
    response = await sqlite_api.client.head("/graphql", params={"query": "{ me { id } }"})
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert response.content == b""
    got = await sqlite_api.client.get("/graphql", params={"query": "{ me { id } }"})
    assert got.json() == {"data": {"me": None}}
    # The same headers as GET's answer, its length and validator included.
    for header in ("content-length", "etag", "cache-control", "vary"):
        assert response.headers[header] == got.headers[header], header


async def test_other_methods_are_405(sqlite_api: Api) -> None:
    response = await sqlite_api.client.put("/graphql", json={"query": "{ me { id } }"})
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}
    assert response.text == "Method Not Allowed"


# --- GraphiQL ------------------------------------------------------------------------------


async def test_graphiql_is_served_to_browsers(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()
    assert "<html" in response.text.lower()


async def test_graphiql_not_served_to_api_clients(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get(
        "/graphql", params={"query": "{ me { id } }"}, headers={"Accept": BROWSER_ACCEPT}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"me": None}}
    plain = await sqlite_api.client.get("/graphql", headers={"Accept": JSON})
    assert plain.status_code == 400
    assert media_type(plain) == JSON


async def test_graphiql_off_by_setting(no_graphiql_api: Api) -> None:
    response = await no_graphiql_api.client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert media_type(response) != "text/html"
    assert "graphiql" not in response.text.lower()
    assert 400 <= response.status_code < 500
    # The API itself still answers.
    assert (await no_graphiql_api.data("{ me { id } }")) == {"me": None}


# --- health, readiness, metrics -------------------------------------------------------------


async def test_healthz(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_reports_the_database(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get("/readyz")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["status"] == "ok"
    assert body["database"] in (True, "ok")


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "strata.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{missing}", env="dev")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://strata.test") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"


async def test_metrics_is_prometheus_text(sqlite_api: Api) -> None:
    await sqlite_api.client.post("/graphql", content=b"{", headers={"Content-Type": JSON})
    await sqlite_api.data("{ me { id } }")
    response = await sqlite_api.client.get("/metrics")
    assert response.status_code == 200
    assert media_type(response) == "text/plain"
    assert "version=" in response.headers["content-type"]
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {"strata_rejected_requests", "strata_graphql_errors", "strata_request_seconds"} <= set(
        families
    )
    rejected = {
        sample.labels["reason"]: sample.value
        for sample in families["strata_rejected_requests"].samples
        if sample.name.endswith("_total")
    }
    assert rejected == {"malformed_json": 1.0}
    observed = [
        sample.value
        for sample in families["strata_request_seconds"].samples
        if sample.name.endswith("_count") and sample.labels.get("method") == "POST"
    ]
    assert observed == [1.0]
