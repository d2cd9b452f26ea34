"""SPEC section 9: every kind of bad input gets a clear 4xx or GraphQL error, and is counted.

Request errors that GraphQL itself defines (syntax, validation, limits, variables) are sent
with `Accept: application/graphql-response+json`, under which GraphQL-over-HTTP answers them
400; field errors (a bad `first` or cursor) happen during execution and answer 200 with a
`data` entry, as that spec requires.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from graph.api.arguments import ID_LIMIT
from graph.settings import Settings
from tests.support.api import Api, running_api

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
NEW_MEDIA_TYPE = {"Accept": GRAPHQL_RESPONSE_JSON}
REJECTED = "strata_rejected_requests_total"
GRAPHQL_ERRORS = "strata_graphql_errors_total"

MAX_DEPTH = 4
MAX_ALIASES = 3
MAX_TOKENS = 120
MAX_BODY_BYTES = 4096

BOOKS_TOTAL = "{ books { totalCount } }"
FIRST = "query ($first: Int!) { books(first: $first) { totalCount } }"


@pytest.fixture
async def limited_api(sqlite_url: str) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=sqlite_url,
        env="dev",
        expose_cache_stats=False,
        max_depth=MAX_DEPTH,
        max_aliases=MAX_ALIASES,
        max_tokens=MAX_TOKENS,
        max_body_bytes=MAX_BODY_BYTES,
    )
    async with running_api(settings) as api:
        yield api


# --- helpers -------------------------------------------------------------------------------


async def counters(api: Api) -> dict[tuple[str, str], float]:
    """(metric, label value) -> value for the rejection and GraphQL-error counters."""
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == REJECTED:
                values[(REJECTED, sample.labels["reason"])] = sample.value
            elif sample.name == GRAPHQL_ERRORS:
                values[(GRAPHQL_ERRORS, sample.labels["code"])] = sample.value
    return values


class Counted:
    """Checks that exactly one request of a kind was counted under the given label."""

    def __init__(self, api: Api, metric: str, label: str) -> None:
        self.api, self.key = api, (metric, label)
        self.before = 0.0

    async def __aenter__(self) -> Counted:
        self.before = (await counters(self.api)).get(self.key, 0.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        after = (await counters(self.api)).get(self.key, 0.0)
        assert after == self.before + 1, f"{self.key}: {self.before} -> {after}"


def rejected(api: Api, reason: str) -> Counted:
    return Counted(api, REJECTED, reason)


def graphql_error(api: Api, code: str) -> Counted:
    return Counted(api, GRAPHQL_ERRORS, code)


def error_of(response: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    """The single error of a response, checked for status, shape, code and wording."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/"), response.headers
    payload = response.json()
    assert isinstance(payload, dict)
    assert set(payload) <= {"data", "errors", "extensions"}
    errors = payload["errors"]
    assert isinstance(errors, list)
    assert len(errors) == 1, errors
    [error] = errors
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    assert error["extensions"]["code"] == code, error
    for word in words:
        assert word.lower() in error["message"].lower(), error["message"]
    assert isinstance(error, dict)
    return error


