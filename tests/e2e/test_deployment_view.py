"""One view of the whole deployment: two `strata serve` processes and a `strata serve
--workers 2` on one Redis. Every process publishes its figures; `strata cache stats` (the
real command) adds them up and lists each process; /dashboard/data shows the same rows;
an instance killed without its shutdown vanishes once its record's TTL runs out, one
stopped cleanly at once; an operator's `strata cache invalidate` shows on the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from graph.cli.redis_process import free_port
from tests.support.api import prepare_database
from tests.support.servers import Server, run_strata, running, server_env

T = TypeVar("T")

REPORT_SECONDS = 0.5
BOOK = "query Book($id: ID!) { book(id: $id) { id title reviewCount } }"
BOOKS = "query Books { books(first: 5) { edges { node { id title } } } }"
RENAME = "mutation Rename($id: ID!, $title: String!) { updateBook(id: $id, input: {title: $title}) { id } }"  # noqa: E501
TIER_SERIES = {
    ("l1", "hits"): ("strata_cache_hits_total", {"tier": "l1"}),
    ("l1", "misses"): ("strata_cache_misses_total", {"tier": "l1"}),
    ("l2", "hits"): ("strata_cache_hits_total", {"tier": "l2"}),
    ("l2", "misses"): ("strata_cache_misses_total", {"tier": "l2"}),
    ("response", "hits"): ("strata_response_cache_total", {"result": "hit"}),
    ("response", "misses"): ("strata_response_cache_total", {"result": "miss"}),
}


async def stats(env: dict[str, str]) -> dict[str, Any]:
    code, out, err = await run_strata(env, "cache", "stats", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


async def until(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float, what: str
) -> T:
    """`read()` until `done(result)`, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = await read()
        if done(found):
            return found
        assert time.monotonic() < deadline, f"{what}; last seen: {found!r}"[:4000]
        await asyncio.sleep(0.2)


async def metrics_of(servers: Sequence[Server]) -> dict[tuple[str, str], float]:
    """Hit and miss per tier from every server's /metrics, added up."""
    out = {}
    for (name, kind), (series, labels) in TIER_SERIES.items():
        values = [await s.metric(series, missing=0.0, **labels) for s in servers]
        out[(name, kind)] = sum(values)
    return out


def tier_totals(report: dict[str, Any]) -> dict[tuple[str, str], float]:
    tiers = report["deployment"]["totals"]["tiers"]
    return {(name, kind): float(tiers[name][kind]) for name, kind in TIER_SERIES}


@pytest.mark.slow
async def test_stats_and_dashboard_show_every_instance_of_the_deployment(
    sqlite_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    admin, _user, _other = await prepare_database(sqlite_url)
    env = server_env(sqlite_url, redis_url, key_prefix)
    env["STRATA_INSTANCE_REPORT_SECONDS"] = str(REPORT_SECONDS)
    env["STRATA_REDIS_TIMEOUT_MS"] = "1000"  # a loaded machine must not skip a publish
    cli_env = {**env, "STRATA_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    a = Server("view-a", env, tmp_path)
    b = Server("view-b", env, tmp_path)
    pair = Server("view-workers", env, tmp_path, workers=2)
    servers = [a, b, pair]
    async with running(servers):
        for server, rounds in ((a, 3), (b, 2), (pair, 4)):
            for round_ in range(rounds):
                await server.data(BOOKS)
                await server.data(BOOK, {"id": str(1 + round_ % 2)})
        await a.data(RENAME, {"id": "3", "title": "Renamed on A"}, admin)

        # 1 + 1 + 2 processes, each its own row; the sums are every server's /metrics.
        expected = await metrics_of(servers)
        report = await until(
            lambda: stats(cli_env),
            lambda r: r["deployment"]["instance_count"] == 4 and tier_totals(r) == expected,
            30,
            f"strata cache stats never added up to {expected}",
        )
        rows = report["deployment"]["instances"]
        pids = {row["pid"] for row in rows}
        assert {a.pid, b.pid} <= pids
        workers = pids - {a.pid, b.pid}
        assert len(workers) == 2, rows
        assert pair.pid not in workers, "the supervisor serves nothing: its workers publish"
        assert len({row["id"] for row in rows}) == 4
        assert all(row["uptime"] > 0 and row["host"] for row in rows)
        requests = sum([await s.metric("strata_request_seconds_count") for s in servers])
        assert report["deployment"]["totals"]["requests"]["total"] == requests
        assert sum(row["requests"] for row in rows) == requests

        # The same, readable: one row per instance, its id printed whole.
        code, text, err = await run_strata(cli_env, "cache", "stats")
        assert code == 0, err
        assert "4 live instances" in text
        print(f"\n$ strata cache stats\n{text}")
        for row in rows:
            assert row["id"] in text

        # The dashboard of any server shows the same deployment.
        async def dashboard() -> dict[str, Any]:
            body: dict[str, Any] = (await b.client.get("/dashboard/data")).json()
            return body

        seen = await until(
            dashboard,
            lambda d: d["deployment"]["instance_count"] == 4,
            10,
            "the dashboard never listed 4 instances",
        )
        assert {row["pid"] for row in seen["deployment"]["instances"]} == pids
        assert seen["deployment"]["complete"] is True
        made = [item for item in seen["recent_invalidations"] if "Book:3" in item["tags"]]
        assert len(made) == 1, made  # heard by the other three, listed once
        assert made[0]["source"] == "mutation"

        # An operator's invalidation: no instance made it, every one heard it.
        code, _out, err = await run_strata(cli_env, "cache", "invalidate", "--tag", "Book:2")
        assert code == 0, err
        heard = await until(
            dashboard,
            lambda d: any(
                item["tags"] == ["Book:2"] and len(item.get("heard_by") or []) == 4
                for item in d["recent_invalidations"]
            ),
            10,
            "the CLI's invalidation never showed on the dashboard as heard by all four",
        )
        operator = [item for item in heard["recent_invalidations"] if item["tags"] == ["Book:2"]]
        assert len(operator) == 1, operator
        assert operator[0]["source"] == "broadcast"
        assert operator[0]["instance"] is None

        # Killed: no shutdown ran, so its record stays until its TTL runs out.
        killed = b.pid
        await b.kill()
        gone_at = time.monotonic()
        after = await until(
            lambda: stats(cli_env),
            lambda r: killed not in {row["pid"] for row in r["deployment"]["instances"]},
            15,
            "a killed instance stayed listed past its TTL",
        )
        assert after["deployment"]["instance_count"] == 3
        print(f"\nkilled instance gone from stats after {time.monotonic() - gone_at:.1f} s")

        # Stopped cleanly: withdrawn at once, no TTL to wait for.
        stopped = a.pid
        await a.stop()
        now = await stats(cli_env)
        assert stopped not in {row["pid"] for row in now["deployment"]["instances"]}
        assert now["deployment"]["instance_count"] == 2


async def test_stats_with_no_instance_running_then_with_no_redis(
    sqlite_url: str, redis_url: str, key_prefix: str
) -> None:
    """A command-line process is not an instance: it publishes nothing. Without Redis the
    command says so and fails, rather than showing an empty deployment."""
    await prepare_database(sqlite_url)
    env = {
        **server_env(sqlite_url, redis_url, key_prefix),
        "STRATA_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    report = await stats(env)
    assert report["deployment"]["instance_count"] == 0
    assert report["server"] is None
    code, text, _err = await run_strata(env, "cache", "stats")
    assert code == 0
    assert "no live instance" in " ".join(text.split())
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    code, text, err = await run_strata(env, "cache", "stats")
    assert code == 1
    assert "could not read Redis" in err
