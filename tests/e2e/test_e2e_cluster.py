"""End to end on a Redis Cluster (SPEC 6.14a): one master dies under load.

Two cached `strata serve` instances A and B on a private three-master cluster (found by
themselves: STRATA_REDIS_CLUSTER is left at `auto`), C uncached on the same database as
the truth. The invalidation, race and privacy tests of test_e2e_cache.py run on the
cluster too (`l2_both`); this one takes a master away while clients keep reading.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_e2e_cache import (
    CONVERGE_SECONDS,
    PAGE,
    Deployment,
    Tally,
    _all_ready,
    _shows,
    _wait_for,
)
from tests.support.api import prepare_database
from tests.support.probes import (
    LIST_QUERY,
    PRIVATE_PROBE,
    PUBLIC_PROBES,
    answers,
    differences,
)
from tests.support.redis_cluster import RedisClusterServers
from tests.support.servers import running

pytestmark = pytest.mark.timeout(90)

MAX_REQUESTS = 4000


@pytest.fixture
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    servers.start()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
async def on_cluster(
    sqlite_url: str, cluster: RedisClusterServers, key_prefix: str, tmp_path: Path
) -> Deployment:
    tokens = await prepare_database(sqlite_url)
    return Deployment(sqlite_url, tokens, tmp_path, cluster.url, key_prefix)


@pytest.mark.slow
async def test_a_master_dies_under_load_and_no_request_fails(
    on_cluster: Deployment, cluster: RedisClusterServers
) -> None:
    deployment = on_cluster
    tokens = deployment.tokens
    a, b = deployment.server("A"), deployment.server("B")
    c = deployment.server("C", cache="off")
    load = Tally()
    stop = asyncio.Event()
    down: list[float] = []  # [stopped at, started at]
    timeline: list[float] = []
    victim = cluster.nodes[1]
    title = "Written while a master was down"
    book_query = '{ book(id: "1") { title } books(first: 100) { edges { node { title } } } }'

    async def client(number: int) -> None:
        rng = random.Random(number)
        while not stop.is_set() and load.requests < MAX_REQUESTS:
            server = rng.choice((a, b))
            if rng.random() < 0.2:
                await load.run(server.data(PRIVATE_PROBE, token=rng.choice([None, *tokens])))
            else:
                query, variables = rng.choice(PUBLIC_PROBES)
                await load.run(server.data(query, variables))
            timeline.append(time.monotonic())

    async def outage() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(victim.stop)
        down.append(time.monotonic())
        took = await _wait_for("degraded", lambda: _all_ready((a, b), "degraded"), 3.0)
        print(f"\n/readyz said degraded {took * 1000:.0f} ms after a master was killed")
        # A write while the master is down: A reads it at once, B within the window
        # (its L1 was flushed when its subscription on that master dropped).
        update = f'mutation {{ updateBook(id: "1", input: {{title: "{title}"}}) {{ id }} }}'
        await a.data(update, None, tokens[0])
        assert (await a.data(book_query))["book"]["title"] == title
        on_b = await _wait_for(
            "showing the write on B", lambda: _shows(b, book_query, title), CONVERGE_SECONDS
        )
        print(f"B showed the write made on A while a master was down after {on_b * 1000:.0f} ms")
        await asyncio.sleep(max(0.0, down[0] + 2.0 - time.monotonic()))
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(cluster.wait_until_ok)
        down.append(time.monotonic())

    async with running([a, b, c]):
        for server in (a, b):
            await answers(server, tokens)
        assert await _all_ready((a, b), "ok")
        clients = [asyncio.create_task(client(n)) for n in range(4)]
        await outage()
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 30)

        during = sum(1 for at in timeline if down[0] <= at <= down[1])
        print(f"load: {load.requests} requests, {during} while a master was down")
        assert not load.failures, load.failures[:5]
        assert during > 20, "too little load while a master was down"

        await _wait_for("ok again, idle", lambda: _all_ready((a, b), "ok"), 5.0, step=0.1)
        print(f"/readyz said ok {(time.monotonic() - down[1]) * 1000:.0f} ms after it came back")
        for server in (a, b):
            assert await _shows(server, book_query, title), server.name
        # L2 serves again: B gets A's fresh fills from the cluster.
        await a.data(LIST_QUERY, PAGE)
        before = await b.sql_statements()
        await b.data(LIST_QUERY, PAGE)
        assert await b.sql_statements() == before, "B did not get A's entries from the cluster"
        truth = await answers(c, tokens)
        for server in (a, b):
            assert not differences(await answers(server, tokens), truth), server.name