async def post_raw(
    api: Api,
    body: bytes,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    return await api.client.post("/graphql", content=body, headers=sent)


async def post_json(api: Api, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return await post_raw(api, json.dumps(body).encode(), headers=headers)


async def assert_still_serving(api: Api) -> None:
    data = await api.data("{ books(first: 2) { edges { node { id } } totalCount } }")
    assert [edge["node"]["id"] for edge in data["books"]["edges"]] == ["1", "2"]
    assert data["books"]["totalCount"] > 2


# --- the body ------------------------------------------------------------------------------


async def test_malformed_json(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "malformed_json"):
        response = await post_raw(sqlite_api, b'{"query": "{ books { totalCount } }"')
    error_of(response, 400, "BAD_REQUEST", "json")


async def test_body_not_utf8(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "malformed_json"):
        response = await post_raw(sqlite_api, b'{"query": "\xff\xfe"}')
    error_of(response, 400, "BAD_REQUEST", "json")


@pytest.mark.parametrize("body", [[{"query": BOOKS_TOTAL}], "{ books { totalCount } }", 42, None])
async def test_non_object_json_body(sqlite_api: Api, body: Any) -> None:
    async with rejected(sqlite_api, "malformed_json"):
        response = await post_json(sqlite_api, body)
    error_of(response, 400, "BAD_REQUEST", "object")


async def test_missing_query(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "missing_query"):
        response = await post_json(sqlite_api, {"variables": {}})
    error_of(response, 400, "BAD_REQUEST", "query")


async def test_empty_query(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "missing_query"):
        response = await post_json(sqlite_api, {"query": ""})
    error_of(response, 400, "BAD_REQUEST", "query")


async def test_missing_query_over_get(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "missing_query"):
        response = await sqlite_api.client.get("/graphql", params={"variables": "{}"})
    error_of(response, 400, "BAD_REQUEST", "query")


@pytest.mark.parametrize("query", [42, ["{ me { id } }"], {"q": 1}, True])
async def test_query_not_a_string(sqlite_api: Api, query: Any) -> None:
    async with rejected(sqlite_api, "bad_params"):
        response = await post_json(sqlite_api, {"query": query})
    error_of(response, 400, "BAD_REQUEST", "query", "string")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("variables", [1, 2], ("variables", "object")),
        ("variables", "{}", ("variables", "object")),
        ("operationName", 7, ("operationName", "string")),
        ("extensions", "x", ("extensions", "object")),
    ],
)
async def test_other_params_of_the_wrong_type(
    sqlite_api: Api, field: str, value: Any, words: tuple[str, ...]
) -> None:
    async with rejected(sqlite_api, "bad_params"):
        response = await post_json(sqlite_api, {"query": BOOKS_TOTAL, field: value})
    error_of(response, 400, "BAD_REQUEST", *words)


async def test_variables_over_get_not_json(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "malformed_json"):
        response = await sqlite_api.client.get(
            "/graphql", params={"query": FIRST, "variables": "{first: 2"}
        )
    error_of(response, 400, "BAD_REQUEST", "variables", "json")


# --- the operation -------------------------------------------------------------------------


async def test_unknown_operation_name(sqlite_api: Api) -> None:
    body = {"query": "query A { me { id } } query B { me { name } }", "operationName": "C"}
    async with rejected(sqlite_api, "unknown_operation"):
        response = await post_json(sqlite_api, body)
    error_of(response, 400, "BAD_REQUEST", '"C"')


async def test_variable_of_the_wrong_type(sqlite_api: Api) -> None:
    body = {"query": FIRST, "variables": {"first": "twenty"}}
    async with graphql_error(sqlite_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(sqlite_api, body, NEW_MEDIA_TYPE)
    error = error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "$first", "twenty")
    assert "data" not in response.json()
    assert error["locations"]
    # With application/json the same error answers 200, per GraphQL-over-HTTP.
    legacy = await post_json(sqlite_api, body)
    error_of(legacy, 200, "GRAPHQL_VALIDATION_FAILED", "$first")


