"""STRATA_METRICS_PORT (SPEC 3, 5): /metrics on a port of its own, bound to 127.0.0.1 and
open without a token, while the API port keeps it behind an admin token in production;
with one worker and with several (the supervisor adds up every worker's figures)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import prepare_database
from tests.support.redis_server import free_port
from tests.support.servers import Server, running, server_env

pytestmark = pytest.mark.timeout(90)

QUERY = "{ books(first: 2) { totalCount } }"


def _requests(text: str) -> float:
    """/graphql requests answered, by every process the scrape covers."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "strata_request_seconds"
        for sample in family.samples
        if sample.name == "strata_request_seconds_count"
    )


LISTEN = "0A"  # the TCP state in /proc/net/tcp


def _listeners(port: int) -> set[str]:
    """The IPv4 addresses something listens on at `port` on this machine (Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == LISTEN and int(hex_port, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_metrics_port_is_open_on_loopback_and_the_api_port_is_not(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path, workers: int
) -> None:
    admin, _alice, _bob = await prepare_database(sqlite_url)
    env = server_env(sqlite_url, redis_url, key_prefix)
    metrics_port = free_port()
    env.update(STRATA_ENV="production", STRATA_METRICS_PORT=str(metrics_port))
    server = Server("metrics", env, tmp_path, workers=workers)
    async with running([server]), httpx.AsyncClient(timeout=10) as scraper:
        for _ in range(6):  # spread over the workers
            await server.data(QUERY)
        scraped = await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        assert _requests(scraped.text) >= 6  # every worker's operations, added up
        assert _listeners(metrics_port) == {"127.0.0.1"}
        # The API port still wants an admin in production, and gives it what it gives.
        assert (await server.client.get("/metrics")).status_code == 401
        signed = {"Authorization": f"Bearer {admin}"}
        api_scrape = await server.client.get("/metrics", headers=signed)
        assert api_scrape.status_code == 200
        assert _requests(api_scrape.text) >= 6
    assert _listeners(metrics_port) == set()  # closed with the server
