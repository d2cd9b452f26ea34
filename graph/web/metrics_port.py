"""/metrics on a port of its own (`STRATA_METRICS_PORT`, SPEC 3 and 5), for a scraper on
the same host: bound to `STRATA_METRICS_HOST` (127.0.0.1 by default), so it needs no
token, while the API port keeps /metrics behind an admin token in production.

prometheus_client's own exposition server does the serving, in a daemon thread: it reads
the registry it is given, so it never touches the app's event loop. One process serves
it: the app itself with one worker; with `strata serve --workers N` the supervisor, which
reads every worker's files (prometheus_client's multiprocess mode) and starts its workers
without the setting, so that they do not all try to bind the port.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server
from prometheus_client.registry import Collector

PORT_SETTING = "STRATA_METRICS_PORT"
SHUTDOWN_SECONDS = 5.0


@contextmanager
def serving_metrics(host: str, port: int | None, registry: Collector) -> Iterator[None]:
    """Serves `registry` on host:port while the block runs (nothing when port is None)."""
    if port is None:
        yield
        return
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SHUTDOWN_SECONDS)