async def test_required_variable_missing(sqlite_api: Api) -> None:
    async with graphql_error(sqlite_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(sqlite_api, {"query": FIRST}, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "$first", "Int!")


async def test_variable_out_of_int_range(sqlite_api: Api) -> None:
    body = {"query": FIRST, "variables": {"first": 2**40}}
    async with graphql_error(sqlite_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(sqlite_api, body, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "$first")


async def test_graphql_syntax_error(sqlite_api: Api) -> None:
    async with graphql_error(sqlite_api, "GRAPHQL_PARSE_FAILED"):
        response = await post_json(sqlite_api, {"query": "{ books(first: ) }"}, NEW_MEDIA_TYPE)
    error = error_of(response, 400, "GRAPHQL_PARSE_FAILED", "syntax error")
    assert error["locations"] == [{"line": 1, "column": 16}]
    assert "data" not in response.json()


async def test_unknown_field(sqlite_api: Api) -> None:
    async with graphql_error(sqlite_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(sqlite_api, {"query": "{ bookz { id } }"}, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "bookz")


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (json.dumps({"query": "{ ...Missing }"}).encode(), "application/json"),
        (json.dumps({"query": '{ book(id: "1") { ...Gone } }'}).encode(), "application/json"),
    ],
)
async def test_broken_documents_are_validation_errors(
    sqlite_api: Api, document: bytes, content_type: str
) -> None:
    response = await post_raw(sqlite_api, document, content_type, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED")


# --- query limits --------------------------------------------------------------------------


NESTING = ['book(id: "1")', "author", "books", "edges", "node"] + [
    "author",
    "books",
    "edges",
    "node",
] * 3
LEAF = {"books": "totalCount", "edges": "cursor"}


def nested(depth: int) -> str:
    """A query whose leaf field is `depth` levels below the root field (which is level 0)."""
    fields = NESTING[:depth]
    inner = LEAF.get(fields[-1], "id")
    for field in reversed(fields):
        inner = f"{field} {{ {inner} }}"
    return f"{{ {inner} }}"


async def test_depth_at_the_limit_is_served(limited_api: Api) -> None:
    data = await limited_api.data(nested(MAX_DEPTH))
    assert data["book"]["author"]["books"]["edges"]


async def test_depth_over_the_limit(limited_api: Api) -> None:
    async with graphql_error(limited_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(limited_api, {"query": nested(MAX_DEPTH + 1)}, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "depth", str(MAX_DEPTH))


def aliased(count: int) -> str:
    return "{ " + " ".join(f'b{n}: book(id: "{n + 1}") {{ id }}' for n in range(count)) + " }"


async def test_aliases_at_the_limit_are_served(limited_api: Api) -> None:
    data = await limited_api.data(aliased(MAX_ALIASES))
    assert len(data) == MAX_ALIASES


async def test_aliases_over_the_limit(limited_api: Api) -> None:
    async with graphql_error(limited_api, "GRAPHQL_VALIDATION_FAILED"):
        response = await post_json(limited_api, {"query": aliased(MAX_ALIASES + 1)}, NEW_MEDIA_TYPE)
    error_of(response, 400, "GRAPHQL_VALIDATION_FAILED", "aliases", str(MAX_ALIASES))


def many_tokens(pairs: int) -> str:
    # `{ me { id } ... }`: 2 tokens for the outer braces, 4 per `me { id }`.
    return "{ " + "me { id } " * pairs + "}"


async def test_tokens_over_the_limit(limited_api: Api) -> None:
    within = await post_json(limited_api, {"query": many_tokens((MAX_TOKENS - 2) // 4)})
    assert within.status_code == 200
    assert "errors" not in within.json()
    async with graphql_error(limited_api, "GRAPHQL_PARSE_FAILED"):
        response = await post_json(
            limited_api, {"query": many_tokens(MAX_TOKENS // 4 + 1)}, NEW_MEDIA_TYPE
        )
    error_of(response, 400, "GRAPHQL_PARSE_FAILED", "tokens", str(MAX_TOKENS))


# --- body size -----------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid request body of exactly `size` bytes."""
    head = json.dumps({"query": "{ me { id } }"}).encode()[:-1] + b', "pad": "'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_body_at_the_limit_is_served(limited_api: Api) -> None:
    body = padded_body(MAX_BODY_BYTES)
    assert len(body) == MAX_BODY_BYTES
    response = await post_raw(limited_api, body)
    assert response.status_code == 200
    assert response.json() == {"data": {"me": None}}


async def test_body_over_the_limit_with_content_length(limited_api: Api) -> None:
    body = padded_body(MAX_BODY_BYTES + 1)
    async with rejected(limited_api, "body_too_large"):
        response = await post_raw(limited_api, body)
    error_of(response, 413, "BAD_REQUEST", str(MAX_BODY_BYTES))


async def test_body_over_the_limit_chunked_stops_reading(limited_api: Api) -> None:
    chunk = b" " * 1024
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ me { id } }", "pad": "'
        for _ in range(10_000):  # 10 MiB if the server read it all
            sent += len(chunk)
            yield chunk

    async with rejected(limited_api, "body_too_large"):
        response = await limited_api.client.post(
            "/graphql", content=endless(), headers={"Content-Type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    error_of(response, 413, "BAD_REQUEST", str(MAX_BODY_BYTES))
    # The server stopped reading once the limit was passed.
    assert sent <= MAX_BODY_BYTES + 2 * len(chunk)


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
async def test_wrong_content_type(sqlite_api: Api, content_type: str | None) -> None:
    body = json.dumps({"query": BOOKS_TOTAL}).encode()
    async with rejected(sqlite_api, "unsupported_media_type"):
        response = await post_raw(sqlite_api, body, content_type)
    error_of(response, 415, "BAD_REQUEST", "content-type", "application/json")


async def test_unknown_bearer_token(sqlite_api: Api) -> None:
    headers = {"Authorization": "Bearer strata_" + "A" * 43}
    async with rejected(sqlite_api, "bad_token"):
        response = await post_json(sqlite_api, {"query": "{ me { id } }"}, headers)
    error_of(response, 401, "UNAUTHENTICATED", "token")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Basic x", "Bearer", "Bearer   ", "Token abc", "bearer-strata_x", "Bearer " + "x" * 5000],
)
async def test_malformed_authorization_header(sqlite_api: Api, header: str) -> None:
    async with rejected(sqlite_api, "bad_token"):
        response = await post_json(
            sqlite_api, {"query": "{ me { id } }"}, {"Authorization": header}
        )
    error_of(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_bad_token_is_refused_over_get_too(sqlite_api: Api) -> None:
    async with rejected(sqlite_api, "bad_token"):
        response = await sqlite_api.client.get(
            "/graphql",
            params={"query": "{ me { id } }"},
            headers={"Authorization": "Bearer strata_nope"},
        )
    error_of(response, 401, "UNAUTHENTICATED", "token")


# --- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("first", [0, -1, 101, 2**31 - 1])
async def test_first_out_of_range(sqlite_api: Api, first: int) -> None:
    async with graphql_error(sqlite_api, "BAD_USER_INPUT"):
        response = await post_json(
            sqlite_api, {"query": FIRST, "variables": {"first": first}}, NEW_MEDIA_TYPE
        )
    error = error_of(response, 200, "BAD_USER_INPUT", "first", "100")
    assert error["path"] == ["books"]
    assert response.json()["data"] is None


async def test_first_out_of_range_on_a_nested_connection(sqlite_api: Api) -> None:
    query = '{ author(id: "1") { name books(first: 500) { totalCount } } }'
    async with graphql_error(sqlite_api, "BAD_USER_INPUT"):
        response = await post_json(sqlite_api, {"query": query})
    error = error_of(response, 200, "BAD_USER_INPUT", "first")
    assert error["path"] == ["author", "books"]


async def other_connection_cursor(api: Api) -> str:
    data = await api.data("{ authors(first: 1) { edges { cursor } } }")
    cursor: str = data["authors"]["edges"][0]["cursor"]
    return cursor


@pytest.mark.parametrize(
    "after",
    ["garbage!!", "%%%", "", "Qm9vazo", "Qm9vazpub3Q", "\u00e9\u00e9", "=" * 50, "x" * 5000],
)
async def test_garbage_cursor(sqlite_api: Api, after: str) -> None:
    query = "query ($after: String) { books(after: $after) { totalCount } }"
    async with graphql_error(sqlite_api, "BAD_USER_INPUT"):
        response = await post_json(sqlite_api, {"query": query, "variables": {"after": after}})
    error_of(response, 200, "BAD_USER_INPUT", "cursor")


async def test_cursor_of_another_connection(sqlite_api: Api) -> None:
    after = await other_connection_cursor(sqlite_api)
    query = "query ($after: String) { books(after: $after) { totalCount } }"
    async with graphql_error(sqlite_api, "BAD_USER_INPUT"):
        response = await post_json(sqlite_api, {"query": query, "variables": {"after": after}})
    error_of(response, 200, "BAD_USER_INPUT", "cursor", "Book")


@pytest.mark.parametrize(
    "book_id",
    [
        "9" * 19,
        "9" * ID_LIMIT,  # longer is BAD_USER_INPUT (tests/api/test_text_arguments.py)
        "-1",
        "0",
        "1.0",
        " 1",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: isdigit() but not ours
        "1e3",
        "",
        "Qm9vazox",
        "\x00",
        "x" * ID_LIMIT,
    ],
)
async def test_odd_book_id_is_null_not_an_error(sqlite_api: Api, book_id: str) -> None:
    before = await counters(sqlite_api)
    response = await post_json(
        sqlite_api,
        {"query": "query ($id: ID!) { book(id: $id) { id } }", "variables": {"id": book_id}},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"book": None}}
    assert await counters(sqlite_api) == before


NUL_INPUTS = [
    ("query ($s: String) { books(genre: $s) { totalCount } }", None),
    ("mutation ($s: String!) { createAuthor(input: {name: $s}) { id } }", "admin"),
    (
        'mutation ($s: String!) { addReview(input: {bookId: "1", rating: 3, body: $s}) { id } }',
        "user",
    ),
]


@pytest.mark.parametrize(("query", "who"), NUL_INPUTS)
async def test_nul_character_in_a_string_is_bad_input(
    api: Api, query: str, who: str | None
) -> None:
    token = {"admin": api.admin_token, "user": api.user_token}.get(who or "")
    payload = (await api.post(query, {"s": "a\u0000b"}, token)).json()
    codes = [error["extensions"]["code"] for error in payload.get("errors", [])]
    assert codes == ["BAD_USER_INPUT"], payload


# --- afterwards ----------------------------------------------------------------------------


async def test_server_unharmed_after_a_barrage(limited_api: Api) -> None:
    bad: list[tuple[bytes, str | None]] = [
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b'{"query": 1}', "application/json"),
        (b'{"query": "{"}', "application/json"),
        (padded_body(MAX_BODY_BYTES * 3), "application/json"),
        (b'{"query": "{ me { id } }"}', "text/plain"),
        (json.dumps({"query": nested(MAX_DEPTH + 3)}).encode(), "application/json"),
    ]
    responses = await asyncio.gather(*(post_raw(limited_api, b, t) for b, t in bad * 5))
    assert all(400 <= r.status_code < 500 or r.status_code == 200 for r in responses)
    assert all("errors" in r.json() for r in responses)
    await assert_still_serving(limited_api)
    assert (await limited_api.client.get("/readyz")).status_code == 200


# --- fuzzing -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
GRAPHQL_WORDS = st.sampled_from(
    [
        "{",
        "}",
        "(",
        ")",
        ":",
        "...",
        "query",
        "mutation",
        "subscription",
        "fragment",
        "on",
        "Book",
        "book",
        "books",
        "author",
        "authors",
        "reviews",
        "review",
        "me",
        "id",
        "title",
        "first:",
        "after:",
        "id:",
        "genre:",
        "authorId:",
        "1",
        "-1",
        "101",
        '"1"',
        '"Qm9vazox"',
        '"QXV0aG9yOjE"',
        "$x",
        "$x:",
        "Int",
        "ID!",
        "String",
        "edges",
        "node",
        "cursor",
        "pageInfo",
        "totalCount",
        "@include(if: true)",
        "@skip(if: $x)",
        "__typename",
        "__schema",
        "types",
        "name",
        "deleteBook(id:",
        "a:",
        '"\\u0000"',
    ]
)
GRAPHQL_TEXT = st.lists(GRAPHQL_WORDS, max_size=40).map(" ".join) | st.text(max_size=60)
REQUEST_OBJECTS = st.fixed_dictionaries(
    {"query": GRAPHQL_TEXT | JSON_VALUES},
    optional={
        "variables": st.dictionaries(st.sampled_from(["x", "first", "id"]), JSON_VALUES)
        | JSON_VALUES,
        "operationName": st.text(max_size=10) | JSON_VALUES,
        "extensions": JSON_VALUES,
    },
)
# Valid documents with fuzzed variables: these get past parsing into coercion and resolvers.
TEMPLATES = st.sampled_from(
    [
        "query ($first: Int, $after: String, $genre: String, $authorId: ID) {"
        " books(first: $first, after: $after, genre: $genre, authorId: $authorId) {"
        " totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }",
        "query ($id: ID!, $first: Int, $after: String) { author(id: $id) { name"
        " books(first: $first, after: $after) { totalCount } } }",
        "query ($id: ID!) { book(id: $id) { title averageRating } review(id: $id) { id } }",
        "query ($first: Int, $after: String) { authors(first: $first, after: $after) {"
        " edges { node { id bookCount } } } }",
        "mutation ($input: AuthorInput!) { createAuthor(input: $input) { id } }",
        "mutation ($input: ReviewInput!) { addReview(input: $input) { id } }",
        "mutation ($id: ID!) { deleteReview(id: $id) }",
    ]
)
VARIABLE_VALUES = JSON_VALUES | st.text(max_size=20) | st.integers(-(2**40), 2**40)
TEMPLATE_REQUESTS = st.fixed_dictionaries(
    {
        "query": TEMPLATES,
        "variables": st.dictionaries(
            st.sampled_from(["first", "after", "genre", "authorId", "id", "input"]),
            VARIABLE_VALUES
            | st.dictionaries(
                st.sampled_from(["name", "bio", "bookId", "rating", "body"]), VARIABLE_VALUES
            ),
        ),
    }
)
BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | REQUEST_OBJECTS.map(lambda value: json.dumps(value).encode())
    | TEMPLATE_REQUESTS.map(lambda value: json.dumps(value).encode())
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/graphql", "text/plain"]
) | st.just("application/json")
HEADER_TEXT = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=60)


def run_fuzz(sqlite_url: str, send: Any, strategy: st.SearchStrategy[Any]) -> None:
    """Drive the in-process app from Hypothesis's synchronous runner, on one event loop."""
    with asyncio.Runner() as runner:
        context = running_api(
            Settings(
                database_url=sqlite_url, env="dev", max_body_bytes=2048, expose_cache_stats=False
            )
        )
        api = runner.run(context.__aenter__())
        try:

            @settings(
                max_examples=200,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(strategy)
            def check(example: Any) -> None:
                response = runner.run(send(api, example))
                assert response.status_code < 500, (example, response.text)
                if response.status_code >= 400:
                    assert response.json()["errors"][0]["message"]

            check()
            runner.run(assert_still_serving(api))
        finally:
            runner.run(context.__aexit__(None, None, None))


def test_fuzz_post_bodies_never_500(sqlite_url: str) -> None:
    async def send(api: Api, example: tuple[bytes, str, str | None]) -> httpx.Response:
        body, content_type, authorization = example
        tokens = {"admin": api.admin_token, "user": api.user_token}
        authorization = tokens.get(authorization or "", authorization)
        headers = {"Authorization": f"Bearer {authorization}"} if authorization else {}
        if authorization and authorization.startswith("raw:"):
            headers = {"Authorization": authorization[4:]}
        return await post_raw(api, body, content_type, headers)

    authorizations = st.sampled_from([None, "admin", "user"]) | HEADER_TEXT.map("raw:".__add__)
    run_fuzz(sqlite_url, send, st.tuples(BODIES, CONTENT_TYPES, authorizations))


def test_fuzz_get_query_strings_never_500(sqlite_url: str) -> None:
    async def send(api: Api, params: dict[str, str]) -> httpx.Response:
        return await api.client.get("/graphql", params=params)

    params = st.fixed_dictionaries(
        {"query": GRAPHQL_TEXT},
        optional={
            "variables": JSON_VALUES.map(json.dumps) | st.text(max_size=20),
            "operationName": st.text(max_size=10),
        },
    )
    run_fuzz(sqlite_url, send, params)
