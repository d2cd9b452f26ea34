"""A throwaway redis-server process for tests: started, stopped and restarted for real.

The implementation lives in graph.bench.redis (the benchmark starts one too)."""

from __future__ import annotations

from graph.bench.redis import RedisServer, free_port, redis_server_binary

__all__ = ["RedisServer", "free_port", "redis_server_binary"]
