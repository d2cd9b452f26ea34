"""The throwaway redis-server starts even when the port it picked is taken meanwhile."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from graph.cli.redis_process import RedisServer, free_port


def test_a_port_taken_before_the_server_binds_it_is_replaced_by_a_new_one() -> None:
    # A bound socket that does not listen, as an outgoing connection's local port is.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        ports: Iterator[int] = iter([taken, free_port()])
        server = RedisServer(choose_port=lambda: next(ports))
        try:
            server.start()
            assert server.port != taken
            assert redis.Redis.from_url(server.url).ping()
        finally:
            server.close()


def test_a_server_that_cannot_start_says_why() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        server = RedisServer(port=squatter.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match=r"did not start(.|\n)*ddress already in use"):
                server.start()
        finally:
            server.close()
