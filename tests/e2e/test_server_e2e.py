"""End to end: the real `strata serve` process, over real HTTP on loopback."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import prepare_database
from tests.support.probes import LIST_QUERY
from tests.support.servers import Server, server_env

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def server(
    sqlite_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[Server, str]]:
    """One instance on SQLite, L1 only (no REDIS_URL), and an admin token; stopping it
    must be graceful."""
    admin_token, _, _ = await prepare_database(sqlite_url)
    served = Server("serve", server_env(sqlite_url, None, key_prefix), tmp_path)
    await served.start()
    port = served.port
    try:
        yield served, admin_token
    finally:
        code = await served.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{served.log_tail()}"
    async with httpx.AsyncClient() as probe:
        with pytest.raises(httpx.TransportError):
            await probe.get(f"http://127.0.0.1:{port}/healthz")


async def test_served_over_real_http(server: tuple[Server, str]) -> None:
    served, admin_token = server
    client = served.client

    posted = await client.post("/graphql", json={"query": LIST_QUERY, "variables": {"first": 5}})
    assert posted.status_code == 200
    assert posted.headers["content-type"].startswith("application/json")
    books = posted.json()["data"]["books"]
    assert len(books["edges"]) == 5
    assert all(edge["node"]["author"]["name"] for edge in books["edges"])
    assert (await served.data("{ books { totalCount } }"))["books"]["totalCount"] > 5

    got = await client.get(
        "/graphql",
        params={"query": LIST_QUERY, "variables": json.dumps({"first": 5})},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/graphql-response+json")
    assert got.json()["data"]["books"] == books

    mutation = 'mutation { createAuthor(input: {name: "Over GET"}) { id } }'
    refused = await client.get(
        "/graphql",
        params={"query": mutation},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    [error] = refused.json()["errors"]
    assert "POST" in error["message"]
    count = await served.data("{ authors { totalCount } }")
    assert count["authors"]["totalCount"] == 12  # the seeded authors only

    ide = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert ide.status_code == 200
    assert ide.headers["content-type"].startswith("text/html")
    assert "graphiql" in ide.text.lower()

    too_big = await client.post(
        "/graphql",
        content=b'{"query": "{ me { id } }", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413

    assert (await client.get("/readyz")).status_code == 200
    rejected = await served.metric("strata_rejected_requests_total", reason="mutation_over_get")
    assert rejected == 1.0
