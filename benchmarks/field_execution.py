"""Field-cached execution against cache off and Strawberry over plain dicts (issue 15).

Calls three ASGI apps in one process, interleaved, with the bench's list and detail pages
(graph/cli/bench/plan.py): Strata with `STRATA_CACHE=off`, Strata with field and entity
caching only (`STRATA_RESPONSE_CACHE=false`, everything warm in L1), and a minimal
Strawberry schema answering the same queries from dicts loaded once (parser and
validation caches on). Prints the median per-request time of each, and the ratios.
`--profile fields-list` (or `fields-detail`, ...) prints a cProfile of one of them.
No HTTP server and no socket: these are execution costs, not `strata bench` figures.

    .venv/bin/python -m benchmarks.field_execution [--rounds 7] [--profile fields-list]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from benchmarks.seeded import seeded_database
from benchmarks.yardstick import YardstickApp, load
from graph.cli.bench.plan import DETAIL_PAGE, LIST_PAGE
from graph.settings import Settings
from graph.web.app import create_app
from models.seed import GENRES, SeedPlan

Asgi = Callable[[Any, Any, Any], Awaitable[None]]
PLAN = SeedPlan(authors=100, books_per_author=10, reviews_per_book=5, users=20)
PAGES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "list": [(LIST_PAGE, {"genre": genre, "first": 20}) for genre in GENRES],
    "detail": [(DETAIL_PAGE, {"id": str(book)}) for book in range(1, 41)],
}


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Asgi, body: bytes) -> bytes:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body), receive, send)
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    if status != 200 or b'"errors"' in payload:
        raise RuntimeError(f"{status}: {payload[:300]!r}")
    return payload


def bodies(page: str) -> list[bytes]:
    return [orjson.dumps({"query": q, "variables": v}) for q, v in PAGES[page]]


async def per_request_us(app: Asgi, page: str, count: int) -> float:
    sent = bodies(page)
    started = time.process_time()
    for n in range(count):
        await call(app, sent[n % len(sent)])
    return (time.process_time() - started) / count * 1e6


async def lifespan(app: Any) -> Callable[[], Awaitable[None]]:
    """Starts a Starlette app's lifespan; returns what stops it."""
    router = app.router
    context = router.lifespan_context(app)
    await context.__aenter__()

    async def stop() -> None:
        await context.__aexit__(None, None, None)

    return stop


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--profile", default=None, help="e.g. fields-list")
    parser.add_argument("--only", default="off,fields,dicts")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--lines", type=int, default=30)
    options = parser.parse_args()
    url = await seeded_database(PLAN, "strata-fieldspeed-")
    common = {"database_url": url, "log_level": "INFO", "expose_cache_stats": False}
    apps: dict[str, Asgi] = {}
    stops = []
    wanted = options.only.split(",")
    if "off" in wanted:
        apps["off"] = create_app(Settings(cache="off", **common))  # type: ignore[arg-type]
    if "fields" in wanted:
        apps["fields"] = create_app(Settings(response_cache=False, **common))  # type: ignore[arg-type]
    for app in apps.values():
        stops.append(await lifespan(app))
    if "dicts" in wanted:
        apps["dicts"] = YardstickApp(await load(url))
    for app in apps.values():
        for page in PAGES:
            await per_request_us(app, page, 100)  # warm every cache
    if options.profile:
        name, page = options.profile.split("-")
        profile = cProfile.Profile()
        profile.enable()
        await per_request_us(apps[name], page, options.count * 2)
        profile.disable()
        pstats.Stats(profile).sort_stats(options.sort).print_stats(options.lines)
    else:
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(options.rounds):
            for page in PAGES:
                for name, app in apps.items():
                    us = await per_request_us(app, page, options.count)
                    times.setdefault((name, page), []).append(us)
        for page in PAGES:
            medians = {name: statistics.median(times[(name, page)]) for name in apps}
            line = ", ".join(
                f"{name} {us:7.0f} µs ({1e6 / us:5.0f}/s)" for name, us in medians.items()
            )
            print(f"{page:6}: {line}")
            if "fields" in medians:
                ratios = ", ".join(
                    f"fields/{name} {medians[name] / medians['fields']:.2f}x"
                    for name in medians
                    if name != "fields"
                )
                print(f"        speed {ratios}")
    for stop in stops:
        await stop()


if __name__ == "__main__":
    asyncio.run(main())
