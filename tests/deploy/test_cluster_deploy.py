"""deploy/compose.cluster.yaml (two instances, PostgreSQL, a three-master Redis Cluster)
says what it must, and its Redis files really form a cluster: three real redis-servers
started from deploy/redis-cluster.conf, joined by deploy/redis-cluster-init.sh."""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; none are locked
from redis.cluster import RedisCluster

from graph.cli.redis_process import redis_server_binary
from tests.deploy.test_deploy_files import (
    DEPLOY,
    redis_directives,
    settings_env_names,
    settings_from,
    start_shipped_redis,
)

CLUSTER_COMPOSE = DEPLOY / "compose.cluster.yaml"
CLUSTER_CONF = DEPLOY / "redis-cluster.conf"
INIT = DEPLOY / "redis-cluster-init.sh"
NODES = ("redis-1", "redis-2", "redis-3")
APPS = ("app-a", "app-b")
ENTRYPOINT_ONLY = {"MIGRATE_ON_START"}  # read by deploy/docker-entrypoint.sh, not Settings


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CLUSTER_COMPOSE.read_text())
    found: dict[str, Any] = loaded["services"]
    return found


def test_cluster_compose_has_two_apps_three_masters_and_postgres() -> None:
    found = services()
    assert set(found) >= {*APPS, *NODES, "redis-cluster-init", "postgres"}
    for node in NODES:
        assert found[node]["image"].startswith("redis:7")
        mounts = {v.split(":")[1]: v.split(":")[0] for v in found[node]["volumes"]}
        assert mounts[found[node]["command"][-1]] == "./redis-cluster.conf"
        assert "/data" in mounts, node  # nodes.conf and the AOF survive a restart
        assert "healthcheck" in found[node]
    assert len({found[n]["volumes"][1] for n in NODES}) == 3, "one data volume per node"
    for app in APPS:
        assert found[app]["depends_on"]["redis-cluster-init"]["condition"] == (
            "service_completed_successfully"
        )
        assert found[app]["depends_on"]["postgres"]["condition"] == "service_healthy"
    init = found["redis-cluster-init"]
    for node in NODES:
        assert init["depends_on"][node]["condition"] == "service_healthy"
        assert f"{node}:6379" in init["environment"]["REDIS_NODES"]
    assert any(volume.startswith("./redis-cluster-init.sh:") for volume in init["volumes"])


def test_only_the_apps_publish_ports_and_one_of_them_migrates() -> None:
    found = services()
    for name, service in found.items():
        assert ("ports" in service) == (name in APPS), name
    published = [str(port).split(":")[0] for app in APPS for port in found[app]["ports"]]
    assert len(set(published)) == len(APPS)
    migrating = [a for a in APPS if found[a]["environment"].get("MIGRATE_ON_START") != "0"]
    assert migrating == ["app-a"]
    assert found["app-b"]["depends_on"]["app-a"]["condition"] == "service_healthy"


def test_cluster_app_settings_validate_and_name_a_cluster_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for app in APPS:
        environment: dict[str, str] = services()[app]["environment"]
        unknown = set(environment) - settings_env_names() - ENTRYPOINT_ONLY
        assert not unknown, f"{app} sets variables Settings does not read: {unknown}"
        assert (
            environment["STRATA_CACHE_SECRET"] == "${STRATA_CACHE_SECRET:?set STRATA_CACHE_SECRET}"
        )
        settings = settings_from(environment, monkeypatch)
        assert settings.redis_url is not None
        assert re.fullmatch(r"redis://redis-[123]:6379/0", settings.redis_url)
        assert "@postgres:5432/" in settings.database_url
        assert settings.env == "production"


def test_cluster_conf_keeps_the_single_redis_guarantees() -> None:
    directives = redis_directives(CLUSTER_CONF.name)
    assert directives["cluster-enabled"] == "yes"
    assert directives["cluster-require-full-coverage"] == "no"  # one master down ≠ all down
    assert directives["appendonly"] == "yes"
    assert directives["maxmemory-policy"] == "allkeys-lru"
    assert directives["dir"] == "/data"


# --- the files form a real cluster ---------------------------------------------------------


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20_000, 30_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture
def shipped_nodes(tmp_path: Path) -> Iterator[list[int]]:
    """Three redis-servers started from deploy/redis-cluster.conf (dir, port and bind
    changed), not yet joined."""
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for index in range(3):
            home = tmp_path / f"node-{index}"
            home.mkdir()
            port = cluster_port()
            processes.append(start_shipped_redis(CLUSTER_CONF.name, home, port))
            ports.append(port)
        for port, process in zip(ports, processes, strict=True):
            wait_for_ping(port, process)
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()


def wait_for_ping(port: int, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    try:
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"redis-server refused {CLUSTER_CONF.name}:\n{output}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                assert time.monotonic() < deadline, f"redis-server on {port} never answered"
                time.sleep(0.05)
    finally:
        client.close()


def run_init(ports: list[int]) -> str:
    bin_dir = str(Path(redis_server_binary()).parent)  # its redis-cli beside it
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "REDIS_NODES": " ".join(f"127.0.0.1:{port}" for port in ports),
    }
    done = subprocess.run(
        ["sh", str(INIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_shipped_files_form_a_three_master_cluster(shipped_nodes: list[int]) -> None:
    if shutil.which("getent") is None:
        pytest.skip("the init script resolves names with getent (the redis:7 image has it)")
    assert sys.platform.startswith("linux")
    first = run_init(shipped_nodes)
    assert "redis cluster ok" in first
    cluster = RedisCluster.from_url(f"redis://127.0.0.1:{shipped_nodes[0]}/0")
    try:
        for index in range(30):
            cluster.set(f"probe:{index}", index)
        assert [int(cluster.get(f"probe:{i}") or -1) for i in range(30)] == list(range(30))
    finally:
        cluster.close()
    for port in shipped_nodes:
        node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            info = str(node.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
            assert "cluster_state:ok" in info
            assert "cluster_size:3" in info  # three masters serving slots
            assert "cluster_slots_assigned:16384" in info
            assert int(node.dbsize()) > 0  # the keys spread over every master
            assert node.config_get("appendonly")["appendonly"] == "yes"
        finally:
            node.close()
    again = run_init(shipped_nodes)  # a restart of the compose project
    assert "already formed" in again
