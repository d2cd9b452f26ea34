"""End to end: the real `strata serve` process, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import prepare_database
from tests.support.redis_server import free_port

STRATA = Path(sys.executable).parent / "strata"
LIST_QUERY = """
query List($first: Int!) {
  books(first: $first) {
    totalCount
    edges { node { title author { name } reviewCount averageRating } }
  }
}
"""
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
STARTUP_SECONDS = 20


async def wait_until_healthy(
    client: httpx.AsyncClient, process: asyncio.subprocess.Process, deadline: float
) -> None:
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"strata serve exited with {process.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("strata serve did not answer /healthz in time")


@pytest.fixture
async def server(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    admin_token, _, _ = await prepare_database(sqlite_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env.pop("REDIS_URL", None)
    env.update(DATABASE_URL=sqlite_url, STRATA_ENV="dev")
    process = await asyncio.create_subprocess_exec(
        str(STRATA),
        *("serve", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await wait_until_healthy(client, process, time.monotonic() + STARTUP_SECONDS)
            yield client, admin_token
        process.terminate()
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
        assert await asyncio.wait_for(process.wait(), 10) in (0, -signal.SIGTERM)
        async with httpx.AsyncClient() as probe:
            with pytest.raises(httpx.TransportError):
                await probe.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_served_over_real_http(server: tuple[httpx.AsyncClient, str]) -> None:
    client, admin_token = server

    posted = await client.post("/graphql", json={"query": LIST_QUERY, "variables": {"first": 5}})
    assert posted.status_code == 200
    assert posted.headers["content-type"].startswith("application/json")
    books = posted.json()["data"]["books"]
    assert len(books["edges"]) == 5
    assert books["totalCount"] > 5
    assert all(edge["node"]["author"]["name"] for edge in books["edges"])

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
    count = await client.post("/graphql", json={"query": "{ authors { totalCount } }"})
    assert count.json()["data"]["authors"]["totalCount"] == 12  # the seeded authors only

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
    metrics = await client.get("/metrics")
    assert 'strata_rejected_requests_total{reason="mutation_over_get"} 1.0' in metrics.text
