"""`strata serve`: uvicorn, with one log line once the server is listening.

uvicorn's own "Uvicorn running on …" line is at INFO on its `uvicorn.error` logger, which
`strata serve` keeps at WARNING (its per-request and lifecycle chatter is not ours to
show); this line goes through Strata's logging instead, in its format.
"""

from __future__ import annotations

import os
import socket

import structlog
import uvicorn
from uvicorn.supervisors import Multiprocess

from graph.observability.logs import configure_logging
from graph.observability.metrics import every_worker
from graph.settings import Settings
from graph.web.metrics_port import PORT_SETTING, serving_metrics

APP = "graph.web.app:create_app"

log = structlog.get_logger("strata.serve")


def _base(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def urls(host: str, port: int, settings: Settings) -> dict[str, str]:
    """Where a browser or a scraper reaches the server."""
    base = _base(host, port)
    metrics = f"{base}/metrics"
    if settings.metrics_port is not None:
        metrics = f"{_base(settings.metrics_host, settings.metrics_port)}/metrics"
    return {
        "url": base,
        "graphiql": f"{base}/graphql",
        "dashboard": f"{base}/dashboard",
        "metrics": metrics,
    }


def announce(host: str, port: int, workers: int, settings: Settings) -> None:
    log.info("listening", workers=workers, **urls(host, port, settings))


def _bound_port(sockets: list[socket.socket] | None, fallback: int) -> int:
    for sock in sockets or ():
        address = sock.getsockname()
        if isinstance(address, tuple):
            return int(address[1])
    return fallback


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that logs one line when its sockets are listening."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            port = self.config.port
            servers = getattr(self, "servers", [])
            for server in servers:
                port = _bound_port(list(server.sockets), port)
            announce(self.config.host, port, 1, Settings())


def run(host: str, port: int, workers: int) -> None:
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )
    if workers == 1:
        config.load_app()  # builds the app, which configures logging
        server = AnnouncingServer(config)
        server.run()
        if not server.started:
            raise SystemExit(3)
        return
    settings = Settings()
    configure_logging(settings)
    sock = config.bind_socket()
    # The supervisor holds the bound socket from here on; workers accept on it. It serves
    # the metrics port too (every worker's figures); its workers start without the setting.
    os.environ.pop(PORT_SETTING, None)
    with serving_metrics(settings.metrics_host, settings.metrics_port, every_worker()):
        announce(host, _bound_port([sock], port), workers, settings)
        Multiprocess(config, sockets=[sock]).run()
