"""Suite-wide fixtures: a real Redis for every run, isolated by key prefix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from graph.settings import Settings
from tests.support.api import Api, running_api
from tests.support.databases import PostgresTemplate, SqliteTemplate, postgres_reachable
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.strict import STRICT


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set (CI may point it at a shared Redis), else a throwaway server."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


# --- L2 on one Redis and on a Redis Cluster ----------------------------------------------

L2_KINDS = ["redis", "cluster"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``l2_both`` whose fixtures ask for ``l2_kind`` run once per kind."""
    if "l2_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker("l2_both"):
        metafunc.parametrize("l2_kind", L2_KINDS, indirect=True)


@pytest.fixture
def l2_kind(request: pytest.FixtureRequest) -> str:
    """``redis`` (one server) or ``cluster`` (three masters); ``redis`` unless marked."""
    kind: str = getattr(request, "param", "redis")
    return kind


def _cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    servers.start()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A throwaway three-master Redis Cluster, started once per run when a test needs it."""
    yield from _cluster()


@pytest.fixture
def private_cluster() -> Iterator[RedisClusterServers]:
    """A cluster of this test's own: it may take a master away or move a slot."""
    yield from _cluster()


@pytest.fixture
def l2_url(l2_kind: str, request: pytest.FixtureRequest) -> str:
    """The suite's shared L2 of this kind (tests isolate themselves by key prefix)."""
    fixture = "redis_cluster" if l2_kind == "cluster" else "redis_url"
    shared = request.getfixturevalue(fixture)
    return shared.url if isinstance(shared, RedisClusterServers) else str(shared)


@pytest.fixture
def key_prefix() -> str:
    """A fresh namespace per test, so tests sharing one Redis never see each other's keys."""
    return f"strata-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server for a test that fills, stops or reconfigures it."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A private redis-server that keeps its data across a stop or a kill (AOF, fsync
    always), as a production Redis with AOF does."""
    server = RedisServer(durable=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(l2_kind: str) -> Iterator[RedisServer | RedisClusterServers]:
    """A private L2 of this kind that a fault test may stop and restart (a cluster stops
    and restarts every master). One Redis keeps its data across a stop (AOF, fsync always),
    as a real outage does: a Redis that came back empty would hide a lost invalidation."""
    server = RedisClusterServers() if l2_kind == "cluster" else RedisServer(durable=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


# --- databases ---------------------------------------------------------------------------

DATABASE_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate | None]:
    if not asyncio.run(postgres_reachable()):
        if STRICT:
            raise RuntimeError("STRATA_TEST_STRICT is set but PostgreSQL is unreachable")
        yield None
        return
    template = PostgresTemplate()
    try:
        yield template
    finally:
        template.close()


@pytest.fixture(params=DATABASE_KINDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
    postgres_template: PostgresTemplate | None,
) -> Iterator[str]:
    """A freshly migrated, empty database: SQLite, and PostgreSQL when it is reachable."""
    if request.param == "sqlite":
        yield sqlite_template.clone(tmp_path)
        return
    if postgres_template is None:
        pytest.skip("PostgreSQL is not reachable (set STRATA_TEST_STRICT to fail)")
    url = postgres_template.clone()
    try:
        yield url
    finally:
        PostgresTemplate.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: SqliteTemplate) -> str:
    """SQLite only, for tests whose subject is not the database."""
    return sqlite_template.clone(tmp_path)


# --- the API in process ------------------------------------------------------------------


def test_settings(database_url: str, **overrides: Any) -> Settings:
    """Dev settings, without `extensions.cache` in answers unless a test asks for it."""
    defaults = {"expose_cache_stats": False, "log_level": "WARNING"}
    return Settings(database_url=database_url, env="dev", **{**defaults, **overrides})


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    """The app on a seeded database of each kind."""
    async with running_api(test_settings(database_url)) as client:
        yield client


@pytest.fixture
async def sqlite_api(sqlite_url: str) -> AsyncIterator[Api]:
    """The app on a seeded SQLite database, for tests about HTTP rather than storage."""
    async with running_api(test_settings(sqlite_url)) as client:
        yield client


@pytest.fixture
def cached_settings(sqlite_url: str, redis_url: str, key_prefix: str) -> Settings:
    """Both tiers on: Redis at `redis_url` under a namespace of this test's own."""
    return test_settings(
        sqlite_url, redis_url=redis_url, cache_secret="test-secret", cache_prefix=key_prefix
    )


@pytest.fixture
async def cached_api(cached_settings: Settings) -> AsyncIterator[Api]:
    async with running_api(cached_settings) as client:
        yield client


@pytest.fixture
async def stats_api(cached_settings: Settings) -> AsyncIterator[Api]:
    """Both tiers on, and every answer says in `extensions.cache` what the cache did.

    Its tests count exact hits and zero Redis errors: a generous Redis deadline keeps a
    loaded machine from turning one slow reply into an open breaker and a flushed L1."""
    settings = cached_settings.model_copy(
        update={"expose_cache_stats": True, "redis_timeout_ms": 1000}
    )
    async with running_api(settings) as client:
        yield client


@pytest.fixture
async def uncached_api(database_url: str) -> AsyncIterator[Api]:
    """The app with every cache tier off (STRATA_CACHE=off), on each kind of database."""
    async with running_api(test_settings(database_url, cache="off")) as client:
        yield client
