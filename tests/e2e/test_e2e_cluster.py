"""End to end on a Redis Cluster (SPEC 6.14a): one master dies under load.

The invalidation, race, privacy and whole-outage tests of test_e2e_cache.py run on the
cluster too (`l2_both`: the instances find the cluster by themselves, STRATA_REDIS_CLUSTER
is left at `auto`). Here a private three-master cluster loses one master while clients
keep reading A and B: the same scenario as a Redis outage (`outage_under_load`), where
only that master's keys and tags are away.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_e2e_cache import Deployment, outage_under_load
from tests.support.api import prepare_database
from tests.support.redis_cluster import RedisClusterServers

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def on_cluster(
    sqlite_url: str, private_cluster: RedisClusterServers, key_prefix: str, tmp_path: Path
) -> Deployment:
    tokens = await prepare_database(sqlite_url)
    return Deployment(sqlite_url, tokens, tmp_path, private_cluster.url, key_prefix)


@pytest.mark.slow
async def test_a_master_dies_under_load_and_no_request_fails(
    on_cluster: Deployment, private_cluster: RedisClusterServers
) -> None:
    victim = private_cluster.nodes[1]

    def bring_back() -> None:
        victim.start()
        private_cluster.wait_until_ok()

    await outage_under_load(
        on_cluster, private_cluster.url, victim.stop, bring_back, what="a cluster master"
    )
