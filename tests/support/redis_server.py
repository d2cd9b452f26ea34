"""A throwaway redis-server process for tests: started, stopped and restarted for real."""

from __future__ import annotations

from graph.cli.redis_process import RedisServer, free_port, redis_server_binary

__all__ = ["RedisServer", "free_port", "redis_server_binary"]
