"""Issue 14's findings, each as its own end-to-end test on real `strata serve` processes
over HTTP on 127.0.0.1, sharing one Redis under a namespace of the test's own.

Bounded: every test sends a fixed, small number of requests and stops by itself. Run with
`-s` to see the measured figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from models.writes import GENRE_LIMIT
from tests.support.api import prepare_database
from tests.support.servers import STRATA, Server, running, server_env

pytestmark = pytest.mark.timeout(90)

# The 167-byte anonymous query: three nested pages of a hundred.
BROAD_QUERY = (
    "{books(first:100){edges{node{title reviews(first:100){edges{node{body "
    "reviewer{name reviews(first:100){edges{node{rating body book{title}}}}}}}}}}}}"
)
HEALTHZ_BOUND = 0.5
REFUSAL_BOUND = 0.5
ME = "{ me { id name } }"
PRESENCE_KEY = re.compile(rb"\}:(i:[^:]+|instances)$")  # cache/instances.py


class Deployment:
    def __init__(self, database_url: str, redis_url: str, key_prefix: str, log_dir: Path):
        self.database_url = database_url
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.log_dir = log_dir
        self.env = server_env(database_url, redis_url, key_prefix)

    def server(self, name: str) -> Server:
        return Server(name, dict(self.env), self.log_dir)

    async def namespace_keys(self) -> tuple[int, int]:
        """Cache keys under this deployment's prefix and their bytes (SCAN, MEMORY USAGE).
        The servers' own presence records (``…i:<id>``, ``…instances``) are left out: they
        are rewritten every few seconds with new figures, whatever clients send."""
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            keys = [
                key
                async for key in client.scan_iter(match=f"*{self.key_prefix}*")
                if not PRESENCE_KEY.search(key)
            ]
            sizes = [await client.memory_usage(key) or 0 for key in keys]
            return len(keys), sum(sizes)
        finally:
            await client.aclose()

    def strata(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STRATA), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
async def deployment(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> Deployment:
    return Deployment(sqlite_url, redis_url, key_prefix, tmp_path)


@pytest.fixture
async def tokens(deployment: Deployment) -> tuple[str, str, str]:
    return await prepare_database(deployment.database_url)


@pytest.fixture
async def server(deployment: Deployment, tokens: tuple[str, str, str]) -> AsyncIterator[Server]:
    instance = deployment.server("a")
    async with running([instance]):
        yield instance


@pytest.fixture
async def two_servers(
    deployment: Deployment, tokens: tuple[str, str, str]
) -> AsyncIterator[tuple[Server, Server]]:
    """Two instances sharing the database and Redis."""
    first, second = deployment.server("a"), deployment.server("b")
    async with running([first, second]):
        yield first, second


async def _healthz_times(server: Server, stop: asyncio.Event) -> list[float]:
    times: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        response = await server.client.get("/healthz")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
        await asyncio.sleep(0.02)
    return times


async def test_a_broad_query_is_refused_before_it_runs(server: Server) -> None:
    assert len(BROAD_QUERY.encode()) <= 167
    aliased = "{" + " ".join(f"a{i}:{BROAD_QUERY[1:-1]}" for i in range(2)) + "}"
    stop = asyncio.Event()
    probe = asyncio.create_task(_healthz_times(server, stop))
    await asyncio.sleep(0.05)
    refusals: list[float] = []
    for query in (BROAD_QUERY, aliased) * 5:
        started = time.perf_counter()
        response = await server.post(query)
        refusals.append(time.perf_counter() - started)
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
        assert "10000" in error["message"]
    stop.set()
    healthz = await probe
    print(f"refusal max {max(refusals) * 1000:.1f} ms, /healthz max {max(healthz) * 1000:.1f} ms")
    assert max(refusals) < REFUSAL_BOUND
    assert max(healthz) < HEALTHZ_BOUND
    # the cost comes from variables as well
    variables = "query ($n: Int) { books(first: $n) { edges { node { reviews(first: $n) { edges { node { id } } } } } } }"  # noqa: E501
    response = await server.post(variables, {"n": 100})
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert (await server.data(variables, {"n": 3}))["books"]["edges"]


async def test_a_long_genre_is_bad_input_and_stores_nothing(
    server: Server, deployment: Deployment
) -> None:
    await server.data('{ books(genre: "fantasy") { totalCount } }')  # the namespace exists
    keys_before, bytes_before = await deployment.namespace_keys()
    genre = "g" * 33_000
    aliased = (
        "query ($g: String) {"
        + " ".join(f"a{i}: books(genre: $g) {{ totalCount }}" for i in range(30))
        + "}"
    )
    literal = (
        "{" + " ".join(f'a{i}: books(genre: "{genre}") {{ totalCount }}' for i in range(30)) + "}"
    )
    for _ in range(10):
        for query, variables in ((aliased, {"g": genre}), (literal, None)):
            response = await server.post(query, variables)
            assert response.status_code < 500
            codes = [e["extensions"]["code"] for e in response.json()["errors"]]
            assert codes == ["BAD_USER_INPUT"], codes
    keys_after, bytes_after = await deployment.namespace_keys()
    print(
        f"namespace: {keys_before} keys {bytes_before} B before 20 refused requests, "
        f"{keys_after} keys {bytes_after} B after"
    )
    assert (keys_after, bytes_after) == (keys_before, bytes_before)
    longest = "g" * GENRE_LIMIT  # as long as a stored genre may be: answered
    assert (await server.data(aliased, {"g": longest}))["a0"]["totalCount"] == 0


def _invalidation_series(metrics: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted(sample.labels.items()))
        for family in text_string_to_metric_families(metrics)
        if family.name == "strata_cache_invalidations"
        for sample in family.samples
        if sample.name == "strata_cache_invalidations_total"
    }


async def test_distinct_tags_make_no_new_metric_series(
    server: Server, tokens: tuple[str, str, str]
) -> None:
    admin = tokens[0]
    mutation = "mutation ($t: [String!]!) { invalidateCache(tags: $t) }"
    await server.data(mutation, {"t": ["Book", "Author:1"]}, token=admin)
    before = _invalidation_series((await server.client.get("/metrics")).text)
    for batch in range(3):
        # 300 distinct tags the grammar accepts, each with text of its own after the kind.
        tags = [f"Book:genre:g{batch}-{i}" for i in range(50)]
        tags += [f"Author:{1000 * batch + i + 2}:books" for i in range(50)]
        assert (await server.data(mutation, {"t": tags}, token=admin))["invalidateCache"] == 100
    junk = [f"junk-{i}:{i}" for i in range(100)]  # refused whole: no tag of it is counted
    refused = (await server.post(mutation, {"t": junk}, admin)).json()
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    after = _invalidation_series((await server.client.get("/metrics")).text)
    assert after == before
    assert {dict(labels)["kind"] for labels in after} <= {"Author", "Book"}


async def test_a_revoked_token_is_refused_at_once_on_every_instance(
    deployment: Deployment, tokens: tuple[str, str, str], two_servers: tuple[Server, Server]
) -> None:
    _admin, alice, bob = tokens
    first, second = two_servers
    for instance in (first, second):  # each instance caches both lookups
        for token in (alice, bob):
            await instance.data(ME, token=token)
            await instance.data(ME, token=token)
    revoked = deployment.strata("token", "revoke", alice)
    assert revoked.returncode == 0, revoked.stderr
    for instance in (first, second):
        assert (await instance.post(ME, token=alice)).status_code == 401
        assert (await instance.data(ME, token=bob))["me"]["name"] == "bob"
    by_user = deployment.strata("token", "revoke", "--user", "bob")
    assert by_user.returncode == 0, by_user.stderr
    for instance in (first, second):
        assert (await instance.post(ME, token=bob)).status_code == 401
    again = deployment.strata("token", "revoke", alice)
    assert again.returncode == 1
    assert deployment.strata("token", "revoke", "--user", "nobody").returncode == 1
    assert deployment.strata("token", "revoke").returncode == 2


INVALIDATE = 'mutation { invalidateCache(tags: ["Book:1"]) }'
ADD_REVIEW = 'mutation { addReview(input: {bookId: "1", rating: 4, body: "Mine."}) { id } }'
REVIEW_COUNT = '{ book(id: "1") { reviewCount } }'


async def _codes(instance: Server, query: str, token: str) -> list[str]:
    response = await instance.post(query, token=token)
    if response.status_code == 401:
        return ["401"]
    return [e["extensions"]["code"] for e in response.json().get("errors", ())]


@pytest.mark.slow
async def test_a_change_to_a_user_holds_at_once_on_every_instance(
    deployment: Deployment, tokens: tuple[str, str, str], two_servers: tuple[Server, Server]
) -> None:
    _admin, alice, bob = tokens
    first, second = two_servers
    await first.data(ADD_REVIEW, token=bob)
    counts = set()
    for instance in (first, second):  # each instance caches both lookups and the count
        for _ in range(2):
            assert await _codes(instance, INVALIDATE, alice) == ["FORBIDDEN"]
            assert (await instance.data(ME, token=bob))["me"]["name"] == "bob"
            counts.add((await instance.data(REVIEW_COUNT))["book"]["reviewCount"])
    [with_bob] = counts

    async def everywhere(expected: list[str], token: str = alice) -> None:
        for instance in (first, second):
            assert await _codes(instance, INVALIDATE, token) == expected, instance.name

    for command, expected in (
        (("user", "promote", "alice"), []),
        (("user", "demote", "alice"), ["FORBIDDEN"]),
        (("token", "create", "alice", "--admin"), []),  # promotes an existing user
    ):
        done = deployment.strata(*command)
        assert done.returncode == 0, done.stderr
        await everywhere(expected)
    await everywhere([], token=done.stdout.strip())  # the new token is an admin's too
    assert deployment.strata("user", "promote", "alice").returncode == 0  # already: a no-op
    assert deployment.strata("user", "demote", "nobody").returncode == 1

    deleted = deployment.strata("user", "delete", "bob")
    assert deleted.returncode == 0, deleted.stderr
    assert "1 review" in deleted.stdout
    for instance in (first, second):
        assert (await instance.post(ME, token=bob)).status_code == 401
        assert (await instance.data(REVIEW_COUNT))["book"]["reviewCount"] == with_bob - 1
    assert deployment.strata("user", "delete", "bob").returncode == 1


# --- findings in the request path (graph/web): for its integrator -------------------------


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_deeply_nested_variables_are_a_client_error(server: Server) -> None:
    query = "{ books(first: 1) { totalCount } }"  # the variable is not even declared
    variables = {"junk": _nested(253)}
    response = await server.post(query, variables)
    assert response.status_code < 500, response.text[:300]
    encoded = urlencode({"query": query, "variables": json.dumps(variables)})
    assert (await server.client.get(f"/graphql?{encoded}")).status_code < 500
    assert "Traceback" not in server.log_tail(200)


async def test_undeclared_variables_make_no_new_entries(
    server: Server, deployment: Deployment
) -> None:
    query = "{ books(first: 1) { totalCount } }"
    await server.data(query)
    await server.data(query)
    keys_before, _ = await deployment.namespace_keys()
    for i in range(50):
        await server.data(query, {"junk": i})
    keys_after, _ = await deployment.namespace_keys()
    print(f"namespace keys: {keys_before} before 50 junk variables, {keys_after} after")
    assert keys_after == keys_before


PADDED_QUERIES = 125
# Every in-process store of client text is bounded in bytes, and together with what the
# allocator keeps for reuse after megabyte strings they fill within the first ~100
# documents (docs/benchmarks.md). So a second round of as many new documents must add
# almost nothing; keeping each document would add 125 MB.
SECOND_ROUND_GROWTH_BOUND = 32 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.timeout(240)  # 250 MB through the parser: near the module bound on a slow day
async def test_padded_documents_do_not_grow_the_process(server: Server) -> None:
    """Two rounds of 125 different documents of about 1 MB each (small queries padded with
    a comment): every in-process store of client text is bounded in bytes, so the second
    round does not grow the process."""
    await server.data("{ books(first: 1) { totalCount } }")
    padding = "#" * (1000 * 1000)

    async def send_round(first: int) -> int:
        for i in range(first, first + PADDED_QUERIES):
            query = f"{{ books(first: {1 + i % 100}) {{ totalCount }} }}\n{padding}{i}\n"
            assert (await server.data(query))["books"]["totalCount"] > 0
        return server.rss_bytes()

    before = server.rss_bytes()
    middle = await send_round(0)
    after = await send_round(PADDED_QUERIES)
    print(
        f"RSS {before >> 20} MiB before, {middle >> 20} after {PADDED_QUERIES} padded "
        f"documents, {after >> 20} after {PADDED_QUERIES} more"
    )
    assert after - middle < SECOND_ROUND_GROWTH_BOUND


# --- the rest of issue 14's findings, each on real servers ----------------------------------

WIDE_QUERY = "{ books(first: 100) { edges { node { id title author { id name } } } } }"


async def test_a_response_is_measured_with_its_stamps(deployment: Deployment) -> None:
    """A whole response is stored only when it fits with the tag stamps stored beside it."""
    roomy = deployment.server("roomy")
    async with running([roomy]):
        body = (await roomy.client.get("/graphql", params={"query": WIDE_QUERY})).json()
        size = len(
            json.dumps({"data": body["data"]}, separators=(",", ":"), ensure_ascii=False).encode()
        )
        again = await roomy.payload(WIDE_QUERY)
        assert again["extensions"]["cache"]["response"] == "hit"
    tight = deployment.server("tight")
    tight.env.update(
        STRATA_RESPONSE_CACHE_MAX_BYTES=str(size + 1),
        STRATA_CACHE_PREFIX=f"{deployment.key_prefix}-tight",
    )
    async with running([tight]):
        for _ in range(2):  # room for the body, not for its 200 tags' stamps: never kept
            answered = await tight.payload(WIDE_QUERY)
            assert answered["extensions"]["cache"]["response"] == "skip"


def _persisted(query: str) -> dict[str, Any]:
    sha = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


async def _apq(server: Server, query: str | None, extensions: dict[str, Any]) -> Any:
    body = (
        {"extensions": extensions} if query is None else {"query": query, "extensions": extensions}
    )
    return await server.client.post("/graphql", json=body)


async def test_persisted_queries_are_bounded_and_checked_before_they_are_kept(
    deployment: Deployment, server: Server
) -> None:
    await server.data("{ books(first: 1) { totalCount } }")  # the namespace exists
    keys, _ = await deployment.namespace_keys()
    refusals = {
        "{ books(first: 1) { totalCount } }" + "#" * (100 * 1024): 400,  # over the size bound
        "{ books(first: 1) { ": 400,  # does not parse
        "{ books(first: 1) { nope } }": "GRAPHQL_VALIDATION_FAILED",
        BROAD_QUERY: "QUERY_TOO_COMPLEX",
    }
    for query, refusal in refusals.items():
        response = await _apq(server, query, _persisted(query))
        if isinstance(refusal, int):
            assert response.status_code == refusal, response.text[:300]
        else:
            codes = {e["extensions"]["code"] for e in response.json()["errors"]}
            assert codes == {refusal}, codes
        unknown = (await _apq(server, None, _persisted(query))).json()
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert (await deployment.namespace_keys())[0] == keys  # nothing kept, in any form
    # A good one is kept in Redis: the restarted server knows it from its hash alone.
    good = '{ book(id: "1") { title } }'
    assert "errors" not in (await _apq(server, good, _persisted(good))).json()
    await server.stop()
    await server.start()
    known = (await _apq(server, None, _persisted(good))).json()
    assert known["data"]["book"]["title"], known


async def test_http_caches_revalidate_and_a_304_executes_nothing(
    server: Server, tokens: tuple[str, str, str]
) -> None:
    query = '{ book(id: "2") { title } }'
    first = await server.client.get("/graphql", params={"query": query})
    assert first.headers["cache-control"] == "public, no-cache"
    etag = first.headers["etag"]
    operations = await server.metric("strata_operations_total", missing=0)
    for _ in range(3):
        again = await server.client.get(
            "/graphql", params={"query": query}, headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
    assert await server.metric("strata_operations_total", missing=0) == operations
    renamed = 'mutation { updateBook(id: "2", input: {title: "Renamed"}) { id } }'
    await server.data(renamed, token=tokens[0])
    changed = await server.client.get(
        "/graphql", params={"query": query}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.json()["data"]["book"]["title"] == "Renamed"
    assert changed.headers["etag"] != etag


async def test_operator_surfaces_are_closed_in_production(
    deployment: Deployment, tokens: tuple[str, str, str]
) -> None:
    admin, alice, _bob = tokens
    production = deployment.server("production")
    production.env["STRATA_ENV"] = "production"
    async with running([production]):
        for path in ("/metrics", "/dashboard/data"):
            anonymous = await production.client.get(path)
            assert anonymous.status_code == 401, path
            assert "strata_" not in anonymous.text
            reader = {"Authorization": f"Bearer {alice}"}
            assert (await production.client.get(path, headers=reader)).status_code == 403
            operator = {"Authorization": f"Bearer {admin}"}
            assert (await production.client.get(path, headers=operator)).status_code == 200
