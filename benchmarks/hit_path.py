"""A response-cache hit in process: the ASGI app called on one prepared request, no HTTP
client and no socket, CPU time per request; with `--profile`, cProfile's top entries.

    .venv/bin/python -m benchmarks.hit_path [--level WARNING] [--no-metrics] [--path /healthz]
        [--profile]

It seeds a small SQLite database in a temporary folder, answers the bench's list page once
(a miss, stored), then replays it: the figures are those of the hit path alone
(docs/benchmarks.md, "The response-cache hit path").
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from graph.cli import migrations
from graph.cli.bench import plan
from graph.settings import Settings
from graph.web.app import create_app
from tests.support.api import prepare_database

BODY = plan.list_page("poetry").body()
ROUNDS = 5


def scope(path: str) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(BODY)).encode())]  # fmt: skip
    method = "POST" if path == "/graphql" else "GET"
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip


async def measure(level: str, metrics: bool, path: str, requests: int, profile: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="strata-hit-"))
    url = f"sqlite+aiosqlite:///{folder / 'hit.sqlite'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await prepare_database(url)
    app = create_app(
        Settings(database_url=url, log_level=level, metrics=metrics, expose_cache_stats=False)
    )
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one() -> None:
        await app(scope(path), receive, send)

    async with app.router.lifespan_context(app):
        await one()
        timings = []
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(requests):
                await one()
            timings.append((time.process_time() - started) / requests * 1e6)
        assert set(statuses) == {200}, set(statuses)
        print(f"{path} at {level}, metrics {'on' if metrics else 'off'}: median "
              f"{statistics.median(timings):.1f} µs of CPU a request "
              f"({', '.join(f'{t:.1f}' for t in timings)})")  # fmt: skip
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(requests):
                await one()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
            print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", default="INFO")
    parser.add_argument("--no-metrics", dest="metrics", action="store_false")
    parser.add_argument("--path", default="/graphql")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.level, args.metrics, args.path, args.requests, args.profile))


if __name__ == "__main__":
    main()
